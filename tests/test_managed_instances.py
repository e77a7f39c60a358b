"""Wire tests of Managed Instances mode (`AWS_LAMBDA_MAX_CONCURRENCY`) against Runtime APIs on 127.0.0.1: N `/next`
held at once by one process for `async def` handlers, retries of a failed `/next`, a quiet 403 on `/init/error`.
(End-to-end tests through the emulator: tests/emulator/test_emulated_managed_instances.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runtime_api import RuntimeAPIServer, base_env, run_client
from test_reliability import RawRuntimeAPI, next_answer

CONCURRENT = str(Path(__file__).resolve().parent / "fixtures" / "concurrent")
CORE = str(Path(__file__).resolve().parent / "fixtures" / "core")
NEXT = "/2018-06-01/runtime/invocation/next"
ERROR_500 = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


def test_async_handler_holds_n_next_calls_on_n_connections_in_one_process():
    with RuntimeAPIServer() as srv:
        srv.hold_next_when_empty = True
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastric", "mi_app.echo"],
            cwd=CONCURRENT,
            env={**base_env(srv.address), "AWS_LAMBDA_MAX_CONCURRENCY": "5", "FASTRIC_WORKERS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # five /next outstanding at once, each on its own connection, before any invocation exists
            assert srv.wait_for(lambda reqs: len({r.conn for r in reqs if r.path == NEXT}) == 5)
            for n in range(10):
                srv.add_invocation({"n": n})
            assert srv.wait_for(lambda reqs: len([r for r in reqs if r.method == "POST"]) == 10)
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    posts = [r for r in srv.requests if r.method == "POST"]
    assert sorted(r.json()["event"]["n"] for r in posts) == list(range(10))
    assert len({r.json()["pid"] for r in posts}) == 1
    ids = {r.path.split("/")[-2] for r in posts}
    assert len(ids) == 10  # each response on its own id


def test_a_failed_next_is_retried_with_backoff():
    with RawRuntimeAPI([ERROR_500, ERROR_500, next_answer(b"rid-after-retry")]) as api:
        run = run_client("fastric", "mi_app.echo", api, cwd=CONCURRENT, env={"AWS_LAMBDA_MAX_CONCURRENCY": "1"})
    posts = [line for _, line in api.seen if line.startswith("POST")]
    assert posts == ["POST /2018-06-01/runtime/invocation/rid-after-retry/response HTTP/1.1"]
    assert b"Retrying the next invocation in 0.1 s (attempt 1)" in run.stdout
    assert b"Retrying the next invocation in 0.2 s (attempt 2)" in run.stdout


def test_a_second_workers_403_on_init_error_is_quiet():
    posted = []

    def respond(request):
        if request.path.endswith("/init/error"):
            posted.append(request)
            if len(posted) > 1:
                return 403, {"Content-Type": "application/json"}, b'{"errorType":"InvalidStateTransition"}'
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        run = run_client(
            "fastric", "import_error.handler", srv, cwd=CORE, env={"AWS_LAMBDA_MAX_CONCURRENCY": "3"}, timeout=30
        )
    assert len(posted) == 3
    assert b"Runtime.ImportModuleError" in run.stdout
    assert b"Failed to post init error" not in run.stdout


def test_k_processes_share_n(tmp_path):
    with RuntimeAPIServer() as srv:
        srv.hold_next_when_empty = True
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastric", "mi_app.echo"],
            cwd=CONCURRENT,
            env={**base_env(srv.address), "AWS_LAMBDA_MAX_CONCURRENCY": "5", "FASTRIC_WORKERS": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert srv.wait_for(lambda reqs: len({r.conn for r in reqs if r.path == NEXT}) == 5)
            for n in range(20):
                srv.add_invocation({"n": n})
            assert srv.wait_for(lambda reqs: len([r for r in reqs if r.method == "POST"]) == 20)
            children = subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    assert len(children) == 2
    pids = {r.json()["pid"] for r in srv.requests if r.method == "POST"}
    assert pids <= {int(pid) for pid in children} and os.getpid() not in pids


def test_fastric_workers_defaults_to_the_usable_vcpus_at_most_n(monkeypatch):
    from fastric.runtime.workers import worker_processes

    monkeypatch.delenv("FASTRIC_WORKERS", raising=False)
    assert worker_processes(1000) == len(os.sched_getaffinity(0))
    assert worker_processes(1) == 1
    monkeypatch.setenv("FASTRIC_WORKERS", "3")
    assert worker_processes(8) == 3 and worker_processes(2) == 2
    monkeypatch.setenv("FASTRIC_WORKERS", "nonsense")
    assert worker_processes(1000) == (os.cpu_count() or 1)
