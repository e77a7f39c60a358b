"""The invocation loop for plain `def` handlers: one blocking keep-alive socket, no event loop at all.

With no loop running, `asyncio.run()` and friends work inside handlers exactly as in plain Python. The steps
are `steps.py`'s; this module only waits for them. Read `serve` top to bottom: it is the Runtime API's sequence.
"""

from __future__ import annotations

from types import CoroutineType

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
from fastric.runtime.wire.connection import Connection, ConnectionLost
from fastric.runtime.wire.parser import MalformedResponse
from fastric.runtime.wire.protocol import Invocation, Requests

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn


def run(connection: Connection, requests: Requests, handler: Callable, next_sent: bool) -> int:
    """Serve invocations until the Runtime API ends the process; returns the exit code.

    `next_sent`: the first `GET /next` is already on `connection` (start-up sent it)."""
    try:
        serve(RuntimeClient(connection, requests, next_sent), handler)
    except Stop as stop:
        return stop.code


def serve(client: RuntimeClient, handler: Callable) -> NoReturn:
    """next → handle → post, for ever (Stop ends it)."""
    requests = client.requests
    while True:
        invocation = client.next()
        client.post(answer(requests, invocation, handler))


def answer(requests: Requests, invocation: Invocation, handler: Callable) -> Reply:
    """Run the handler on the invocation's event and context; its result or its error, as the reply to post."""
    try:
        event, context = begin(invocation)
        result = handler(event, context)
        if result.__class__ is CoroutineType:
            result = run_coroutine(result)
        return result_reply(requests, invocation, result)
    except Exception as exc:
        return error_reply(requests, invocation, exc)


class RuntimeClient:
    """The Runtime API as the blocking loop sees it: `next()` an invocation, `post()` its reply.

    A POST carries the following `GET /next` behind it in the same write when the server allows pipelining
    (`steps.pipelines`); `next()` then only reads that response."""

    def __init__(self, connection: Connection, requests: Requests, next_sent: bool = False):
        self.connection = connection
        self.requests = requests
        self._next_sent = next_sent  # a GET /next is on the wire and its response not read yet
        self._pipeline = False  # the server answered the last /next as a full HTTP/1.1 server

    def next(self) -> Invocation:
        """The next invocation to answer (ids the wire cannot carry are logged and skipped)."""
        while True:
            try:
                if self._next_sent:
                    self._next_sent = False
                    response = self.connection.response_to(self.requests.next)
                else:
                    response = self.connection.request(self.requests.next)
            except (ConnectionLost, MalformedResponse) as exc:
                raise next_lost(exc) from None
            self._pipeline = pipelines(response)
            invocation = next_invocation(response)
            if invocation is not None:
                return invocation

    def post(self, reply: Reply, then_next: bool = True) -> None:
        """POST the reply (with the next `GET /next` behind it, when `then_next` and the server allow)."""
        then = self.requests.next if then_next and self._pipeline else None
        try:
            posted = self.connection.request(reply.request, then)
        except (ConnectionLost, MalformedResponse) as exc:
            raise post_lost(reply.kind, exc) from None
        self._next_sent = then is not None
        check_posted(posted, reply.kind)


_coroutine_loop = None


def run_coroutine(coroutine: CoroutineType) -> Any:
    """Run a coroutine a plain `def` handler returned, on one uvloop loop kept for later ones."""
    global _coroutine_loop
    if _coroutine_loop is None:
        import uvloop

        _coroutine_loop = uvloop.new_event_loop()
    return _coroutine_loop.run_until_complete(coroutine)
