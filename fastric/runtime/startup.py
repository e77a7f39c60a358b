"""Start-up: everything up to the first response, kept light so that a cold start ends early.

Init is: logging set-up, the handler import, the internal extension when the function asked for SIGTERM
(`shutdown.py`), then the first `GET /next`, on a plain socket. The loop is chosen here, once: `loop.py` for
plain `def` handlers, `aioloop.py` for `async def` ones.

A plain `def` handler's first invocation is served on the standard library (`first.py`): the hot path (orjson,
httptools, the loop) is imported after its response is posted and before the next `/next`. For `async def`
handlers (and streaming ones), the chosen loop's modules are imported on a background thread while the first
`/next` is outstanding, and the loop takes the socket, and the response pending on it, over when that import is
done. Nothing on the way to the first `/next` imports `logging`, `re`, `typing` or `socket.py` (see the module
docstrings of `logs`, `protocol` and `connection`). Init failures and SnapStart import what they need in line.
"""

from __future__ import annotations

import os
import sys
from _signal import SIGTERM, getsignal

from fastric.runtime import lifecycle, logs
from fastric.runtime.exchange import Stop
from fastric.runtime.handler import add_task_root_to_path, is_async_handler, load_handler
from fastric.runtime.streaming import content_type_of
from fastric.runtime.wire.connection import Connection, ConnectionLost, open_socket
from fastric.runtime.wire.protocol import Requests, outcome

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable
    from types import ModuleType
    from typing import NoReturn


def run(handler_name: str) -> NoReturn:
    """Run the function `handler_name` against `$AWS_LAMBDA_RUNTIME_API` until the Runtime API ends it."""
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("fastric: AWS_LAMBDA_RUNTIME_API is not set (host:port of the Lambda Runtime API)\n")
        sys.exit(1)
    concurrency = os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY")
    if concurrency is not None:
        from fastric.runtime.workers import run_workers

        loop_module(False)  # imported once, before the fork: the workers share its pages (orjson, httptools)

        sys.exit(run_workers(int(concurrency), lambda plan: run_worker(address, handler_name, plan)))
    logs.setup()
    run_worker(address, handler_name)


def run_worker(address: str, handler_name: str, plan: Callable[[bool], int] | None = None) -> NoReturn:
    """Init (handler import), then the invocation loop, in this process.

    `plan` (a multi-concurrency worker): told whether the handler is async, it answers how many invocations this
    process holds in flight; async handlers then run `concurrent.py`'s pollers."""
    add_task_root_to_path()
    requests = Requests(address)
    lifecycle.state = lifecycle.IMPORTING  # fastric.after_response() now queues work for the loop
    try:
        handler = load_handler(handler_name)
    except Exception as exc:
        sys.exit(report_init_error(address, requests, exc))
    logs.settle()
    is_async = is_async_handler(handler)
    prepare_shutdown(address)  # before any worker's first /next: Lambda closes extension registration then
    if plan is not None:
        in_flight = plan(is_async)
        if is_async:
            from fastric.runtime import concurrent

            sys.exit(concurrent.run(address, requests, handler, in_flight))
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        from fastric.runtime.snapstart import run_snapstart_hooks

        connection = Connection(address)
        run_snapstart_hooks(connection, requests)
        sys.exit(loop_module(is_async).run(connection, requests, handler, False))
    if not is_async and content_type_of(handler) is None:
        sys.exit(run_plain_first(address, requests, handler))
    import threading

    importer = threading.Thread(target=_import, args=(is_async,), name="fastric-import", daemon=True)
    importer.start()
    sock = send_first_next(address, requests.next[0])
    importer.join()
    sys.exit(loop_module(is_async).run(Connection(address, sock), requests, handler, sock is not None))


def run_plain_first(address: str, requests: Requests, handler: Callable) -> int:
    """A plain `def` handler: the first invocation on the standard library, then the loop; the exit code."""
    from fastric.runtime.first import serve_first

    sock = send_first_next(address, requests.next[0])
    connection = Connection(address, sock)
    try:
        serve_first(connection, requests, handler, sock is not None)
    except Stop as stop:
        return stop.code
    loop = loop_module(False)  # the hot path: after the first response, before the next /next
    return loop.run(connection, requests, handler, False)


def prepare_shutdown(address: str) -> None:
    """After the handler's import, before the first `/next`: when the function has `on_shutdown` hooks or a SIGTERM
    handler of its own, SIGTERM handling and the internal extension (`shutdown.py`, imported only then)."""
    lifecycle.state = lifecycle.UNARMED
    if lifecycle.shutdown_hooks or callable(getsignal(SIGTERM)):
        from fastric.runtime.shutdown import prepare

        prepare(address)


def loop_module(is_async: bool) -> ModuleType:
    """The loop for the handler, chosen once: `aioloop` for `async def` handlers, else `loop` (imported here)."""
    if is_async:
        from fastric.runtime import aioloop

        return aioloop
    from fastric.runtime import loop

    return loop


def _import(is_async: bool) -> None:
    try:
        loop_module(is_async)
    except BaseException:  # the main thread imports it again and reports the failure itself
        pass


def send_first_next(address: str, request: bytes) -> _socket.socket | None:
    """Connect and send the first `/next` request; None if that failed (the loop then connects itself)."""
    try:
        sock = open_socket(address)
    except OSError:
        return None
    try:
        sock.sendall(request)
    except OSError:
        sock.close()
        return None
    return sock


def report_init_error(address: str, requests: Requests, exc: Exception) -> int:
    """Log and post an init failure to `/init/error`; returns the exit code, 1."""
    from fastric.runtime.faults import FaultError, describe_exception, dump_document, error_document
    from fastric.runtime.wire.parser import MalformedResponse

    if isinstance(exc, FaultError):
        document = error_document(exc.message, exc.error_type, "", exc.stack)
    else:
        document, _ = describe_exception(exc, "")
    logs.warn_unhandled_init()
    logs.log_error(document)
    try:
        response = Connection(address).request(requests.init_error(dump_document(document), document["errorType"]))
    except (ConnectionLost, MalformedResponse) as error:
        logs.runtime_log(f"Failed to post init error: {error}")
        return 1
    if response.status == 403 and "AWS_LAMBDA_MAX_CONCURRENCY" in os.environ:
        return 1  # another worker has posted the init error already: expected, and quiet
    if outcome(response.status) != "ok":
        logs.runtime_log(
            f"Failed to post init error. Http response code: {response.status}. "
            f"{response.body.decode('utf-8', 'replace')}"
        )
    return 1
