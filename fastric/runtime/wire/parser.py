"""HTTP/1.1 responses from the Runtime API, sans I/O: bytes in, complete responses out (h11's shape).

`ResponseParser` owns an httptools parser and the state of the response being read; it never touches a
socket. Both transports (`connection.py`, blocking; `aioconnection.py`, asyncio) feed it what they receive
and take `Response` objects out. A response the parser cannot accept raises `MalformedResponse`, never a
network error: the transports decide what to do about it (see docs/architecture.md, "Failures").

Interim 1xx responses (`100 Continue`, `103 Early Hints`) are skipped, as RFC 9110 §15.2 asks of a client.
The head of a response is capped at `HEAD_LIMIT` bytes.
"""

from __future__ import annotations

from collections import deque

HEAD_LIMIT = 1 << 20  # bytes of status line + headers accepted in one response (awslambdaric: about 100 KB)


class MalformedResponse(Exception):
    """The Runtime API sent bytes that are not an HTTP/1.1 response the runtime can accept."""


class Response:
    """A parsed HTTP response: status, lowercased header names (first occurrence wins), body, keep-alive."""

    __slots__ = ("status", "headers", "body", "keep_alive")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes, keep_alive: bool = True):
        self.status = status
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class ResponseParser:
    """Feed received bytes with `feed`; take complete responses with `next_response`, in order."""

    def __init__(self) -> None:
        from httptools import HttpResponseParser  # imported with the loop, not on the way to the first /next

        self._parser = HttpResponseParser(_Callbacks(self))
        self._ready: deque[Response] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._in_head = False  # a response has begun and its head is not complete yet
        self._head_bytes = 0
        self._open = False  # a response whose head is complete waits for the rest of its body
        self._framed = False  # ... and declares its length (Content-Length or chunked)

    def feed(self, data: bytes) -> None:
        """Parse received bytes; raises MalformedResponse for a response that cannot be accepted."""
        if self._in_head or not self._open:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except MalformedResponse:
            raise
        except Exception as exc:  # httptools.HttpParserError and its subclasses
            raise MalformedResponse(str(exc) or exc.__class__.__name__) from None
        if self._in_head and self._head_bytes > HEAD_LIMIT:
            raise MalformedResponse(f"response head larger than {HEAD_LIMIT} bytes")

    def eof(self) -> bool:
        """The peer closed the connection: True if that completed a response delimited by the connection's end."""
        if self._open and not self._framed:
            self._complete(False)
            return True
        return False

    def next_response(self) -> Response | None:
        """The oldest complete response not taken yet, or None."""
        return self._ready.popleft() if self._ready else None

    @property
    def in_progress(self) -> bool:
        """Whether part of a response has been received (a close now would cut it short)."""
        return self._in_head or self._open

    # -- called by httptools (through _Callbacks) --

    def _begin(self) -> None:
        self._headers = {}
        self._body = []
        self._in_head = True
        self._open = False

    def _header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name not in self._headers:
            self._headers[name] = value

    def _head_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._open = True
        headers = self._headers
        self._framed = b"content-length" in headers or b"transfer-encoding" in headers

    def _complete(self, keep_alive: bool) -> None:
        self._open = False
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim response: the final one follows
        body = self._body
        self._ready.append(Response(status, self._headers, body[0] if len(body) == 1 else b"".join(body), keep_alive))


class _Callbacks:
    """The object httptools calls back; kept apart so the parser's own attributes stay private."""

    __slots__ = ("on_message_begin", "on_header", "on_headers_complete", "on_body", "on_message_complete")

    def __init__(self, parser: ResponseParser):
        self.on_message_begin = parser._begin
        self.on_header = parser._header
        self.on_headers_complete = parser._head_complete
        self.on_body = lambda data: parser._body.append(data)
        self.on_message_complete = lambda: parser._complete(parser._parser.should_keep_alive())
