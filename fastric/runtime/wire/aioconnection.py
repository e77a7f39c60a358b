"""The keep-alive Runtime API connection as an asyncio Protocol on uvloop, for `async def` handlers.

The same httptools `ResponseReader` as the blocking `Connection`; a future per request resolves on the
response's last byte. A connection the server closed or dropped is re-opened once before giving up.
"""

from __future__ import annotations

import asyncio
import socket

from fastric.runtime.wire.connection import Connection, ConnectionLost, Response, ResponseReader
from fastric.runtime.wire.protocol import split_address


class AsyncConnection:
    """A client connection to the Runtime API at `host:port`, opened lazily and kept alive across requests."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str):
        self._loop = loop
        self._host, self._port = split_address(address)
        self._protocol: _ResponseProtocol | None = None

    async def request(self, chunks: bytes | list[bytes]) -> Response:
        """Send one request and return its response, re-opening the connection once if it was lost."""
        try:
            return await self._exchange(chunks)
        except ConnectionLost:
            return await self._exchange(chunks)

    async def request_pair(self, first: list[bytes], then: bytes) -> Response:
        """Send `first` and `then` back to back in one write (HTTP/1.1 pipelining) and return the response to
        `first`; `response_to(then)` reads the other. Both are re-sent once on a new connection if it was lost."""
        try:
            return await self._exchange(first, then)
        except ConnectionLost:
            return await self._exchange(first, then)

    async def response_to(self, chunks: bytes) -> Response:
        """The response to `chunks`, already sent by `request_pair` (sent again on a new connection if the
        connection was lost or closed before answering)."""
        protocol = self._protocol
        pending = protocol.take_pending() if protocol is not None else None
        if pending is None:
            return await self.request(chunks)
        try:
            return await pending
        except ConnectionLost:
            return await self._exchange(chunks)

    async def adopt(self, connection: Connection) -> None:
        """Go on with the open socket of a blocking `connection` (idle: no request pending)."""
        raw = connection.detach()
        if raw is None:
            return
        sock = socket.socket(fileno=raw.detach())
        sock.setblocking(False)
        try:
            _, self._protocol = await self._loop.create_connection(lambda: _ResponseProtocol(self._loop), sock=sock)
        except OSError:
            sock.close()

    async def _exchange(self, chunks: bytes | list[bytes], then: bytes | None = None) -> Response:
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            protocol = self._protocol = await self._connect()
        return await protocol.exchange(chunks, then)

    async def _connect(self) -> _ResponseProtocol:
        try:
            _, protocol = await self._loop.create_connection(
                lambda: _ResponseProtocol(self._loop), self._host, self._port
            )
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self._host}:{self._port}: {exc}") from None
        return protocol


class _ResponseProtocol(asyncio.Protocol, ResponseReader):
    """One TCP connection: writes requests, feeds httptools, resolves a future per response."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._waiters: list[asyncio.Future] = []  # one per request sent and not answered yet, in order
        self._pipelined: asyncio.Future | None = None  # the response to the request sent behind another
        self.reset_parser()

    def exchange(self, chunks: bytes | list[bytes], then: bytes | None = None) -> asyncio.Future:
        """Write a request (and, pipelined, `then`); the future resolves with the first one's response."""
        create = self._loop.create_future
        waiter = create()
        if then is None:
            self._waiters = [waiter]
        else:
            self._pipelined = create()
            self._waiters = [waiter, self._pipelined]
        if chunks.__class__ is bytes:
            self.transport.write(chunks if then is None else chunks + then)
        else:
            self.transport.writelines(chunks if then is None else [*chunks, then])
        return waiter

    def take_pending(self) -> asyncio.Future | None:
        """The future of the pipelined request's response (None if it was dropped unanswered)."""
        pending, self._pipelined = self._pipelined, None
        if pending is None or pending.cancelled():
            return None
        return pending

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.feed(data)
        except ConnectionLost as exc:
            self._fail(exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._waiters and not self.eof():
            self._fail(ConnectionLost("the Runtime API closed the connection" + (f": {exc}" if exc else "")))

    def deliver(self, response: Response, keep_alive: bool) -> None:
        if self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(response)
        if not keep_alive:  # a pipelined request is then sent again on a new connection
            self.close()
            self._fail(None)

    def _fail(self, exc: Exception | None) -> None:
        """The earliest unanswered request (the one being awaited) fails with `exc`; later ones are dropped."""
        waiters, self._waiters = self._waiters, []
        for index, waiter in enumerate(waiters):
            if not waiter.done():
                if index == 0 and exc is not None:
                    waiter.set_exception(exc)
                else:
                    waiter.cancel()
