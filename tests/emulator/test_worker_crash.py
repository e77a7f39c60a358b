"""A crash is a crash under `--concurrency`: a forked worker (plain `def` handler) that dies mid-invocation is
answered as a runtime crash, at once, and the other invocations in flight are untouched."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from emulator_process import clean_env

HANDLER = """
import os
import time


def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid()}
"""


def _start(emulator, tmp_path, concurrency: str):
    (tmp_path / "crashy.py").write_text(HANDLER)
    return emulator(
        "--concurrency", concurrency, "--timeout", "30", "--task-root", str(tmp_path), "crashy.handler", env=clean_env()
    )


def test_a_worker_crash_is_answered_at_once_and_spares_the_others(emulator, tmp_path):
    emu = _start(emulator, tmp_path, "2")
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(emu.invoke, {"sleep": 1.5})
        time.sleep(0.3)  # the slow one holds a worker
        began = time.monotonic()
        crashed = emu.invoke({"crash": True})
        elapsed = time.monotonic() - began
        survivor = slow.result()
    assert elapsed < 5, elapsed  # not the 30 s timeout
    assert crashed.status == 502 and crashed.headers["x-amz-function-error"] == "Unhandled"
    document = crashed.json()
    assert document["errorType"] == "Runtime.ExitError"
    assert document["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert survivor.status == 200, survivor.body  # the other invocation in flight was not failed
    request_id = crashed.headers["x-amzn-requestid"]
    assert emu.wait_for(lambda line: f"{request_id}: a runtime worker exited" in line and "exit status 3" in line)
    report = emu.report_for(request_id)
    assert report is not None and "Error Type: Runtime.ExitError" in report
    after = [emu.invoke({}) for _ in range(3)]  # a replacement worker took the dead one's place
    assert [r.status for r in after] == [200] * 3


def test_with_concurrency_one_the_exit_status_is_kept(emulator, tmp_path):
    emu = _start(emulator, tmp_path, "1")
    crashed = emu.invoke({"crash": True})
    assert crashed.status == 502
    assert crashed.json()["errorMessage"].endswith("exit status 3")  # not "exited without providing a reason"
    assert emu.invoke({}).status == 200


def test_a_timeout_under_concurrency_fails_only_that_invocation(emulator, tmp_path):
    """Managed Instances' independent timeouts: no reset, the other invocation in flight finishes."""
    (tmp_path / "crashy.py").write_text(HANDLER)
    emu = emulator(
        "--concurrency", "2", "--timeout", "2", "--task-root", str(tmp_path), "crashy.handler", env=clean_env()
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        stuck = pool.submit(emu.invoke, {"sleep": 4})
        time.sleep(0.2)
        other = pool.submit(emu.invoke, {"sleep": 0.5})
        timed_out, survivor = stuck.result(), other.result()
    assert timed_out.status == 200 and timed_out.json()["errorType"] == "Sandbox.Timedout"
    assert survivor.status == 200, survivor.body
    pids = {survivor.json()["pid"], *(emu.invoke({}).json()["pid"] for _ in range(3))}
    assert "killing the bootstrap" not in emu.stderr
    assert len(pids) <= 2  # the same workers: the environment was not reset
