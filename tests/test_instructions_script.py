"""benchmarks/instructions.py: callgrind's totals read right, start-up cancelled by the difference of two runs,
the Lambda-like server's heads the same in every run and unique per invocation, and `--check` failing when the
ratio rises more than the tolerance over the baseline. The end-to-end case runs both clients under valgrind with
a few invocations (skipped where valgrind is absent; CI installs it)."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from benchmarks import instructions
from benchmarks.instructions import Count, LambdaLikeServer, check, parse_totals, per_invocation
from benchmarks.server import Expectation

NEEDS_VALGRIND = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind; .ci/run does)"
)


def test_totals_are_read_from_callgrind_output(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    out.write_text("# callgrind format\nversion: 1\ncmd: python\nevents: Ir\nfn=main\n0 12\nsummary: 123456789\n")
    assert parse_totals(out) == 123456789
    out.write_text("events: Ir\nfn=main\n0 12\ntotals: 42\n")
    assert parse_totals(out) == 42
    out.write_text("events: Ir\n")
    with pytest.raises(ValueError):
        parse_totals(out)


def test_start_up_cancels_out_of_the_difference() -> None:
    start_up, each = 50_000_000, 140_000
    low = Count("fastric", 1000, start_up + 1000 * each, 1.0)
    high = Count("fastric", 3000, start_up + 3000 * each, 2.0)
    assert per_invocation(low, high) == each


def test_check_fails_only_above_the_tolerance() -> None:
    baseline = {"ratio": 0.40, "python": "3.11.7"}
    assert check({"ratio": 0.40, "python": "3.11.7"}, baseline)[0]
    assert check({"ratio": 0.30, "python": "3.11.7"}, baseline)[0]  # faster always passes
    assert check({"ratio": 0.4119, "python": "3.11.7"}, baseline)[0]  # +2.98%
    passed, message = check({"ratio": 0.4125, "python": "3.11.7"}, baseline)  # +3.1%
    assert not passed and "+3.1%" in message
    assert not check({"python": "3.11.7"}, baseline)[0]  # no ratio: a failure, not a pass
    assert "this run on 3.12.1" in check({"ratio": 0.40, "python": "3.12.1"}, baseline)[1]


def test_the_committed_baseline_is_complete() -> None:
    baseline = json.loads(instructions.BASELINE.read_text())
    assert 0 < baseline["ratio"] < 1
    assert set(baseline["per_invocation"]) == {"fastric", "awslambdaric"}
    assert baseline["ratio"] == pytest.approx(
        baseline["per_invocation"]["fastric"] / baseline["per_invocation"]["awslambdaric"], rel=1e-3
    )


def test_steps_match_the_perf_map_names() -> None:
    assert instructions._matches("py::receive:/x/fastric/runtime/wire/connection.py", ("connection.py:receive",))
    assert not instructions._matches("py::receive:/x/fastric/runtime/wire/aioconnection.py", ("connection.py:receive",))
    assert instructions._matches("py::begin:/x/fastric/runtime/core.py", ("begin",))
    assert not instructions._matches("_PyEval_EvalFrameDefault", ("begin",))


def _next_heads(count: int) -> list[bytes]:
    """The heads of `count` `/next` responses from a fresh LambdaLikeServer, answering each invocation."""
    heads = []
    with LambdaLikeServer(Expectation(b"{}", lambda body: None)) as server:
        host, port = server.address.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            buf = b""

            def response() -> tuple[bytes, bytes]:
                nonlocal buf
                while b"\r\n\r\n" not in buf:
                    buf += sock.recv(65536)
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(buf) < length:
                    buf += sock.recv(65536)
                body, buf = buf[:length], buf[length:]
                return head, body

            sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n")
            server.wait_idle(10)
            server._command(("grant", count))
            for _ in range(count):
                head, _ = response()
                heads.append(head)
                request_id = head.split(b"Lambda-Runtime-Aws-Request-Id: ")[1].split(b"\r\n")[0]
                sock.sendall(
                    b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nContent-Length: 4\r\n\r\nnull"
                    % request_id
                )
                assert response()[0].startswith(b"HTTP/1.1 202")
                sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n")
            server.wait_idle(10)
            assert server.invocations == count
    return heads


def test_the_server_sends_lambda_like_heads_the_same_in_every_run() -> None:
    heads = _next_heads(3)
    assert heads == _next_heads(3)  # repeatable: nothing depends on the clock
    for name in (b"Lambda-Runtime-Aws-Request-Id", b"Lambda-Runtime-Trace-Id", b"Lambda-Runtime-Deadline-Ms"):
        values = [head.split(name + b": ")[1].split(b"\r\n")[0] for head in heads]
        assert len(set(values)) == 3, name  # unique per invocation, as Lambda's
        assert len({len(v) for v in values}) == 1, name  # the same length: the same work to parse
    assert len({len(head) for head in heads}) == 1


@NEEDS_VALGRIND
@pytest.mark.slow
def test_both_clients_counted_and_checked_against_a_baseline(tmp_path: Path, capsys) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"ratio": 0.01, "python": "3.11", "per_invocation": {}}))
    out = tmp_path / "out.json"
    status = instructions.main(["--invocations", "10,30", "--json", str(out), "--check", "--baseline", str(baseline)])
    printed = capsys.readouterr().out
    assert status == 1, printed  # the ratio is far above 0.01: the check fails, loudly
    assert "FAILED: fastric/awslambdaric" in printed
    doc = json.loads(out.read_text())
    fastric, awslambdaric = doc["per_invocation"]["fastric"], doc["per_invocation"]["awslambdaric"]
    assert 10_000 < fastric < awslambdaric < 5_000_000
    assert doc["ratio"] == pytest.approx(fastric / awslambdaric, rel=1e-3)
    assert [run["invocations"] for run in doc["runs"]] == [10, 30, 10, 30]
    assert check(doc, {"ratio": doc["ratio"] * 1.02})[0]
