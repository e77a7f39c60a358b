"""The one keep-alive HTTP/1.1 connection to the Runtime API: an asyncio Protocol fed to httptools.

`request(chunks)` writes prebuilt request bytes and resolves when httptools reports the whole response.
A connection the server closed (or dropped) is re-opened once, and the request re-sent, before giving up.
"""

from __future__ import annotations

import asyncio
import socket

import httptools

from fastric.protocol import split_address


class ConnectionLost(Exception):
    """The Runtime API could not be reached, or closed the connection before answering."""


class Response:
    """A parsed HTTP response: status, lowercased header names (first occurrence wins), body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body


class RuntimeConnection:
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

    async def adopt(self, raw_sock, chunks: bytes | list[bytes]) -> Response:
        """Go on with `raw_sock` (a socket or `_socket.socket`), on which `chunks` were already sent, and return
        their response (re-sent on a new connection if that one was lost)."""
        try:
            sock = socket.socket(fileno=raw_sock.detach())
            sock.setblocking(False)
            _, protocol = await self._loop.create_connection(lambda: _ResponseProtocol(self._loop, True), sock=sock)
            self._protocol = protocol
            return await protocol.pending
        except (ConnectionLost, OSError):
            self.close()
            return await self._exchange(chunks)

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


class _ResponseProtocol(asyncio.Protocol):
    """One TCP connection: writes requests, feeds httptools, resolves a future per response."""

    def __init__(self, loop: asyncio.AbstractEventLoop, awaiting_response: bool = False):
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        # a connection adopted with its request already sent is created waiting for the response
        self._waiter: asyncio.Future | None = loop.create_future() if awaiting_response else None
        self.pending = self._waiter
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._headers_complete = False
        self._framed = False  # the response declares its length (Content-Length or chunked)

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

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"malformed response from the Runtime API: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_complete and not self._framed:  # a body delimited by the end of the connection
            self._finish()
        else:
            self._fail(ConnectionLost("the Runtime API closed the connection" + (f": {exc}" if exc else "")))

    # -- httptools callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = []
        self._headers_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name not in self._headers:
            self._headers[name] = value

    def on_headers_complete(self) -> None:
        self._headers_complete = True
        headers = self._headers
        self._framed = b"content-length" in headers or b"transfer-encoding" in headers

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        keep_alive = self._parser.should_keep_alive()
        self._finish()
        if not keep_alive:
            self.close()

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            body = self._body
            waiter.set_result(Response(self._parser.get_status_code(), self._headers,
                                       body[0] if len(body) == 1 else b"".join(body)))
        self._waiter = None

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._waiter = None
