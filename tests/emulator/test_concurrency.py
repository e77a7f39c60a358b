"""Concurrent invokes: queued one at a time by default, N at a time with --concurrency N."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from emulator_process import EXAMPLES, PROBE, clean_env


def invoke_all(emu, events):
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(emu.invoke, events))


def test_ten_concurrent_invokes_are_queued_not_refused(emulator):
    emu = emulator("--", *PROBE)
    responses = invoke_all(emu, [{"n": n} for n in range(10)])
    assert [r.status for r in responses] == [200] * 10
    assert [r.json()["event"] for r in responses] == [{"n": n} for n in range(10)]
    assert len({r.headers["x-amzn-requestid"] for r in responses}) == 10
    assert len({r.json()["pid"] for r in responses}) == 1  # one bootstrap served them all
    # One at a time: the single-threaded probe answers /next only after the previous response, and each
    # START is followed by its own END before the next START.
    # The last END line may reach stderr just after its response: wait for all ten.
    emu.wait_for(lambda line: sum(x.startswith("END") for x in emu.stderr.splitlines()) >= 10 or None)
    starts_and_ends = [line.split()[0] for line in emu.stderr.splitlines() if line.startswith(("START", "END"))]
    assert starts_and_ends == ["START", "END"] * 10


def test_awslambdaric_under_concurrent_invokes(lambda_function):
    fn = lambda_function("app.handler", runtime="awslambdaric", task_root=EXAMPLES, timeout=300)
    results = invoke_all(fn, [{"queryStringParameters": {"n": str(n)}} for n in range(10)])
    assert [r.payload["body"] for r in results] == [f'queryStringParameters, {{"n":"{n}"}}' for n in range(10)]
    assert all(r.logs.startswith(f"START RequestId: {r.request_id}") for r in results)  # one at a time


def test_concurrency_four_runs_four_at_once(probe):
    # Each invocation waits on a 4-party barrier inside the bootstrap (10 s timeout): all four succeed
    # only if the emulator hands out four invocations at the same time.
    fn = probe(concurrency=4)
    results = invoke_all(fn, [{"action": "barrier"}] * 4)
    assert [r.status_code for r in results] == [200] * 4, [r.raw for r in results]
    assert all(r.payload["passed"] for r in results)
    assert len({r.payload["thread"] for r in results}) == 4
    env = fn.invoke({}).payload["env"]
    assert env["AWS_LAMBDA_MAX_CONCURRENCY"] == "4"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"


def test_without_concurrency_the_barrier_breaks(probe):
    # The control for the test above: the same bootstrap with two polling threads, but no --concurrency.
    # The emulator hands out one invocation at a time, so the 2-party barrier times out (1 s) and breaks.
    fn = probe(env={"PROBE_WORKERS": "2", "PROBE_BARRIER_TIMEOUT": "1"})
    results = invoke_all(fn, [{"action": "barrier"}] * 2)
    assert [r.function_error for r in results] == ["Unhandled"] * 2
    assert [r.error["errorType"] for r in results] == ["BrokenBarrier"] * 2
    assert fn.invoke({}).payload["env"]["AWS_LAMBDA_MAX_CONCURRENCY"] is None


def test_concurrency_from_the_environment_with_awslambdaric_workers(emulator):
    emu = emulator(
        "--", sys.executable, "-m", "awslambdaric", "app.handler", env=clean_env(AWS_LAMBDA_MAX_CONCURRENCY="2")
    )
    responses = invoke_all(emu, [{"queryStringParameters": {"n": str(n)}} for n in range(6)])
    assert [r.status for r in responses] == [200] * 6
    assert [r.json()["body"] for r in responses] == [f'queryStringParameters, {{"n":"{n}"}}' for n in range(6)]
