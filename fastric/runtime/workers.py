"""Multi-concurrency (Lambda Managed Instances, `AWS_LAMBDA_MAX_CONCURRENCY=N`): the worker processes.

Plain `def` handlers get awslambdaric 4.2.2's model: N forked workers, each importing the handler itself with
its own keep-alive connection. `async def` handlers get K processes (`FASTRIC_WORKERS`, default: the vCPUs) that each
hold their share of the N invocations in flight on one uvloop loop (`concurrent.py`).

Which one is known only once the handler is imported, so the first worker is forked alone: it imports the
handler and tells the parent ("async" or "sync") through a pipe; the parent then forks the others (K - 1, or
N - 1). Every worker's stdout/stderr go to `_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET` when it is set; the
parent makes no Runtime API call, exits 0 once every worker has exited, and does not respawn them.

SIGTERM is forwarded to every worker, and each runs its own `on_shutdown` hooks. The internal extension that makes
Lambda send SIGTERM (`shutdown.py`) is registered once, by the first worker, before it tells its mode: the others
are forked after that, told not to register it again (Lambda refuses a second extension of the same name).
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from functools import partial

from fastric.runtime import lifecycle, logs
from fastric.runtime.shutdown import exit_status


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


Worker = Callable[[Callable[[bool], int]], None]  # runs one worker; given `plan(is_async) -> invocations in flight`


def worker_processes(max_concurrency: int) -> int:
    """K, the processes that share N invocations of an `async def` handler: `FASTRIC_WORKERS`, else one per usable
    vCPU (one loop uses at most one core); never more than N (README, "Lambda Managed Instances")."""
    value = os.environ.get("FASTRIC_WORKERS", "").strip()
    try:
        wanted = int(value) if value else len(os.sched_getaffinity(0))
    except (ValueError, AttributeError, OSError):
        wanted = os.cpu_count() or 1
    return max(1, min(wanted, max_concurrency))


def share(total: int, parts: int, index: int) -> int:
    """Worker `index`'s part of `total` split as evenly as possible over `parts`."""
    return total // parts + (1 if index < total % parts else 0)


def run_workers(count: int, worker: Worker) -> int:
    """Fork the workers for `AWS_LAMBDA_MAX_CONCURRENCY=count`; wait for all of them; the parent's exit code (0)."""
    count = max(count, 1)
    logs.emit_worker_pool_event(count)  # also closes the telemetry fd: workers log to stdout
    socket_path = os.environ.get("_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET")
    processes = worker_processes(count)
    read_end, write_end = os.pipe()

    def first_plan(is_async: bool) -> int:
        os.write(write_end, b"a" if is_async else b"s")
        os.close(write_end)
        return share(count, processes, 0)

    children = [_fork(lambda: worker(first_plan), socket_path, close=read_end)]
    os.close(write_end)
    mode = _read_mode(read_end)  # b"" if the first worker died before it could tell (an init error)
    os.close(read_end)
    others = processes - 1 if mode == b"a" else count - 1
    lifecycle.registers_extension = False  # the first worker registered it, if the function needs it
    for index in range(1, others + 1):
        children.append(_fork(partial(worker, _fixed(share(count, processes, index))), socket_path))

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


def _fixed(in_flight: int) -> Callable[[bool], int]:
    """The plan of a worker forked once the mode is known."""

    def plan(is_async: bool) -> int:
        return in_flight

    return plan


def _fork(run: Callable[[], None], socket_path: str | None, close: int | None = None) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        if close is not None:
            os.close(close)
        if socket_path:
            _redirect_output(socket_path)
        logs.setup()
        run()
    except SystemExit as exc:
        code = exit_status(exc)
    finally:
        _flush()
        os._exit(code)


def _read_mode(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, 1)
        except InterruptedError:
            continue
