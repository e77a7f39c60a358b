"""The keep-alive Runtime API connection as an asyncio Protocol on uvloop, for `async def` handlers.

The same httptools `ResponseReader` as the blocking `Connection`; a future per request resolves on the
response's last byte. A connection the server closed or dropped is re-opened once before giving up.
"""

from __future__ import annotations

import asyncio
import socket

from fastric.connection import Connection, ConnectionLost, Response, ResponseReader
from fastric.protocol import split_address


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

    async def _exchange(self, chunks: bytes | list[bytes]) -> Response:
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            protocol = self._protocol = await self._connect()
        return await protocol.exchange(chunks)

    async def _connect(self) -> "_ResponseProtocol":
        try:
            _, protocol = await self._loop.create_connection(
                lambda: _ResponseProtocol(self._loop), self._host, self._port)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self._host}:{self._port}: {exc}") from None
        return protocol

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None


class _ResponseProtocol(asyncio.Protocol, ResponseReader):
    """One TCP connection: writes requests, feeds httptools, resolves a future per response."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future | None = None
        self.reset_parser()

    def exchange(self, chunks: bytes | list[bytes]) -> asyncio.Future:
        self._waiter = waiter = self._loop.create_future()
        if chunks.__class__ is bytes:
            self.transport.write(chunks)
        else:
            self.transport.writelines(chunks)
        return waiter

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
        waiter = self._waiter
        if waiter is None or waiter.done() or self.eof():
            return
        self._fail(ConnectionLost("the Runtime API closed the connection" + (f": {exc}" if exc else "")))

    def deliver(self, response: Response, keep_alive: bool) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        if not keep_alive:
            self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
