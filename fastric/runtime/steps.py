"""The invocation steps both loops share: `/next` response → invocation → event and context → reply → checks.

`loop.py` (plain `def` handlers, blocking socket) and `aioloop.py` (`async def` handlers, uvloop) differ only
in how they wait; everything they decide is decided here, once (the decisions that need no JSON codec are
`exchange.py`'s, re-exported here). Nothing here does I/O but logging.
"""

from __future__ import annotations

from fastric.runtime import logs
from fastric.runtime.exchange import (
    NEXT_FAILED,
    Reply,
    Stop,
    check_posted,
    next_invocation,
    next_lost,
    pipelines,
    post_lost,
    start,
)
from fastric.runtime.faults import describe_exception, dump_document
from fastric.runtime.marshal import decode_event, encode_result
from fastric.runtime.streaming import Stream, StreamedReply, streamed_reply

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from typing import Any

    from fastric.runtime.context import LambdaContext
    from fastric.runtime.wire.protocol import Invocation, Requests

__all__ = [
    "NEXT_FAILED",
    "Reply",
    "Stop",
    "begin",
    "check_posted",
    "error_reply",
    "next_invocation",
    "next_lost",
    "pipelines",
    "post_lost",
    "result_reply",
]


def begin(invocation: Invocation) -> tuple[Any, LambdaContext]:
    """Per-invocation state (log ids, `_X_AMZN_TRACE_ID`), then the decoded event and the context; the
    invocation lets go of the event's bytes (a large event's memory goes as soon as it is decoded)."""
    context = start(invocation)
    body, invocation.body = invocation.body, b""
    return decode_event(body, invocation.content_type), context


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
