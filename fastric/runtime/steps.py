"""The invocation steps both loops share: `/next` response → invocation → event and context → reply → checks.

`loop.py` (plain `def` handlers, blocking socket) and `aioloop.py` (`async def` handlers, uvloop) differ only
in how they wait; everything they decide is decided here, once. Nothing here does I/O but logging.
"""

from __future__ import annotations

import os

from fastric.runtime import logs
from fastric.runtime.context import LambdaContext
from fastric.runtime.faults import describe_exception, dump_document
from fastric.runtime.marshal import decode_event, encode_result
from fastric.runtime.streaming import Stream, StreamedReply, streamed_reply
from fastric.runtime.wire.parser import Response
from fastric.runtime.wire.protocol import Invocation, ProtocolError, Request, Requests, outcome, parse_invocation

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from typing import Any

NEXT_FAILED = "Failed to get next invocation"


class Stop(Exception):
    """The Runtime API told the runtime to stop (or is gone): leave the loop with this exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Reply:
    """What an invocation posts: a success (`/response`) or an error (`/error`), as one buffered request.

    Streamed replies (`fastric.streaming`) are written in pieces by the loop instead; they carry the same
    `kind` for the loop's messages."""

    __slots__ = ("kind", "request")

    def __init__(self, kind: str, request: Request):
        self.kind = kind  # "success" or "error", as in the "Failed to post handler ... response" messages
        self.request = request


def next_invocation(response: Response) -> Invocation | None:
    """The invocation a `/next` response announces; None for one that cannot be answered (logged)."""
    if response.status != 200:
        logs.runtime_log(f"{NEXT_FAILED}. Http Response code: {response.status}")
        raise Stop(1)
    try:
        return parse_invocation(response.headers, response.body)
    except ProtocolError as exc:
        logs.runtime_log(str(exc))
        if b"lambda-runtime-aws-request-id" in response.headers:
            return None  # an id refused for the wire: nothing can be posted for it
        raise Stop(1) from None


def begin(invocation: Invocation) -> tuple[Any, LambdaContext]:
    """Per-invocation state (log ids, `_X_AMZN_TRACE_ID`), then the decoded event and the context."""
    logs.set_request(invocation.request_id, invocation.tenant_id)
    if invocation.trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = invocation.trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]
    return event_and_context(invocation)


def event_and_context(invocation: Invocation) -> tuple[Any, LambdaContext]:
    """The handler's two arguments: the decoded event and a new context."""
    context = LambdaContext(
        invocation.request_id,
        invocation.client_context,
        invocation.cognito_identity,
        invocation.deadline_ms,
        invocation.function_arn,
        invocation.tenant_id,
    )
    return decode_event(invocation.body, invocation.content_type), context


def result_reply(requests: Requests, invocation: Invocation, result: Any) -> Reply | StreamedReply:
    """`POST /response` for a handler's result (FaultError if it cannot be serialized), or the streamed one
    for a streaming handler's `Stream`."""
    if result.__class__ is Stream:
        return streamed_reply(requests, invocation, result)
    body, content_type = encode_result(result)
    return Reply("success", requests.response(invocation.request_id, body, content_type, invocation.invocation_id))


def error_reply(requests: Requests, invocation: Invocation, exc: BaseException) -> Reply:
    """Log the error document for `exc`, then `POST /error` with it."""
    document, xray_cause = describe_exception(exc, invocation.request_id)
    logs.log_error(document)
    body = dump_document(document)
    return Reply("error", requests.error(invocation.request_id, body, xray_cause, invocation.invocation_id))


def check_posted(posted: Response, kind: str) -> None:
    """A refused POST is logged and the loop goes on; a 5xx stops the runtime."""
    if posted.status >= 300:
        logs.runtime_log(
            f"Failed to post handler {kind} response. Http response code: {posted.status}. "
            f"{posted.body.decode('utf-8', 'replace')}"
        )
        if outcome(posted.status) == "fatal":
            raise Stop(1)


def lost(message: str, exc: Exception) -> Stop:
    """Log why the Runtime API cannot be reached; the Stop to raise."""
    logs.runtime_log(f"{message} ({exc})")
    return Stop(1)


def next_lost(exc: Exception) -> Stop:
    return lost(f"{NEXT_FAILED}. No Response from endpoint", exc)


def post_lost(kind: str, exc: Exception) -> Stop:
    return lost(f"Failed to post handler {kind} response", exc)


# FASTRIC_PIPELINING=0 turns pipelining off, for a server that sends Date but drops pipelined requests.
PIPELINING = os.environ.get("FASTRIC_PIPELINING", "1").strip().lower() not in ("0", "off", "false", "no")
_announced = False


def pipelines(response: Response) -> bool:
    """Whether to write the next `GET /next` behind a POST in one write (HTTP/1.1 pipelining).

    Only to a full HTTP/1.1 server: one that sends the Date header RFC 9110 asks of origin servers, as Lambda's
    does; HTTP/1.1 obliges such a server to answer pipelined requests in order. A hand-rolled server without it
    gets each request only after the previous response, as awslambdaric sends them (docs/architecture.md)."""
    on = PIPELINING and b"date" in response.headers
    if not _announced:
        _announce(on, response)
    return on


def _announce(on: bool, response: Response) -> None:
    """Say once, at debug level, which mode the runtime uses."""
    global _announced
    _announced = True
    if on:
        why = "the Runtime API sends Date"
    elif not PIPELINING:
        why = "FASTRIC_PIPELINING is off"
    else:
        why = "the Runtime API sends no Date header"
    import logging

    logging.getLogger("fastric").debug("HTTP/1.1 pipelining %s (%s)", "on" if on else "off", why)
