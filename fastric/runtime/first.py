"""The first invocation of a plain `def` handler, served before the hot path is imported.

A cold start ends when the first response reaches the caller. Start-up has sent the first `GET /next` on a plain
socket; `serve_first` reads its answer with `PlainResponseParser`, decodes the event and encodes the result with
`plainjson` (the standard library's `_json`), and posts the response. The hot path (orjson, httptools, the loop) is
imported by start-up only after that post and before the next `/next`: never in front of the first response, and
never while the execution environment could be frozen (Lambda runs nothing between `/next` calls).

The answer is the hot path's, by construction: `answer` takes the same steps in the same order as `loop.answer`
(`exchange.start`, decode, handler, encode, or the error reply), and whatever the standard library cannot give
exactly as the hot path would (an event or a result only orjson reads or writes so, a coroutine to run, an error
document) is handed to the hot path's own code, imported there and then.
"""

from __future__ import annotations

from fastric.runtime import lifecycle
from fastric.runtime.exchange import Reply, check_posted, next_invocation, next_lost, post_lost, start
from fastric.runtime.plainjson import NOT_PLAIN, decode_plain, encode_plain
from fastric.runtime.wire.connection import Connection, ConnectionLost
from fastric.runtime.wire.parser import MalformedResponse

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from fastric.runtime.wire.protocol import Invocation, Requests


def serve_first(connection: Connection, requests: Requests, handler: Callable, next_sent: bool) -> None:
    """Read the first invocation (its `/next` is on `connection` when `next_sent`), answer it, post the reply,
    run its `fastric.after_response` work. Raises `exchange.Stop` when the Runtime API ends the process."""
    try:
        response = connection.response_to(requests.next) if next_sent else connection.request(requests.next)
    except (ConnectionLost, MalformedResponse) as exc:
        raise next_lost(exc) from None
    invocation = next_invocation(response)
    if invocation is None:
        return  # an id the wire cannot carry (logged): the loop asks for the next invocation
    reply = answer(requests, invocation, handler)
    try:
        posted = connection.request(reply.request)
    except (ConnectionLost, MalformedResponse) as exc:
        raise post_lost(reply.kind, exc) from None
    check_posted(posted, reply.kind)
    if lifecycle.pending:
        lifecycle.run_after_response(lifecycle.pending, invocation.request_id, _run_coroutine)


def answer(requests: Requests, invocation: Invocation, handler: Callable) -> Reply:
    """`loop.answer` for the first invocation: the same steps, on the standard library where it gives the same."""
    try:
        context = start(invocation)
        body, invocation.body = invocation.body, b""
        event = decode_plain(body, invocation.content_type)
        if event is NOT_PLAIN:
            from fastric.runtime.marshal import decode_event

            event = decode_event(body, invocation.content_type)
        del body
        result = handler(event, context)
        if result.__class__ is _CoroutineType:
            result = _run_coroutine(result)
        encoded = encode_plain(result)
        if encoded is None:
            from fastric.runtime.steps import result_reply

            return result_reply(requests, invocation, result)  # type: ignore[return-value]  # never a stream here
        payload, content_type = encoded
        return Reply(
            "success", requests.response(invocation.request_id, payload, content_type, invocation.invocation_id)
        )
    except Exception as exc:
        from fastric.runtime.steps import error_reply

        return error_reply(requests, invocation, exc)


def _run_coroutine(coroutine: Any) -> Any:
    from fastric.runtime.loop import run_coroutine

    return run_coroutine(coroutine)


async def _coroutine() -> None:
    pass


_probe = _coroutine()
_CoroutineType = type(_probe)  # types.CoroutineType, without importing `types` at start-up
_probe.close()
del _probe
