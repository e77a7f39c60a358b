"""Multi-concurrency (Lambda Managed Instances, `AWS_LAMBDA_MAX_CONCURRENCY=N`): N forked worker processes.

As awslambdaric 4.2.2: each worker imports the handler itself and keeps its own keep-alive connection;
stdout/stderr go to `_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET` when it is set; the parent exits 0 once every
worker has exited, and does not respawn them. SIGTERM is forwarded to every worker, each of which runs its own
`on_shutdown` hooks; the internal extension that makes Lambda send SIGTERM is registered once, by the first.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

from fastric.runtime import lifecycle, logs
from fastric.runtime.shutdown import RegistrationGate, exit_status


def _redirect_output(socket_path: str) -> None:
    for fd in (1, 2):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(socket_path)
        os.dup2(sock.fileno(), fd)
        sock.close()


def _flush() -> None:
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def run_workers(count: int, worker: Callable[[], None]) -> int:
    """Fork `count` workers running `worker()`; wait for all of them; return the parent's exit code (0)."""
    logs.emit_worker_pool_event(count)  # also closes the telemetry fd: workers log to stdout
    socket_path = os.environ.get("_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET")
    children = []
    gate = RegistrationGate()  # one internal extension for all workers, registered by the first (shutdown.py)
    for index in range(max(count, 1)):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                gate.enter(index)
                lifecycle.registration_gate = gate
                if socket_path:
                    _redirect_output(socket_path)
                logs.setup()
                worker()
            except SystemExit as exc:
                code = exit_status(exc)
            finally:
                _flush()
                os._exit(code)
        children.append(pid)
    gate.close()

    def forward(signum, _frame):
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
    return 0
