"""The Lambda Runtime API, sans I/O: request bytes to send, and `/next` responses parsed into invocations.

Nothing here touches a socket: `connection.py` / `aioconnection.py` move the bytes, `parser.py` reads the
responses, and the loops (`fastric/runtime/loop.py`, `aioloop.py`) sequence the calls. A request is a list of
byte strings (head, body) written back to back.
"""

from __future__ import annotations

import sys

from fastric import __version__

BASE = b"/2018-06-01/runtime"
USER_AGENT = (
    f"aws-lambda-python/{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro} "
    f"fastric/{__version__}"
)

# A request id or invocation id is spliced into request lines and headers only if it is made of URL-path-safe,
# header-safe characters (RFC 3986 pchar without '%'); ids of "." or ".." are refused too. (No `re` here: it
# costs milliseconds at start-up.)
_SAFE_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@")
# The same set as a `bytes.translate` table that maps the safe bytes to themselves and every other byte to another
# one: `raw.translate(_SAFE_ID_ONLY) is raw` (the table has no deletions, so translate returns its argument itself
# when no byte changed) says in one C call that a raw id is made of safe bytes only.
_SAFE_ID_BYTES = frozenset(map(ord, _SAFE_ID_CHARS))
_SAFE_ID_ONLY = bytes(b if b in _SAFE_ID_BYTES else (b + 1) % 256 for b in range(256))
_DOTS = (b".", b"..")
# The invocation id only travels back as a header value: anything a header value may hold is echoed.
_NOT_IN_HEADER_VALUE = frozenset(map(chr, (*range(0x09), *range(0x0A, 0x20), 0x7F)))  # controls but HTAB


Request = list  # list[bytes]: the pieces of one request, written back to back


class ProtocolError(Exception):
    """A `/next` response the runtime cannot act on."""


class Invocation:
    """One invocation, as announced by a `/next` response (the same values and empty-means-absent rules as
    awslambdaric 4.2.2)."""

    __slots__ = (
        "request_id",
        "deadline_ms",
        "function_arn",
        "trace_id",
        "client_context",
        "cognito_identity",
        "tenant_id",
        "invocation_id",
        "content_type",
        "body",
    )

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        function_arn: str,
        trace_id: str | None,
        client_context: str | None,
        cognito_identity: str | None,
        tenant_id: str | None,
        invocation_id: str | None,
        content_type: str | None,
        body: bytes | bytearray,
    ):
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.function_arn = function_arn
        self.trace_id = trace_id
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.tenant_id = tenant_id
        self.invocation_id = invocation_id
        self.content_type = content_type
        self.body = body


def _text(value: bytes | None) -> str | None:
    """A header value as text, with empty (after trimming) meaning absent."""
    if not value:
        return None
    text = value.strip(b" \t\r\n\v\f").decode("utf-8", "surrogateescape")
    return text or None


def parse_deadline(value: bytes | None) -> int:
    """`Lambda-Runtime-Deadline-Ms` as epoch milliseconds: leading digits only (as strtoul), 0 when missing."""
    if not value:
        return 0
    if value.isdigit():  # as Lambda sends it
        return int(value)
    value = value.strip()
    if value.isdigit():
        return int(value)
    end = 0
    while end < len(value) and 0x30 <= value[end] <= 0x39:
        end += 1
    return int(value[:end]) if end else 0


def is_safe_id(value: str) -> bool:
    """True when `value` may be placed in a request path or header as is."""
    if value.isascii() and value.replace("-", "").isalnum():  # a UUID, as Lambda's request ids are
        return True
    return bool(value) and _SAFE_ID_CHARS.issuperset(value) and value not in (".", "..")


def parse_invocation(headers: dict[bytes, bytes], body: bytes | bytearray) -> Invocation:
    """Build an Invocation from a 200 `/next` response (header names lowercased, first occurrence kept).

    (`_text` is called only for the headers present: most invocations carry four of the nine.)"""
    get = headers.get
    value = get(b"lambda-runtime-aws-request-id")
    if value and value.__class__ is bytes and value.translate(_SAFE_ID_ONLY) is value and value not in _DOTS:
        request_id = value.decode("ascii")  # safe characters only: nothing to trim, nothing to refuse
    else:
        text = _text(value) if value else None
        if text is None:
            raise ProtocolError("Failed to find header lambda-runtime-aws-request-id in response")
        request_id = text
        if not is_safe_id(request_id):
            raise ProtocolError(f"Refusing request id {request_id!r}: not a safe URL path segment")
    value = get(b"lambda-runtime-invocation-id")
    invocation_id = _text(value) if value else None
    if (
        invocation_id is not None
        and not invocation_id.isprintable()
        and not _NOT_IN_HEADER_VALUE.isdisjoint(invocation_id)
    ):
        raise ProtocolError(f"Refusing invocation id {invocation_id!r}: not a legal header value")
    arn = get(b"lambda-runtime-invoked-function-arn")
    trace = get(b"lambda-runtime-trace-id")
    client_context = get(b"lambda-runtime-client-context")
    cognito_identity = get(b"lambda-runtime-cognito-identity")
    tenant = get(b"lambda-runtime-aws-tenant-id")
    content_type = get(b"content-type")
    return Invocation(
        request_id,
        parse_deadline(get(b"lambda-runtime-deadline-ms")),
        (_REPEATED.get(arn) or _repeated_text(arn) or "") if arn else "",
        _text(trace) if trace else None,
        _text(client_context) if client_context else None,
        _text(cognito_identity) if cognito_identity else None,
        _text(tenant) if tenant else None,
        invocation_id,
        (_REPEATED.get(content_type) or _repeated_text(content_type)) if content_type else None,
        body,
    )


# The text of header values that come again in every invocation (the function's ARN, the content type).
_REPEATED: dict[bytes, str] = {}


def _repeated_text(value: bytes) -> str | None:
    """`_text(value)`, kept for the next invocation (a bounded dict, emptied when full)."""
    text = _text(value)
    if text is not None:
        if len(_REPEATED) >= 32:
            _REPEATED.clear()
        _REPEATED[value] = text
    return text


class Requests:
    """Prebuilt request bytes for one Runtime API address."""

    def __init__(self, address: str, user_agent: str = USER_AGENT):
        common = f"Host: {address}\r\nUser-Agent: {user_agent}\r\n".encode("latin-1")
        self.next: Request = [b"GET " + BASE + b"/invocation/next HTTP/1.1\r\n" + common + b"\r\n"]
        self.restore_next: Request = [b"GET " + BASE + b"/restore/next HTTP/1.1\r\n" + common + b"\r\n"]
        self._invocation_prefix = b"POST " + BASE + b"/invocation/"
        self._response_suffix = b"/response HTTP/1.1\r\n" + common
        self._typed_response_suffix: dict[bytes, bytes] = {}  # with its Content-Type line, per content type
        self._error_suffix = b"/error HTTP/1.1\r\n" + common + b"Content-Type: application/json\r\n"
        self._init_error = b"POST " + BASE + b"/init/error HTTP/1.1\r\n" + common
        self._restore_error = b"POST " + BASE + b"/restore/error HTTP/1.1\r\n" + common

    def response(self, request_id: str, body: bytes, content_type: bytes, invocation_id: str | None) -> list[bytes]:
        """`POST /invocation/{id}/response` as [head, body]."""
        typed = self._typed_response_suffix.get(content_type)
        if typed is None:
            typed = self._response_suffix + b"Content-Type: " + content_type + b"\r\n"
            if len(self._typed_response_suffix) < 16:  # the codec's two, and a few streaming content types
                self._typed_response_suffix[content_type] = typed
        head = b"".join(
            (
                self._invocation_prefix,
                request_id.encode(),
                typed,
                _invocation_id_header(invocation_id) if invocation_id else b"",
                _LENGTH_LINES.get(len(body)) or _length_line(len(body)),
            )
        )
        return [head, body]

    def error(self, request_id: str, body: bytes, xray_cause: bytes | None, invocation_id: str | None) -> list[bytes]:
        """`POST /invocation/{id}/error` (no error-type header, as awslambdaric) as [head, body]."""
        head = b"".join(
            (
                self._invocation_prefix,
                request_id.encode(),
                self._error_suffix,
                b"Lambda-Runtime-Function-XRay-Error-Cause: " + xray_cause + b"\r\n" if xray_cause else b"",
                _invocation_id_header(invocation_id),
                b"Content-Length: %d\r\n\r\n" % len(body),
            )
        )
        return [head, body]

    def streamed_response(self, request_id: str, content_type: bytes, invocation_id: str | None) -> bytes:
        """The head of a streamed `POST /invocation/{id}/response`; its body follows in chunks, ended by the
        last chunk with or without the error trailers (`fastric/runtime/streaming.py`)."""
        return (
            self._invocation_prefix
            + request_id.encode()
            + self._response_suffix
            + b"Content-Type: "
            + content_type
            + b"\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
            + _invocation_id_header(invocation_id)
            + b"Transfer-Encoding: chunked\r\n"
            + b"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
        )

    def init_error(self, body: bytes, error_type: str) -> list[bytes]:
        """`POST /init/error` with the `Lambda-Runtime-Function-Error-Type` header, as [head, body]."""
        return [self._with_error_type(self._init_error, error_type, body), body]

    def restore_error(self, body: bytes, error_type: str) -> list[bytes]:
        """`POST /restore/error` (SnapStart after-restore failures), as [head, body]."""
        return [self._with_error_type(self._restore_error, error_type, body), body]

    @staticmethod
    def _with_error_type(prefix: bytes, error_type: str, body: bytes) -> bytes:
        return (
            prefix
            + b"Lambda-Runtime-Function-Error-Type: "
            + _header_value(error_type)
            + b"\r\n"
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )


_LENGTH_LINES: dict[int, bytes] = {}  # `Content-Length: N` and the head's end, for the body sizes seen


def _length_line(size: int) -> bytes:
    """The `Content-Length` line that ends a head (kept for up to 512 sizes under 64 KiB)."""
    line = b"Content-Length: %d\r\n\r\n" % size
    if size < 65536 and len(_LENGTH_LINES) < 512:
        _LENGTH_LINES[size] = line
    return line


def _invocation_id_header(invocation_id: str | None) -> bytes:
    """The `Lambda-Runtime-Invocation-Id` echo line (nothing when the invocation had none)."""
    if not invocation_id:
        return b""
    return b"Lambda-Runtime-Invocation-Id: " + invocation_id.encode("utf-8", "surrogateescape") + b"\r\n"


def _header_value(text: str) -> bytes:
    """`text` made safe for a header value: no control characters, non-ASCII escaped."""
    return "".join(c if " " <= c < "\x7f" else "?" for c in text).encode("ascii")


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) as (host, port); the port defaults to 80."""
    host, sep, port = address.rpartition(":")
    if not sep or "]" in port:
        host, port = address, "80"
    return host.strip("[]"), int(port)


def outcome(status: int) -> str:
    """What a runtime does with a POST's status: "ok" (2xx), "refused" (4xx: log, go on), "fatal" (exit)."""
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500:
        return "refused"
    return "fatal"
