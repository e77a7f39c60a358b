"""The keep-alive Runtime API connection as an asyncio Protocol on uvloop (`async def` handlers).

The same `ResponseParser` and the same policy as the blocking `Connection` (`request`, `response_to`: a lost
connection, or a response the parser refused (logged), is closed and re-opened once, and the request sent
again); only the waiting differs. Writes respect the transport's flow control (`drain`), so a Runtime API
that reads slowly holds a long response back instead of letting it fill memory.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque

from fastric.runtime.wire.connection import Connection, ConnectionLost, lost_while_reading, note_retry
from fastric.runtime.wire.parser import MalformedResponse, Response, ResponseParser
from fastric.runtime.wire.protocol import Request, split_address


class AsyncConnection:
    """A client connection to the Runtime API at `host:port`, opened lazily and kept alive across requests."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str):
        self._loop = loop
        self._host, self._port = split_address(address)
        self._stream: _Stream | None = None

    async def request(self, request: Request, then: Request | None = None) -> Response:
        """Send `request` and return its response. `then` is sent right behind it in the same write (HTTP/1.1
        pipelining); `response_to(then)` reads its response. Sent again once on a new connection if lost."""
        try:
            return await self._exchange(request, then)
        except (ConnectionLost, MalformedResponse) as exc:
            note_retry(exc)
            self.close()
            return await self._exchange(request, then)

    async def response_to(self, request: Request) -> Response:
        """The response to `request`, already sent behind another one (sent again on a new connection if the
        connection was lost or closed before answering it)."""
        if self._stream is None:
            return await self.request(request)
        try:
            return await self.receive()
        except (ConnectionLost, MalformedResponse) as exc:
            note_retry(exc)
            self.close()
            return await self._exchange(request, None)

    async def send(self, request: Request) -> None:
        """Write a request (connecting first if needed); ConnectionLost if the connection is gone."""
        stream = self._stream
        if stream is None:
            stream = self._stream = await self._connect()
        stream.write(request)

    async def drain(self) -> None:
        """Wait until the transport has room for more (after large writes); ConnectionLost if it is gone."""
        stream = self._stream
        if stream is None:
            raise ConnectionLost("the connection was closed")
        await stream.drain()

    async def receive(self) -> Response:
        """The next response on this connection; ConnectionLost or MalformedResponse if there is none."""
        stream = self._stream
        if stream is None:
            raise ConnectionLost("the connection was closed before the response")
        response = await stream.receive()
        if not response.keep_alive:
            self.close()  # a request pipelined behind this one is then sent again by response_to
        return response

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    async def adopt(self, connection: Connection) -> None:
        """Go on with the open socket of a blocking `connection` (a request may be pending on it)."""
        raw = connection.detach()
        if raw is None:
            return
        sock = socket.socket(fileno=raw.detach())
        sock.setblocking(False)
        try:
            _, self._stream = await self._loop.create_connection(lambda: _Stream(self._loop), sock=sock)
        except OSError:
            sock.close()

    async def _exchange(self, request: Request, then: Request | None) -> Response:
        await self.send(request if then is None else [*request, *then])
        return await self.receive()

    async def _connect(self) -> _Stream:
        try:
            _, stream = await self._loop.create_connection(lambda: _Stream(self._loop), self._host, self._port)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self._host}:{self._port}: {exc}") from None
        return stream


class _Stream(asyncio.Protocol):
    """One TCP connection: writes requests, feeds the parser, hands responses to the one waiting receiver."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = ResponseParser()
        self._responses: deque[Response] = deque()
        self._waiter: asyncio.Future | None = None  # the receive() in progress
        self._failure: Exception | None = None  # why no more responses will come
        self._writable: asyncio.Future | None = None  # set while the transport's buffer is full

    def write(self, request: Request) -> None:
        transport = self._transport
        if transport is None:
            raise self._failure or ConnectionLost("the Runtime API closed the connection")
        if len(request) == 1:
            transport.write(request[0])
        else:
            transport.writelines(request)

    async def drain(self) -> None:
        if self._transport is None:
            raise self._failure or ConnectionLost("the Runtime API closed the connection")
        if self._writable is not None:
            await asyncio.shield(self._writable)

    async def receive(self) -> Response:
        if self._responses:
            return self._responses.popleft()
        if self._failure is not None:
            raise self._failure
        waiter = self._waiter = self._loop.create_future()
        try:
            return await waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except MalformedResponse as exc:
            self._fail(exc)
            self.close()
            return
        self._deliver()

    def eof_received(self) -> bool | None:
        self._parser.eof()
        self._deliver()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(lost_while_reading(self._parser, str(exc) if exc else "end of stream"))
        self._resume(exc)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        self._resume(None)

    def _resume(self, exc: Exception | None) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            if exc is None and self._transport is not None:
                writable.set_result(None)
            else:
                writable.set_exception(ConnectionLost("the Runtime API closed the connection"))

    def _deliver(self) -> None:
        parser, responses = self._parser, self._responses
        response = parser.next_response()
        while response is not None:
            responses.append(response)
            response = parser.next_response()
        waiter = self._waiter
        if responses and waiter is not None and not waiter.done():
            waiter.set_result(responses.popleft())

    def _fail(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._failure)
