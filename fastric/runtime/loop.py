"""The blocking driver, for plain `def` handlers: one keep-alive socket, no event loop at all.

With no loop running, `asyncio.run()` and friends work inside handlers exactly as in plain Python. The driver
moves bytes and calls `answer`; every decision is the session's (`core.py`). Read `serve` top to bottom: it is
the Runtime API's sequence. It serves a plain handler's first invocation too, before the hot path is imported
(start-up passes the standard library's codec to `core.make_answer` for it), so nothing here imports orjson.
"""

from __future__ import annotations

from time import sleep

from fastric.runtime.core import Exit
from fastric.runtime.lifecycle import pending, run_after_response
from fastric.runtime.streamed_post import post_stream
from fastric.runtime.streaming import StreamedReply
from fastric.runtime.wire.connection import ConnectionLost
from fastric.runtime.wire.parser import MalformedResponse

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import Any

    from fastric.runtime.core import Reply, Session
    from fastric.runtime.wire.connection import Connection
    from fastric.runtime.wire.protocol import Invocation

    Answer = Callable[[Invocation], Reply | StreamedReply]


def serve(connection: Connection, session: Session, answer: Answer) -> int:
    """next → answer → post, until the Runtime API ends the process; the exit code."""
    try:
        while True:
            serve_one(connection, session, answer)
    except Exit as stop:
        return stop.code


def serve_first(connection: Connection, session: Session, answer: Answer) -> int | None:
    """A plain handler's first invocation (start-up imports the hot path after it): nothing is pipelined behind
    its POST. None when it was served, else the exit code."""
    try:
        serve_one(connection, session, answer, then_next=False)
    except Exit as stop:
        return stop.code
    return None


def serve_one(connection: Connection, session: Session, answer: Answer, then_next: bool = True) -> None:
    """One invocation: its `/next`, the answer, the POST (with the next `/next` behind it when `then_next` and the
    session pipelines), then its `fastric.after_response` work. Raises `core.Exit`."""
    invocation = receive(connection, session)
    reply = answer(invocation)
    if pending:  # stays empty unless the function calls fastric.after_response (lifecycle.py)
        post(connection, session, reply, False)
        run_after_response(pending, invocation.request_id, run_coroutine)
    else:
        post(connection, session, reply, then_next)


def receive(connection: Connection, session: Session) -> Invocation:
    """The next invocation (its `GET /next` sent now, or already sent behind the last POST)."""
    request = session.requests.next
    while True:
        try:
            response = connection.response_to(request) if session.next_sent else connection.request(request)
        except (ConnectionLost, MalformedResponse) as exc:
            session.next_lost(exc)
        else:
            invocation = session.next_answered(response)
            if invocation is not None:
                return invocation
        if session.pause:
            sleep(session.pause)


def post(connection: Connection, session: Session, reply: Reply | StreamedReply, then_next: bool) -> None:
    """POST the reply, with what the session writes behind it."""
    then = session.then(then_next)
    try:
        if reply.__class__ is StreamedReply:
            posted = post_stream(connection, reply, then)
        else:
            posted = connection.request(reply.request, then)  # type: ignore[union-attr]
    except (ConnectionLost, MalformedResponse) as exc:
        session.post_lost(reply.kind, exc)
        return
    session.posted(posted, reply.kind, then)


_coroutine_loop = None


def run_coroutine(coroutine: Coroutine) -> Any:
    """Run a coroutine a plain `def` handler returned, on one uvloop loop kept for later ones."""
    global _coroutine_loop
    if _coroutine_loop is None:
        import uvloop

        _coroutine_loop = uvloop.new_event_loop()
    return _coroutine_loop.run_until_complete(coroutine)
