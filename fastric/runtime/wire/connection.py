"""The one keep-alive HTTP/1.1 connection to the Runtime API, its responses parsed by httptools.

`ResponseReader` turns httptools callbacks into `Response` objects and is shared by both transports:
`Connection` here (a blocking socket: the hot loop of plain `def` handlers, no asyncio imported) and
`aioconnection.py` (an asyncio Protocol on uvloop, for `async def` handlers). A connection the server closed
or dropped is re-opened once, and the request re-sent, before giving up.
"""

from __future__ import annotations

import _socket  # socket.py costs milliseconds at start-up and adds nothing here

from fastric.runtime.wire.protocol import split_address

_RECV_SIZE = 65536  # below glibc's mmap threshold: a larger recv buffer costs an mmap/munmap per call


class ConnectionLost(Exception):
    """The Runtime API could not be reached, or closed the connection before answering."""


class Response:
    """A parsed HTTP response: status, lowercased header names (first occurrence wins), body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body


def open_socket(address: str) -> _socket.socket:
    """A TCP connection (Nagle off) to the Runtime API at `host:port`; OSError if it cannot be opened."""
    host, port = split_address(address)
    family, kind, proto, _, sockaddr = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)[0]
    sock = _socket.socket(family, kind, proto)
    try:
        sock.connect(sockaddr)
        if family != _socket.AF_UNIX:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except OSError:
        sock.close()
        raise
    return sock


class ResponseReader:
    """httptools callbacks collecting one response at a time; subclasses implement `deliver`."""

    def reset_parser(self) -> None:
        from httptools import HttpResponseParser  # imported with the loop, not on the way to the first /next

        self._parser = HttpResponseParser(self)
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._headers_complete = False
        self._framed = False  # the response declares its length (Content-Length or chunked)

    def feed(self, data: bytes) -> None:
        """Parse received bytes; raises ConnectionLost on a malformed response."""
        try:
            self._parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError and its subclasses
            raise ConnectionLost(f"malformed response from the Runtime API: {exc}") from None

    def eof(self) -> bool:
        """The peer closed the connection: True if that completed a response delimited by the connection's end."""
        if self._headers_complete and not self._framed:
            self._complete(False)
            return True
        return False

    def deliver(self, response: Response, keep_alive: bool) -> None:
        raise NotImplementedError

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
        self._complete(self._parser.should_keep_alive())

    def _complete(self, keep_alive: bool) -> None:
        body = self._body
        self._headers_complete = False
        self.deliver(
            Response(self._parser.get_status_code(), self._headers, body[0] if len(body) == 1 else b"".join(body)),
            keep_alive,
        )


class Connection(ResponseReader):
    """A blocking keep-alive connection to the Runtime API at `host:port`, opened lazily."""

    def __init__(self, address: str, sock: _socket.socket | None = None):
        self.address = address
        self._sock = sock
        self._responses: list[tuple[Response, bool]] = []  # parsed, not yet read: (response, keep-alive)
        self.reset_parser()

    def request(self, chunks: bytes | list[bytes]) -> Response:
        """Send one request and return its response, re-opening the connection once if it was lost."""
        try:
            return self._exchange(chunks)
        except ConnectionLost:
            self.close()
            return self._exchange(chunks)

    def request_pair(self, first: list[bytes], then: bytes) -> Response:
        """Send `first` and `then` back to back in one write (HTTP/1.1 pipelining) and return the response to
        `first`; `response_to(then)` reads the other. Both are re-sent once on a new connection if it was lost."""
        try:
            return self._exchange(first, then)
        except ConnectionLost:
            self.close()
            return self._exchange(first, then)

    def response_to(self, chunks: bytes | list[bytes]) -> Response:
        """The response to `chunks`, already sent on this connection (sent again on a new connection if the
        connection was lost or closed before answering)."""
        if self._sock is None:
            return self.request(chunks)
        try:
            return self._read_response()
        except ConnectionLost:
            self.close()
            return self._exchange(chunks)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._responses.clear()

    def detach(self) -> _socket.socket | None:
        """Hand the open socket over (to the asyncio transport); this connection forgets it."""
        sock, self._sock = self._sock, None
        return sock

    def _exchange(self, chunks: bytes | list[bytes], then: bytes = b"") -> Response:
        if self._sock is None:
            self._connect()
        try:
            if chunks.__class__ is bytes:
                self._sock.sendall(chunks + then)
            else:
                head, body = chunks
                if len(body) < _RECV_SIZE:
                    self._sock.sendall(head + body + then)
                else:
                    self._sock.sendall(head)
                    self._sock.sendall(body)
                    if then:
                        self._sock.sendall(then)
        except OSError as exc:
            raise ConnectionLost(f"the Runtime API closed the connection: {exc}") from None
        return self._read_response()

    def _connect(self) -> None:
        try:
            self._sock = open_socket(self.address)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self.address}: {exc}") from None
        self._responses.clear()
        self.reset_parser()

    def _read_response(self) -> Response:
        recv = self._sock.recv
        while not self._responses:
            try:
                data = recv(_RECV_SIZE)
            except OSError as exc:
                raise ConnectionLost(f"the Runtime API closed the connection: {exc}") from None
            if not data:
                if self.eof():
                    break
                raise ConnectionLost("the Runtime API closed the connection")
            self.feed(data)
        response, keep_alive = self._responses.pop(0)
        if not keep_alive:
            self.close()  # a request pipelined behind this one is then sent again by response_to
        return response

    def deliver(self, response: Response, keep_alive: bool) -> None:
        self._responses.append((response, keep_alive))
