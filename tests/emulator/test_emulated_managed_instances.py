"""Lambda Managed Instances through `fastric emulate --concurrency N`: fastric holds N invocations of an `async def`
handler in flight in one process, each with its own request id, trace id and log ids."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from emulator_process import clean_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "concurrent"
TRACE = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e7{:02d};Parent=9a9197af755a6419;Sampled=1"


def invoke_all(emu, events, traces=None):
    traces = traces or [None] * len(events)
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        futures = [
            pool.submit(emu.invoke, event, headers={"X-Amzn-Trace-Id": trace} if trace else None)
            for event, trace in zip(events, traces, strict=True)
        ]
        return [f.result() for f in futures]


def fastric_emulator(emulator, handler, concurrency, **env):
    env.setdefault("FASTRIC_WORKERS", "1")  # one process, whatever this machine's vCPU count
    return emulator(
        "--concurrency", str(concurrency), "--task-root", str(FIXTURES), handler, cwd=FIXTURES, env=clean_env(**env)
    )


def test_n_invocations_in_flight_in_one_process_each_with_its_own_ids(emulator):
    emu = fastric_emulator(emulator, "mi_app.gather", 4)
    events = [{"together": 4, "marker": f"m{n}"} for n in range(4)]
    responses = invoke_all(emu, events, [TRACE.format(n) for n in range(4)])
    assert [r.status for r in responses] == [200] * 4, [r.body for r in responses]
    results = [r.json() for r in responses]
    assert len({r["pid"] for r in results}) == 1  # one process held all four at once
    for n, (response, result) in enumerate(zip(responses, results, strict=True)):
        assert result["marker"] == f"m{n}"
        assert result["request_id"] == response.headers["x-amzn-requestid"]
        # _X_AMZN_TRACE_ID as the X-Ray SDK / OpenTelemetry read it: this invocation's own
        assert result["trace"] == result["trace_getenv"] == TRACE.format(n)
        assert result["trace_in"] is True
    # Log lines written while the four interleaved carry the id of the invocation that wrote them.
    emu.wait_for(lambda line: "after m3" in line or None)
    ids = {result["marker"]: result["request_id"] for result in results}
    for line in emu.stderr.splitlines():
        match = re.match(r"\[WARNING\]\t\S+\t(\S+)\t(before|after) (m\d)$", line)
        if match:
            assert match.group(1) == ids[match.group(3)], line


def test_json_log_lines_carry_their_own_request_id(emulator):
    emu = fastric_emulator(emulator, "mi_app.gather", 3, AWS_LAMBDA_LOG_FORMAT="JSON")
    responses = invoke_all(emu, [{"together": 3, "marker": f"j{n}"} for n in range(3)])
    ids = {r.json()["marker"]: r.json()["request_id"] for r in responses}
    emu.wait_for(lambda line: '"after j2"' in line or None)
    seen = 0
    for line in emu.stderr.splitlines():
        if line.startswith("{") and '"message": "' in line:
            record = json.loads(line)
            marker = record["message"].split()[-1]
            if marker in ids:
                assert record["requestId"] == ids[marker]
                seen += 1
    assert seen == 6


def test_an_error_in_one_invocation_leaves_the_others_alone(emulator):
    emu = fastric_emulator(emulator, "mi_app.gather", 3)
    events = [{"together": 3, "marker": "ok1"}, {"together": 3, "marker": "bad", "fail": True}, {"together": 3}]
    responses = invoke_all(emu, events)
    assert [r.status for r in responses] == [200, 200, 200]
    assert responses[1].headers.get("x-amz-function-error") == "Unhandled"
    assert responses[1].json()["errorMessage"] == "failed bad"
    assert responses[0].json()["marker"] == "ok1" and "x-amz-function-error" not in responses[0].headers
    assert responses[1].json()["requestId"] == responses[1].headers["x-amzn-requestid"]


def test_fastric_workers_splits_n_over_k_processes(emulator):
    emu = fastric_emulator(emulator, "mi_app.gather", 4, FASTRIC_WORKERS="2")
    # Two processes hold two invocations each: while the first two are held (2 s), the other two go to the other
    # process.
    responses = invoke_all(emu, [{"together": 2, "hold": 2, "marker": f"w{n}"} for n in range(4)])
    assert [r.status for r in responses] == [200] * 4, [r.body for r in responses]
    assert len({r.json()["pid"] for r in responses}) == 2


def test_sync_handlers_keep_forked_workers(emulator):
    emu = fastric_emulator(emulator, "mi_app.sync_echo", 3)
    # Three invocations held 1 s each at once: each worker (a process of its own, as awslambdaric's) takes one.
    responses = invoke_all(emu, [{"hold": 1}] * 3)
    assert len({r.json()["pid"] for r in responses}) == 3


def test_a_handler_that_blocks_the_loop_is_reported_once(emulator):
    emu = fastric_emulator(emulator, "mi_app.block", 2)
    assert invoke_all(emu, [{"seconds": 0.8}])[0].json() == {"blocked": True}
    assert invoke_all(emu, [{"seconds": 0.8}])[0].json() == {"blocked": True}
    assert emu.wait_for(lambda line: "The event loop was blocked for" in line or None)
    assert sum("The event loop was blocked" in line for line in emu.stderr.splitlines()) == 1
