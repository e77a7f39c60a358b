"""Start-up: init, then the driver chosen once, with everything up to the first response kept light.

`init` is logging set-up, the handler import, the internal extension when the function asked for SIGTERM
(`shutdown.py`); it returns the loaded `Function` — sync or async, buffered or streamed, each decided here, once —
or the init failure. `serve` then sends the first `GET /next` on a plain socket and runs the function's driver
(`loop.py` for plain `def` handlers, `aioloop.py` for `async def` ones, `concurrent.py` for Managed Instances
pollers), returning the exit code.

A plain `def` handler's first invocation is served by the blocking driver with the standard library's codec
(`plainjson.FIRST`): the same `core.make_answer` as every later invocation, before orjson and httptools are
imported. The hot path is imported after its response is posted and before the next `/next`. For `async def`
handlers (and streaming ones), the driver's modules are imported on a background thread while the first `/next`
is outstanding, and the driver takes the socket, and the response pending on it, over when that import is done.
Nothing on the way to the first `/next` imports `logging`, `re`, `typing` or `socket.py` (see the module
docstrings of `logs`, `protocol` and `connection`). Init failures and SnapStart import what they need in line.
"""

from __future__ import annotations

import os
import sys
from _signal import SIGTERM, getsignal

from fastric.runtime import lifecycle, logs
from fastric.runtime.core import Session, make_answer
from fastric.runtime.handler import add_task_root_to_path, is_async_handler, load_handler
from fastric.runtime.streaming import content_type_of
from fastric.runtime.wire.connection import Connection, ConnectionLost, open_socket
from fastric.runtime.wire.protocol import Requests, outcome

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable
    from typing import NoReturn


class Function:
    """The loaded handler and what it is, decided once at init: `is_async` (an `async def`, an async generator,
    or a callable or partial of one: the uvloop driver) and `content_type` (None, or a `@fastric.streaming`
    handler's: its reply is streamed)."""

    __slots__ = ("handler", "is_async", "content_type")

    def __init__(self, handler: Callable):
        self.handler = handler
        self.is_async = is_async_handler(handler)
        self.content_type = content_type_of(handler)


def run(handler_name: str) -> NoReturn:
    """Run the function `handler_name` against `$AWS_LAMBDA_RUNTIME_API` until the Runtime API ends it."""
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("fastric: AWS_LAMBDA_RUNTIME_API is not set (host:port of the Lambda Runtime API)\n")
        sys.exit(1)
    concurrency = os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY")
    if concurrency is not None:
        from fastric.runtime import aioloop, loop, marshal  # noqa: F401  # before the fork: workers share the pages
        from fastric.runtime.workers import run_workers

        sys.exit(run_workers(int(concurrency), lambda plan: run_worker(address, handler_name, plan)))
    logs.setup()
    run_worker(address, handler_name)


def run_worker(address: str, handler_name: str, plan: Callable[[bool], int] | None = None) -> NoReturn:
    """Init, then serve, in this process; exits with the exit code.

    `plan` (a multi-concurrency worker): told whether the handler is async, it answers how many invocations this
    process holds in flight; async handlers then run `concurrent.py`'s pollers."""
    requests = Requests(address)
    function = init(address, handler_name)
    if not isinstance(function, Function):
        sys.exit(report_init_error(address, requests, function))
    sys.exit(serve(address, requests, function, plan))


def init(address: str, handler_name: str) -> Function | Exception:
    """Import the handler (once) and prepare SIGTERM handling; the loaded function, or the init failure."""
    add_task_root_to_path()
    lifecycle.advance(lifecycle.Phase.IMPORTING)  # fastric.after_response() now queues work for the loop
    try:
        handler = load_handler(handler_name)
    except Exception as exc:
        return exc
    logs.settle()
    function = Function(handler)
    prepare_shutdown(address)  # before any worker's first /next: Lambda closes extension registration then
    return function


def serve(address: str, requests: Requests, function: Function, plan: Callable[[bool], int] | None = None) -> int:
    """Serve invocations with the function's driver until the Runtime API ends the process; the exit code."""
    if plan is not None:
        in_flight = plan(function.is_async)
        if function.is_async:
            from fastric.runtime import concurrent

            return concurrent.run(address, requests, async_answer(requests, function), in_flight)
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        from fastric.runtime.snapstart import run_snapstart_hooks

        connection = Connection(address)
        run_snapstart_hooks(connection, requests)
        return drive(connection, Session(requests), function)
    if not function.is_async and function.content_type is None:
        return serve_plain(address, requests, function)
    import threading

    importer = threading.Thread(target=_import, args=(function.is_async,), name="fastric-import", daemon=True)
    importer.start()
    sock = send_first_next(address, requests.next[0])
    importer.join()
    return drive(Connection(address, sock), Session(requests, next_sent=sock is not None), function)


def serve_plain(address: str, requests: Requests, function: Function) -> int:
    """A plain `def` handler: the first invocation with the standard library's codec, then the hot path."""
    from fastric.runtime import loop
    from fastric.runtime.plainjson import FIRST

    sock = send_first_next(address, requests.next[0])
    connection = Connection(address, sock)
    session = Session(requests, next_sent=sock is not None)
    code = loop.serve_first(connection, session, make_answer(requests, function.handler, FIRST, loop.run_coroutine))
    if code is not None:
        return code
    return drive(connection, session, function)  # the hot path: after the first response, before the next /next


def drive(connection: Connection, session: Session, function: Function) -> int:
    """The function's driver on `connection` with the hot path's codec: `aioloop` for async handlers, else `loop`."""
    if function.is_async:
        from fastric.runtime import aioloop

        return aioloop.run(connection, session, async_answer(session.requests, function))
    from fastric.runtime import loop
    from fastric.runtime.marshal import HOT
    from fastric.runtime.streaming import for_blocking_loop

    handler = for_blocking_loop(function.handler, function.content_type, loop.run_coroutine)
    return loop.serve(connection, session, make_answer(session.requests, handler, HOT, loop.run_coroutine))


def async_answer(requests: Requests, function: Function) -> Callable:
    """The uvloop drivers' answer for the function, with the hot path's codec."""
    from fastric.runtime.core import make_async_answer
    from fastric.runtime.marshal import HOT
    from fastric.runtime.streaming import for_async_loop

    return make_async_answer(requests, for_async_loop(function.handler, function.content_type), HOT)


def prepare_shutdown(address: str) -> None:
    """After the handler's import, before the first `/next`: when the function has `on_shutdown` hooks or a SIGTERM
    handler of its own, SIGTERM handling and the internal extension (`shutdown.py`, imported only then)."""
    lifecycle.advance(lifecycle.Phase.UNARMED)
    if lifecycle.shutdown_hooks or callable(getsignal(SIGTERM)):
        from fastric.runtime.shutdown import prepare

        prepare(address)


def _import(is_async: bool) -> None:
    """The driver's modules and the hot path's codec, imported while the first `/next` is outstanding."""
    try:
        if is_async:
            from fastric.runtime import aioloop  # noqa: F401
        else:
            from fastric.runtime import loop  # noqa: F401
        from fastric.runtime import marshal  # noqa: F401
    except BaseException:  # the main thread imports them again and reports the failure itself
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
