"""The uvloop driver, for `async def` handlers: one uvloop loop for the life of the process.

The same sequence as `loop.py`'s, awaited; every decision is the session's (`core.py`). The loop is never
installed as the thread's current loop, and nothing else runs it, so module-level clients, pools and tasks
created by the handler stay bound to it and usable across warm invocations. The Managed Instances pollers
(`concurrent.py`) are this driver's `serve`, several at once, each with a session of its own.
"""

from __future__ import annotations

import asyncio

import uvloop

from fastric.runtime.core import Exit
from fastric.runtime.lifecycle import pending, run_after_response_async
from fastric.runtime.streamed_post import apost_stream
from fastric.runtime.streaming import StreamedReply
from fastric.runtime.wire.aioconnection import AsyncConnection
from fastric.runtime.wire.connection import ConnectionLost
from fastric.runtime.wire.parser import MalformedResponse

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastric.runtime.core import Reply, Session
    from fastric.runtime.wire.connection import Connection
    from fastric.runtime.wire.protocol import Invocation

    AsyncAnswer = Callable[[Invocation], Awaitable[Reply | StreamedReply]]


def run(connection: Connection, session: Session, answer: AsyncAnswer) -> int:
    """Serve invocations on a new uvloop loop until the Runtime API ends the process; the exit code.

    `connection` (blocking, from start-up) is taken over with its socket (its `/next` may be pending on it)."""
    loop = uvloop.new_event_loop()
    transport = AsyncConnection(loop, connection.address)

    async def main() -> int:
        await transport.adopt(connection)
        return await serve(transport, session, answer, pending)

    return loop.run_until_complete(main())


async def serve(connection: AsyncConnection, session: Session, answer: AsyncAnswer, work: list) -> int:
    """next → answer → post until the Runtime API ends the process; the exit code. `work`: the list that
    `fastric.after_response` fills (run between the post and the next `/next`)."""
    try:
        while True:
            invocation = await receive(connection, session)
            reply = await answer(invocation)
            if work:
                await post(connection, session, reply, False)
                await run_after_response_async(work, invocation.request_id)
            else:
                await post(connection, session, reply, True)
    except Exit as stop:
        return stop.code


async def receive(connection: AsyncConnection, session: Session) -> Invocation:
    """`loop.receive`, awaited."""
    request = session.requests.next
    while True:
        try:
            if session.next_sent:
                response = await connection.response_to(request)
            else:
                response = await connection.request(request)
        except (ConnectionLost, MalformedResponse) as exc:
            session.next_lost(exc)
        else:
            invocation = session.next_answered(response)
            if invocation is not None:
                return invocation
        if session.pause:
            await asyncio.sleep(session.pause)


async def post(connection: AsyncConnection, session: Session, reply: Reply | StreamedReply, then_next: bool) -> None:
    """`loop.post`, awaited (a streamed reply waits for the transport to drain after each chunk)."""
    then = session.then(then_next)
    try:
        if reply.__class__ is StreamedReply:
            posted = await apost_stream(connection, reply, then)
        else:
            posted = await connection.request(reply.request, then)  # type: ignore[union-attr]
    except (ConnectionLost, MalformedResponse) as exc:
        session.post_lost(reply.kind, exc)
        return
    session.posted(posted, reply.kind, then)
