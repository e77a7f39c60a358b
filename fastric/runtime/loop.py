"""The runtime loop: next → handle → post, on the one keep-alive connection (start-up is in startup.py).

Read top to bottom, this is the Runtime API's sequence. Plain `def` handlers run on a blocking socket, with no
event loop at all, so `asyncio.run()` and friends work inside them exactly as in plain Python; `async def`
handlers run on one uvloop loop that lives as long as the process (aioruntime.py), and share the steps below.
"""

from __future__ import annotations

import os
from types import CoroutineType

from fastric.runtime import logs
from fastric.runtime.context import LambdaContext
from fastric.runtime.faults import FaultError, describe_exception, dump_document, error_document
from fastric.runtime.handler import is_async_handler
from fastric.runtime.marshal import decode_event, encode_result
from fastric.runtime.wire.connection import Connection, ConnectionLost, Response
from fastric.runtime.wire.protocol import Invocation, ProtocolError, Requests, outcome, parse_invocation

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn


class Stop(Exception):
    """The Runtime API told the runtime to stop (or is gone): leave the loop with this exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def run_loop(address: str, requests: Requests, handler: Callable, first_next=None, snapstart: bool = False) -> int:
    """Serve invocations until the Runtime API ends the process; returns the exit code.

    `first_next` is a socket on which the first `/next` was already sent (see startup.py).
    """
    connection = Connection(address, first_next)
    try:
        if snapstart:
            from fastric.runtime.snapstart import run_snapstart_hooks

            run_snapstart_hooks(connection, requests)
        response = fetch_next(connection.response_to, requests)
        if is_async_handler(handler):
            from fastric.runtime.aioloop import serve_async

            return serve_async(connection, requests, handler, response)
        return serve(connection, requests, handler, response)
    except Stop as stop:
        return stop.code


def serve(connection: Connection, requests: Requests, handler: Callable, response: Response) -> NoReturn:
    """The invocation loop for plain `def` handlers, from the first `/next` response; raises Stop to end."""
    while True:
        invocation = next_invocation(response)
        if invocation is not None:
            try:
                event, context = begin(invocation)
                result = handler(event, context)
                if result.__class__ is CoroutineType:
                    result = run_coroutine(result)
                post = result_request(requests, invocation, result)
            except Exception as exc:
                post = error_request(requests, invocation, exc)
            pipelined = b"date" in response.headers  # see send_post
            send_post(connection, post, requests.next if pipelined else None)
            response = fetch_next(connection.response_to if pipelined else connection.request, requests)
        else:
            response = fetch_next(connection.request, requests)


# -- the steps ------------------------------------------------------------------------------------------


def fetch_next(request: Callable[[bytes], Response], requests: Requests) -> Response:
    """`GET /next`; a Runtime API that cannot be reached stops the runtime."""
    try:
        return request(requests.next)
    except ConnectionLost as exc:
        raise lost("Failed to get next invocation. No Response from endpoint", exc) from None


def next_invocation(response: Response) -> Invocation | None:
    """The invocation a `/next` response announces; None for one that cannot be answered (logged)."""
    if response.status != 200:
        logs.runtime_log(f"Failed to get next invocation. Http Response code: {response.status}")
        raise Stop(1)
    try:
        return parse_invocation(response.headers, response.body)
    except ProtocolError as exc:
        logs.runtime_log(str(exc))
        if b"lambda-runtime-aws-request-id" in response.headers:
            return None  # an id refused for the wire: nothing can be posted for it
        raise Stop(1) from None


def begin(invocation: Invocation) -> tuple[Any, LambdaContext]:
    """Per-invocation state (log ids, `_X_AMZN_TRACE_ID`), then the context and the decoded event."""
    logs.set_request(invocation.request_id, invocation.tenant_id)
    if invocation.trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = invocation.trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]
    context = LambdaContext(
        invocation.request_id,
        invocation.client_context,
        invocation.cognito_identity,
        invocation.deadline_ms,
        invocation.function_arn,
        invocation.tenant_id,
    )
    return decode_event(invocation.body, invocation.content_type), context


def result_request(requests: Requests, invocation: Invocation, result: Any) -> list[bytes]:
    """`POST /response` for a handler's result (FaultError if it cannot be serialized)."""
    body, content_type = encode_result(result)
    return requests.response(invocation.request_id, body, content_type, invocation.invocation_id)


def error_request(requests: Requests, invocation: Invocation, exc: Exception) -> list[bytes]:
    """Log the error document for `exc`, then `POST /error` with it."""
    document, xray_cause = describe_exception(exc, invocation.request_id)
    logs.log_error(document)
    return requests.error(invocation.request_id, dump_document(document), xray_cause, invocation.invocation_id)


def send_post(connection: Connection, post: list[bytes], then: bytes | None) -> None:
    """Send a `/response` or `/error`; a refused one is logged and the loop goes on, a 5xx stops it.

    `then` (the next `GET /next`) is pipelined behind the POST in the same write when the Runtime API is a
    full HTTP/1.1 server -- one that sends the Date header RFC 9110 asks of origin servers, as Lambda's does;
    HTTP/1.1 obliges such a server to answer pipelined requests in order. A hand-rolled server without it
    gets each request only after the previous response, as awslambdaric sends them."""
    try:
        posted = connection.request(post) if then is None else connection.request_pair(post, then)
    except ConnectionLost as exc:
        raise lost(f"Failed to post handler {post_kind(post)} response", exc) from None
    check_posted(posted, post)


def check_posted(posted: Response, post: list[bytes]) -> None:
    if posted.status >= 300:
        logs.runtime_log(
            f"Failed to post handler {post_kind(post)} response. Http response code: {posted.status}. "
            f"{posted.body.decode('utf-8', 'replace')}"
        )
        if outcome(posted.status) == "fatal":
            raise Stop(1)


def post_kind(post: list[bytes]) -> str:
    return "error" if b"/error HTTP/1.1\r\n" in post[0] else "success"


def lost(message: str, exc: ConnectionLost) -> Stop:
    logs.runtime_log(f"{message} ({exc})")
    return Stop(1)


_coroutine_loop = None


def run_coroutine(coroutine: CoroutineType) -> Any:
    """Run a coroutine a plain `def` handler returned, on one uvloop loop kept for later ones."""
    global _coroutine_loop
    if _coroutine_loop is None:
        import uvloop

        _coroutine_loop = uvloop.new_event_loop()
    return _coroutine_loop.run_until_complete(coroutine)


def report_init_error(address: str, requests: Requests, exc: Exception) -> int:
    """Log and post an init failure to `/init/error`; returns the exit code, 1."""
    if isinstance(exc, FaultError):
        document = error_document(exc.message, exc.error_type, "", exc.stack)
    else:
        document, _ = describe_exception(exc, "")
    logs.warn_unhandled_init()
    logs.log_error(document)
    try:
        response = Connection(address).request(requests.init_error(dump_document(document), document["errorType"]))
    except ConnectionLost as exc:
        logs.runtime_log(f"Failed to post init error: {exc}")
        return 1
    if outcome(response.status) != "ok":
        logs.runtime_log(
            f"Failed to post init error. Http response code: {response.status}. "
            f"{response.body.decode('utf-8', 'replace')}"
        )
    return 1
