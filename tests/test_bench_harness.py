"""The benchmark harness measures only what it verified: every invocation counted, its request id and
answer checked, and a wrong, missing or misrouted answer failing the run loudly. Tiny counts; no timing."""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import pytest

from benchmarks import compare, harness, procstat
from benchmarks.scenarios import Scenario, scenario
from benchmarks.server import BenchmarkFailure, BenchServer, Expectation

ROOT = Path(__file__).resolve().parents[1]

NULL = Expectation(b"{}", lambda body: None if body == b"null" else "expected null")


# -- a scripted raw-socket client, to misbehave on purpose -----------------------------------------------


class FakeClient(threading.Thread):
    """Speaks the Runtime API over one keep-alive connection; `answer(request_id)` gives (path, body) or None
    (meaning: skip the answer and ask for the next invocation straight away)."""

    def __init__(self, server: BenchServer, answer):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", int(server.address.rsplit(":", 1)[1])))
        self.answer = answer
        self.buf = b""

    def _read_response(self) -> tuple[int, dict[str, str], bytes] | None:
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(self.buf) < length:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(lines[0].split()[1]), headers, body

    def run(self) -> None:
        try:
            while True:
                self.sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = self._read_response()
                if reply is None or reply[0] != 200:
                    return
                answer = self.answer(reply[1]["lambda-runtime-aws-request-id"])
                if answer is None:
                    continue
                path, body = answer
                self.sock.sendall(
                    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
                )
                if self._read_response() is None:
                    return
        except OSError:
            return
        finally:
            self.sock.close()


def drive(expectation: Expectation, answer, invocations: int = 3):
    """Run `invocations` against a FakeClient answering with `answer`; return the window (or raise)."""
    with BenchServer(expectation) as server:
        client = FakeClient(server, answer)
        client.start()
        try:
            server.wait_idle(5)
            return server.run(invocations, timeout=5)
        finally:
            server.finish()
            client.join(5)


def good(request_id: str, kind: str = "response", body: bytes = b"null"):
    return f"/2018-06-01/runtime/invocation/{request_id}/{kind}", body


# -- the server's checks ---------------------------------------------------------------------------------


def test_counts_every_invocation_with_its_request_id():
    seen = []

    def answer(request_id):
        seen.append(request_id)
        return good(request_id)

    window = drive(NULL, answer, invocations=4)
    assert window.invocations == 4
    assert len(window.latencies_s) == 4
    assert len(set(seen)) == 4
    assert window.connections == 0  # the keep-alive connection was opened before the window


def test_a_wrong_body_fails_the_run():
    with pytest.raises(BenchmarkFailure, match="wrong response body"):
        drive(NULL, lambda rid: good(rid, body=b"nope"))


def test_an_answer_for_another_request_id_fails_the_run():
    with pytest.raises(BenchmarkFailure, match="expected POST .*/response, got .*/someone-else/response"):
        drive(NULL, lambda rid: good("someone-else"))


def test_a_missing_answer_fails_the_run():
    with pytest.raises(BenchmarkFailure, match="/next arrived before the answer"):
        drive(NULL, lambda rid: None)


def test_an_answer_of_a_different_length_fails_the_run():
    bodies = iter([b"null", b"null ", b"null"])
    with pytest.raises(BenchmarkFailure, match="response length changed"):
        drive(Expectation(b"{}", lambda body: None), lambda rid: good(rid, body=next(bodies)))


def test_the_error_scenario_wants_error_posts():
    expectation = Expectation(b"{}", lambda body: None, error=True)
    assert drive(expectation, lambda rid: good(rid, "error", b"{}")).invocations == 3
    with pytest.raises(BenchmarkFailure, match=r"expected POST .*/error"):
        drive(expectation, lambda rid: good(rid, "response", b"{}"))


def test_a_client_that_dies_fails_the_run():
    with BenchServer(NULL) as server:
        client = FakeClient(server, lambda rid: good(rid))
        client.start()
        server.wait_idle(5)
        client.sock.shutdown(socket.SHUT_RDWR)
        with pytest.raises(BenchmarkFailure):
            server.run(3, timeout=5, alive=lambda: False)
        server.finish()
        client.join(5)


# -- real client processes -------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["plain", "awslambdaric", "fastric"])
def test_real_clients_are_measured(client):
    window = harness.measure(client, scenario("tiny"), invocations=50, warmup=1, timeout=30)
    assert window.invocations == 50
    assert window.client_cpu_s > 0
    assert window.client_peak_rss_kb > 0
    assert window.connections == (100 if client == "plain" else 0)  # plain: a new connection per request


def test_a_real_client_returning_the_wrong_thing_is_caught():
    wrong = Scenario(
        "tiny-echo",
        "echo where null is expected",
        "bench_handlers.echo",
        b'{"a":1}',
        lambda body: None if body.strip() == b"null" else "expected null",
        invocations=2,
        warmup=0,
    )
    with pytest.raises(BenchmarkFailure, match="wrong response body"):
        harness.measure("plain", wrong, timeout=30)


def test_async_scenario_calls_the_local_service():
    pytest.importorskip("aiohttp")
    window = harness.measure("awslambdaric", scenario("async"), invocations=2, warmup=0, timeout=30)
    assert window.backend_connections == 2  # asyncio.run() per invocation: a new session and connection each


def test_cold_start_reaches_the_first_next_and_serves_one_invocation():
    start = harness.cold_start("plain")
    assert 0 < start.to_first_next_s <= start.to_first_response_s
    assert start.client_cpu_s > 0 and start.peak_rss_kb > 0


# -- pieces ----------------------------------------------------------------------------------------------


def test_parse_importtime():
    sample = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   _io\n"
        "import time:       400 |        900 | fastric.runtime.loop\n"
        "import time:        50 |         50 |     orjson\n"
    )
    assert harness.parse_importtime(sample) == [("_io", 120, 1), ("fastric.runtime.loop", 900, 0), ("orjson", 50, 2)]


def test_procstat_reads_this_process():
    import os

    assert procstat.cpu_ns(os.getpid()) > 0
    assert procstat.peak_rss_kb(os.getpid()) > 0
    assert 0 < procstat.anon_rss_kb(os.getpid()) <= procstat.peak_rss_kb(os.getpid())
    assert procstat.cpu_ns(2**22 + 12345) == -1  # no such process


def test_procstat_keeps_the_cpu_of_a_thread_that_exited():
    """fastric's start-up import thread exits after the first /next: a window spanning its exit must not lose
    its CPU (the kernel drops the thread's schedstat) and come out negative."""
    import os
    import time

    native_id = []

    def burn():
        native_id.append(threading.get_native_id())
        deadline = time.thread_time() + 0.05
        while time.thread_time() < deadline:
            pass

    worker = threading.Thread(target=burn)
    worker.start()
    time.sleep(0.01)
    before = procstat.cpu_ns(os.getpid())  # the worker is alive and has used some CPU
    worker.join()
    while os.path.exists(f"/proc/self/task/{native_id[0]}"):  # until the kernel has dropped the thread
        time.sleep(0.001)
    assert procstat.cpu_ns(os.getpid()) >= before


def test_compare_table_reports_ratios_against_awslambdaric():
    results = compare.Results()
    for _repeat in range(3):
        results.add(
            "tiny",
            "awslambdaric",
            {
                "cpu_us": 100.0,
                "throughput": 1000.0,
                "p50_us": 100.0,
                "p99_us": 200.0,
                "server_cpu_us": 50.0,
                "conns_per_inv": 0.0,
                "backend_conns_per_inv": 0.0,
                "rss_mb": 14.0,
                "anon_mb": 5.0,
            },
        )
        results.add(
            "tiny",
            "fastric",
            {
                "cpu_us": 25.0,
                "throughput": 2500.0,
                "p50_us": 50.0,
                "p99_us": 90.0,
                "server_cpu_us": 50.0,
                "conns_per_inv": 0.0,
                "backend_conns_per_inv": 0.0,
                "rss_mb": 21.0,
                "anon_mb": 6.0,
            },
        )
    table = compare.markdown(results, ["fastric", "awslambdaric"], [scenario("tiny")])
    row = next(line for line in table.splitlines() if line.startswith("| tiny | fastric"))
    assert "25.0 µs | 0.25×" in row and "2,500/s | 2.50×" in row
    target = next(line for line in table.splitlines() if line.startswith("| tiny: client CPU"))
    assert "0.25×" in target and "**no**" in target  # the target is <= 0.22×
    rss = next(line for line in table.splitlines() if line.startswith("| peak RSS"))
    assert "1.50×" in rss and "**no**" in rss
    json.dumps(results.samples)  # the --json output is plain data


def test_compare_fails_loudly_when_a_client_cannot_start(monkeypatch, capsys):
    """Run outside the environment fastric is installed in, compare.py stops and shows the client's own error,
    instead of measuring the other clients and leaving fastric's rows and targets empty."""
    real_command = harness.client_command

    def command(client, handler, **kwargs):
        if client == "fastric":  # what `python -m fastric` does where fastric is not installed
            return [sys.executable, "-m", "fastric_is_not_installed_here", handler]
        return real_command(client, handler, **kwargs)

    monkeypatch.setattr(harness, "client_command", command)
    status = compare.main(["--quick", "--scenarios", "tiny", "--clients", "plain,fastric"])
    out, err = capsys.readouterr()
    assert status != 0
    assert "fastric cannot run here" in err
    assert "No module named fastric_is_not_installed_here" in err  # the client's stderr, not a paraphrase
    assert "plain cannot run here" not in err
    assert out == ""  # nothing measured, no table


def test_compare_cold_start_table_shows_every_ratio_the_targets_quote():
    results = compare.Results()
    for client, first_next, first_response in (("awslambdaric", 40.0, 40.0), ("fastric", 36.0, 50.0)):
        results.add(
            "cold",
            client,
            {
                "to_first_next_ms": first_next,
                "to_first_response_ms": first_response,
                "cpu_ms": 30.0,
                "rss_mb": 14.0,
                "anon_mb": 6.0,
            },
        )
        results.add("imports", client, {"total_ms": 25.0, "own_ms": 9.5})
    lines = compare.markdown(results, ["fastric", "awslambdaric"], []).splitlines()
    row = next(line for line in lines if line.startswith("| fastric |"))
    assert "| 36.0 ms | 0.90× | 50.0 ms | 1.25× |" in row
    assert row.endswith("| 25.0 / 9.5 ms |")
    for label in ("cold start: spawn to first /next", "cold start: spawn to first response"):
        target = next(line for line in lines if label in line)
        assert target.split("|")[3].strip() in row  # the target's ratio can be read off the cold-start row


def test_compare_writes_the_chart(tmp_path):
    pytest.importorskip("matplotlib")
    results = compare.Results()
    for client, cpu, first_response in (("awslambdaric", 100.0, 40.0), ("fastric", 30.0, 25.0), ("plain", 250.0, 60.0)):
        results.add("tiny", client, {"cpu_us": cpu, "throughput": 100_000 / cpu})
        results.add("cold", client, {"to_first_next_ms": first_response - 1, "to_first_response_ms": first_response})
    path = tmp_path / "chart.svg"
    compare.write_chart_or_say_why(results, ["fastric", "awslambdaric", "plain"], [scenario("tiny")], str(path), "x")
    svg = path.read_text()
    assert svg.startswith("<?xml") and "fastric" in svg and "to first response" in svg and "0.3" in svg


def test_a_smoke_run_writes_its_chart_elsewhere_than_the_tracked_one():
    import argparse

    def path(**given):
        options = {
            "chart": None,
            "quick": False,
            "repeats": None,
            "scenarios": None,
            "clients": ",".join(compare.CLIENTS),
        }
        return compare.chart_path(argparse.Namespace(**{**options, **given}))

    assert path() == str(compare.CHART)  # a full run updates the tracked chart
    for smoke in ({"quick": True}, {"repeats": 1}, {"scenarios": "tiny"}, {"clients": "plain,fastric"}):
        assert path(**smoke) == str(compare.SMOKE_CHART) != str(compare.CHART)
    assert path(quick=True, chart="benchmarks/compare.svg") == "benchmarks/compare.svg"  # unless asked
