"""Multi-concurrency (Lambda Managed Instances, `AWS_LAMBDA_MAX_CONCURRENCY=N`): the worker processes.

Plain `def` handlers get awslambdaric 4.2.2's model: N forked workers, each importing the handler itself with
its own keep-alive connection. `async def` handlers get K processes (`FASTRIC_WORKERS`, default: the vCPUs) that each
hold their share of the N invocations in flight on one uvloop loop (`concurrent.py`).

Which one is known only once the handler is imported, so the first worker is forked alone: it imports the
handler and tells the parent ("async" or "sync") through a pipe; the parent then forks the others (K - 1, or
N - 1). Every worker's stdout/stderr go to `_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET` when it is set; the
parent exits 0 once every worker has exited.

A crash is a crash: each forked worker of a plain `def` handler publishes the request id it is working on in a
slot of a shared memory page (`logs.set_request`, wrapped). When one dies without being told to stop, the parent
posts `Runtime.ExitError` (with its exit status or signal) for the request it held, at once, and forks a
replacement; the other workers and their invocations are untouched. (awslambdaric's parent does nothing: the
invocation waits for its timeout.) A worker that dies holding no request is not replaced, so a handler that
cannot be imported does not crash-loop.

SIGTERM is forwarded to every worker, and each runs its own `on_shutdown` hooks. The internal extension that makes
Lambda send SIGTERM (`shutdown.py`) is registered once, by the first worker, before it tells its mode: the others
are forked after that, told not to register it again (Lambda refuses a second extension of the same name).
"""

from __future__ import annotations

import mmap
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
    slots = RequestSlots(count)
    read_end, write_end = os.pipe()

    def first_plan(is_async: bool) -> int:
        os.write(write_end, b"a" if is_async else b"s")
        os.close(write_end)
        return share(count, processes, 0)

    children = {_fork(lambda: worker(first_plan), socket_path, close=read_end, slot=(slots, 0)): 0}
    os.close(write_end)
    mode = _read_mode(read_end)  # b"" if the first worker died before it could tell (an init error)
    os.close(read_end)
    others = processes - 1 if mode == b"a" else count - 1
    lifecycle.registers_extension = False  # the first worker registered it, if the function needs it
    for index in range(1, others + 1):
        plan = _fixed(share(count, processes, index))
        children[_fork(partial(worker, plan), socket_path, slot=(slots, index))] = index
    stopping = False

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        for child in list(children):
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    while children:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        index = children.pop(pid, -1)
        if index < 0:
            continue
        request_id = slots.take(index)
        if stopping or mode != b"s" or not request_id:
            continue  # async workers hold many invocations: not tracked; nothing held: not replaced
        post_exit_error(request_id, status)
        children[_fork(partial(worker, _fixed(1)), socket_path, slot=(slots, index))] = index
    return 0


class RequestSlots:
    """One slot per worker in a page shared across fork: the request id the worker is working on."""

    SIZE = 64

    def __init__(self, count: int):
        self.page = mmap.mmap(-1, max(count, 1) * self.SIZE)

    def publish(self, index: int, request_id: str) -> None:
        data = request_id.encode("ascii", "replace")[: self.SIZE - 1]
        at = index * self.SIZE
        self.page[at] = 0
        self.page[at + 1 : at + 1 + len(data)] = data
        self.page[at] = len(data)

    def take(self, index: int) -> str:
        """The slot's request id (empty if none); the slot is cleared."""
        at = index * self.SIZE
        length = self.page[at]
        self.page[at] = 0
        return self.page[at + 1 : at + 1 + length].decode("ascii", "replace")


def _publish_requests(slots: RequestSlots, index: int) -> None:
    """In a worker: every `logs.set_request` (once per invocation) also fills the worker's slot."""
    set_request = logs.set_request

    def publishing(request_id: str, tenant_id: str | None) -> None:
        slots.publish(index, request_id)
        set_request(request_id, tenant_id)

    logs.set_request = publishing


def exit_reason(status: int) -> str:
    """A `waitpid` status as Lambda words it: `exit status 3`, `signal: killed`."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.strsignal(signum) or f"signal {signum}"
        except ValueError:
            name = f"signal {signum}"
        return f"signal: {name.lower()}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def post_exit_error(request_id: str, status: int) -> None:
    """`POST /error` with `Runtime.ExitError` for the request a dead worker held (best effort: one try)."""
    import http.client
    import json

    address = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    host, _, port = address.rpartition(":")
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        message = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    else:
        message = f"RequestId: {request_id} Error: Runtime exited with error: {exit_reason(status)}"
    body = json.dumps({"errorMessage": message, "errorType": "Runtime.ExitError"}).encode()
    try:
        connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=2)
        try:
            connection.request(
                "POST",
                f"/2018-06-01/runtime/invocation/{request_id}/error",
                body,
                {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Runtime.ExitError"},
            )
            connection.getresponse().read()
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException):
        pass


def _fixed(in_flight: int) -> Callable[[bool], int]:
    """The plan of a worker forked once the mode is known."""

    def plan(is_async: bool) -> int:
        return in_flight

    return plan


def _fork(
    run: Callable[[], None],
    socket_path: str | None,
    close: int | None = None,
    slot: tuple[RequestSlots, int] | None = None,
) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        if close is not None:
            os.close(close)
        if slot is not None:
            _publish_requests(*slot)
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
