"""The invocation loop for `async def` handlers: one uvloop loop for the life of the process.

The steps are `steps.py`'s, as in `loop.py`; only the waiting differs. The loop is never installed as the
thread's current loop, and nothing else runs it, so module-level clients, pools and tasks created by the
handler stay bound to it and usable across warm invocations.
"""

from __future__ import annotations

import uvloop

from fastric.runtime.steps import (
    Reply,
    Stop,
    begin,
    check_posted,
    error_reply,
    next_invocation,
    next_lost,
    pipelines,
    post_lost,
    result_reply,
)
from fastric.runtime.wire.aioconnection import AsyncConnection
from fastric.runtime.wire.connection import Connection, ConnectionLost
from fastric.runtime.wire.parser import MalformedResponse
from fastric.runtime.wire.protocol import Invocation, Requests

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from typing import NoReturn


def run(connection: Connection, requests: Requests, handler: Callable, next_sent: bool) -> int:
    """Serve invocations on a new uvloop loop until the Runtime API ends the process; returns the exit code.

    `connection` (blocking, from start-up) is taken over with its socket; `next_sent`: a `GET /next` is on it."""
    loop = uvloop.new_event_loop()
    client = AsyncRuntimeClient(loop, connection.address, requests, next_sent)
    try:
        loop.run_until_complete(serve(client, handler, connection))
    except Stop as stop:
        return stop.code
    return 0


async def serve(client: AsyncRuntimeClient, handler: Callable, adopt: Connection | None = None) -> NoReturn:
    """next → handle → post, for ever (Stop ends it)."""
    if adopt is not None:
        await client.connection.adopt(adopt)
    requests = client.requests
    while True:
        invocation = await client.next()
        await client.post(await answer(requests, invocation, handler))


async def answer(requests: Requests, invocation: Invocation, handler: Callable, begin: Callable = begin) -> Reply:
    """Await the handler on the invocation's event and context; its result or its error, as the reply to post.

    `begin` sets up the invocation's state (`steps.begin`; `concurrent.begin` when invocations interleave)."""
    try:
        event, context = begin(invocation)
        return result_reply(requests, invocation, await handler(event, context))
    except Exception as exc:
        return error_reply(requests, invocation, exc)


class AsyncRuntimeClient:
    """`loop.RuntimeClient` for the asyncio loop: the same decisions (steps.py), awaited."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str, requests: Requests, next_sent: bool = False):
        self.connection = AsyncConnection(loop, address)
        self.requests = requests
        self._next_sent = next_sent
        self._pipeline = False

    async def next(self) -> Invocation:
        """The next invocation to answer (ids the wire cannot carry are logged and skipped)."""
        while True:
            try:
                if self._next_sent:
                    self._next_sent = False
                    response = await self.connection.response_to(self.requests.next)
                else:
                    response = await self.connection.request(self.requests.next)
            except (ConnectionLost, MalformedResponse) as exc:
                raise next_lost(exc) from None
            self._pipeline = pipelines(response)
            invocation = next_invocation(response)
            if invocation is not None:
                return invocation

    async def post(self, reply: Reply, then_next: bool = True) -> None:
        """POST the reply (with the next `GET /next` behind it, when `then_next` and the server allow)."""
        then = self.requests.next if then_next and self._pipeline else None
        try:
            posted = await self.connection.request(reply.request, then)
        except (ConnectionLost, MalformedResponse) as exc:
            raise post_lost(reply.kind, exc) from None
        self._next_sent = then is not None
        check_posted(posted, reply.kind)
