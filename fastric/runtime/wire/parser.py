"""HTTP/1.1 responses from the Runtime API, sans I/O: bytes in, complete responses out (h11's shape).

`ResponseParser` owns an httptools parser and the state of the response being read; it never touches a
socket. Both transports (`connection.py`, blocking; `aioconnection.py`, asyncio) feed it what they receive
and take `Response` objects out. A response the parser cannot accept raises `MalformedResponse`, never a
network error: the transports decide what to do about it (see docs/architecture.md, "Failures").

Large bodies are received in place: when a head announces a `Content-Length` of `LARGE_BODY` bytes or more, the
body is one preallocated `bytearray` (the `Response.body`; bytes otherwise), filled as the body arrives, and a
blocking transport may `recv_into` its `body_room()` directly (`body_received`), so the body is copied once,
from the kernel, instead of three times (received chunk, httptools' piece, join).

Tolerant where HTTP lets a client be (RFC 9110/9112): interim 1xx responses (`100 Continue`, `103 Early
Hints`) are skipped (§15.2); a bare LF ends a line (9112 §2.2); obs-fold continues a header value (9112 §5.2);
`Transfer-Encoding: chunked` wins over a `Content-Length` beside it (9112 §6.3). Refused, with the reason: a NUL,
CR or LF inside a header value (9110 §5.5), conflicting or duplicate `Content-Length` headers, anything else
llhttp rejects, and a response head over `HEAD_LIMIT` bytes.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections import deque
    from typing import Any

HEAD_LIMIT = 1 << 20  # bytes of status line + headers accepted in one response (awslambdaric: about 100 KB)
LARGE_BODY = 1 << 16  # bodies this large are received in place


class MalformedResponse(Exception):
    """The Runtime API sent bytes that are not an HTTP/1.1 response the runtime can accept.

    `request_id` is the response's `Lambda-Runtime-Aws-Request-Id`, when it was read before the fault."""

    def __init__(self, reason: str, request_id: str | None = None):
        super().__init__(reason + (f" (request id {request_id})" if request_id else ""))
        self.request_id = request_id


class Response:
    """A parsed HTTP response: status, lowercased header names (first occurrence wins), body, keep-alive."""

    __slots__ = ("status", "headers", "body", "keep_alive")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes | bytearray, keep_alive: bool = True):
        self.status = status
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class ResponseParser:
    """Feed received bytes with `feed`; take complete responses with `next_response`, in order."""

    def __init__(self) -> None:
        from collections import deque  # imported with the loop, as httptools, not on the way to the first /next

        from httptools import HttpResponseParser

        self._new_parser = lambda: _tolerate(HttpResponseParser(_Callbacks(self)))
        self._parser = self._new_parser()
        self._ready: deque[Response] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._in_head = False  # a response has begun and its head is not complete yet
        self._head_bytes = 0
        self._open = False  # a response whose head is complete waits for the rest of its body
        self._framed = False  # ... and declares its length (Content-Length or chunked)
        self._large: bytearray | None = None  # its body, received in place
        self._filled = 0
        self._status = 0
        self._keep_alive = True

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse received bytes; raises MalformedResponse for a response that cannot be accepted."""
        if self._in_head or not self._open:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError and its subclasses, or a refused header value
            raise MalformedResponse(_reason(exc), self.partial_request_id()) from None
        if self._in_head and self._head_bytes > HEAD_LIMIT:
            raise MalformedResponse(f"response head larger than {HEAD_LIMIT} bytes", self.partial_request_id())

    def body_room(self) -> memoryview | None:
        """Where the rest of a large body goes (`recv_into` it, then `body_received`); None when no large body
        is open. Once bytes go there, the rest of that body must too (httptools does not see them)."""
        large = self._large
        return None if large is None else memoryview(large)[self._filled :]

    def body_received(self, count: int) -> None:
        """`count` more bytes of the open large body were written into `body_room()`."""
        self._filled += count
        if self._filled == len(self._large):  # type: ignore[arg-type]
            self._parser = self._new_parser()  # the old one still waits for the body it did not see
            self._open = False
            self._ready.append(Response(self._status, self._headers, self._large, self._keep_alive))  # type: ignore[arg-type]
            self._large = None

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

    def partial_request_id(self) -> str | None:
        """The request id header of the response in progress, if it has been read."""
        if not (self._in_head or self._open):
            return None
        value = self._headers.get(b"lambda-runtime-aws-request-id")
        return value.decode("utf-8", "replace") if value else None

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
        if 0 in value:  # a NUL: the lenient mode that accepts obs-fold lets it through; refuse it (int test: fast)
            raise _RefusedHeader(f"NUL in the value of header {name.decode('latin-1')}")

    def _head_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._open = True
        headers = self._headers
        self._framed = b"content-length" in headers or b"transfer-encoding" in headers
        length = headers.get(b"content-length")
        if length is not None and len(length) > 4 and length.isdigit() and b"transfer-encoding" not in headers:
            status = self._status = self._parser.get_status_code()
            if int(length) >= LARGE_BODY and status >= 200 and status not in (204, 304):
                self._large = bytearray(int(length))
                self._filled = 0
                self._keep_alive = self._parser.should_keep_alive()

    def _body_piece(self, data: bytes) -> None:
        large = self._large
        if large is None:
            self._body.append(data)
        else:
            large[self._filled : self._filled + len(data)] = data
            self._filled += len(data)

    def _complete(self, keep_alive: bool) -> None:
        self._open = False
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim response: the final one follows
        body = self._body
        if self._large is not None:
            self._ready.append(Response(status, self._headers, self._large, keep_alive))
            self._large = None
            return
        self._ready.append(Response(status, self._headers, body[0] if len(body) == 1 else b"".join(body), keep_alive))


class _RefusedHeader(Exception):
    pass


def _reason(exc: Exception) -> str:
    refused = exc.__context__ if isinstance(exc.__context__, _RefusedHeader) else exc
    return str(refused) or exc.__class__.__name__


def _tolerate(parser: Any) -> Any:
    """Turn on the llhttp leniencies that RFC 9112 allows a recipient (see the module docstring); the parser."""
    try:
        parser.set_dangerous_leniencies(
            lenient_headers=True, lenient_chunked_length=True, lenient_optional_cr_before_lf=True
        )
    except (AttributeError, TypeError):  # an httptools without them: strict parsing
        pass
    return parser


class _Callbacks:
    """The object httptools calls back; kept apart so the parser's own attributes stay private."""

    __slots__ = ("on_message_begin", "on_header", "on_headers_complete", "on_body", "on_message_complete")

    def __init__(self, parser: ResponseParser):
        self.on_message_begin = parser._begin
        self.on_header = parser._header
        self.on_headers_complete = parser._head_complete
        self.on_body = parser._body_piece
        self.on_message_complete = lambda: parser._complete(parser._parser.should_keep_alive())
