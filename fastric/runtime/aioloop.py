"""The invocation loop for `async def` handlers: one uvloop loop for the life of the process.

The steps are runtime.py's; only the waiting differs. The loop is never installed as the thread's current
loop, and nothing else runs it, so module-level clients, pools and tasks created by the handler stay bound
to it and usable across warm invocations.
"""

from __future__ import annotations

import uvloop

from fastric.runtime.loop import begin, check_posted, error_request, lost, next_invocation, post_kind, result_request
from fastric.runtime.wire.aioconnection import AsyncConnection
from fastric.runtime.wire.connection import Connection, ConnectionLost, Response
from fastric.runtime.wire.protocol import Requests

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn


def serve_async(connection: Connection, requests: Requests, handler: Callable, response: Response) -> NoReturn:
    """Serve invocations of an `async def` handler, from the first `/next` response; raises Stop to end."""
    loop = uvloop.new_event_loop()
    return loop.run_until_complete(
        _serve(AsyncConnection(loop, connection.address), connection, requests, handler, response)
    )


async def _serve(
    aio: AsyncConnection, connection: Connection, requests: Requests, handler: Callable, response: Response
) -> NoReturn:
    await aio.adopt(connection)
    next_request = requests.next
    while True:
        invocation = next_invocation(response)
        if invocation is not None:
            try:
                event, context = begin(invocation)
                result = await handler(event, context)
                post = result_request(requests, invocation, result)
            except Exception as exc:
                post = error_request(requests, invocation, exc)
            pipelined = b"date" in response.headers  # see runtime.send_post
            try:
                posted = await (aio.request_pair(post, next_request) if pipelined else aio.request(post))
            except ConnectionLost as exc:
                raise lost(f"Failed to post handler {post_kind(post)} response", exc) from None
            check_posted(posted, post)
            fetch = aio.response_to if pipelined else aio.request
        else:
            fetch = aio.request
        try:
            response = await fetch(next_request)
        except ConnectionLost as exc:
            raise lost("Failed to get next invocation. No Response from endpoint", exc) from None
