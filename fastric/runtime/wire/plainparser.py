"""HTTP/1.1 responses in the plain form the Runtime API sends them, parsed with the standard library alone.

`PlainResponseParser` is `ResponseParser` (same interface, same `Response` objects) for the responses Lambda's
Runtime API, the RIE and fastric's emulator send: a `HTTP/1.1` status line with a final status, CRLF line ends,
header names of token characters, values of visible ASCII, SP, HTAB and obs-text, one `Content-Length` of
digits, no `Transfer-Encoding`, no `Connection`. It checks every byte as it arrives, and at the first one outside
that form it hands the response in progress, from its first byte, to a `ResponseParser` (httptools, imported
then) and forwards everything to it from then on. So an unusual response (chunked, 1xx, obs-fold, a bare LF, a
connection close) or a malformed one gets `ResponseParser`'s own answer at the same byte, and a process whose
Runtime API speaks plainly never imports httptools (`typing` behind it costs milliseconds at start-up).

It is the warm loop's parser too, so what it does per response is counted (`benchmarks/instructions.py`): byte
checks are `translate` with a table and no deletions (the call's fast path: no 256-entry table built per call),
whose result is the argument itself exactly when every byte is allowed; a header name is checked once; a line
that repeats (content type, function ARN, Date within a second) is looked up whole, while the request id, deadline
and trace id, new in every invocation, are checked each time and never kept (they would push the others out);
a head seen again byte for byte (the `202 Accepted` to every post) is looked up whole.

Large bodies are received in place: once a head announces `Content-Length` of `LARGE_BODY` bytes or more,
`body_room()` is a view of the preallocated body for the transport to `recv_into`, so the body is copied once,
from the kernel. Such a body is a `bytearray` (`Response.body` is bytes otherwise).
"""

from __future__ import annotations

from fastric.runtime.wire.parser import HEAD_LIMIT, Response

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from fastric.runtime.wire.parser import ResponseParser

LARGE_BODY = 1 << 16  # bodies this large are received in place (below: one slice of the received bytes)

# Token characters (RFC 9110 §5.6.2) for header names; what a header value may hold here: HTAB, SP, visible ASCII
# and obs-text (no other control character, no DEL).
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VALUE = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])


def _keeping(allowed: bytes) -> bytes:
    """A `bytes.translate` table that maps the `allowed` bytes to themselves and every other byte to another one.

    `data.translate(table) is data` then says whether `data` (exactly bytes) holds only allowed bytes: a table
    without deletions takes translate's fast path (no 256-entry table built per call, as `translate(None,
    allowed)` does), which returns its argument itself when no byte changed."""
    return bytes(b if b in allowed else (b + 1) % 256 for b in range(256))


_TOKEN_ONLY = _keeping(_TOKEN)
_VALUE_ONLY = _keeping(_VALUE)
_DIGITS_ONLY = _keeping(b"0123456789")
_STATUS_PREFIX = b"HTTP/1.1 "
_NO_BODY_STATUSES = (204, 304)  # the body rules of these (and of 1xx) are left to httptools
_FRAMING = (b"transfer-encoding", b"connection", b"proxy-connection", b"upgrade")
_CRLF = b"\r\n"


class PlainResponseParser:
    """Feed received bytes with `feed`; take complete responses with `next_response`, in order (as
    `ResponseParser`); `body_room` / `body_received` receive a large body in place."""

    def __init__(self) -> None:
        self._ready: list[Response] = []
        self._data = b""  # received bytes of the response in progress (its head, or a small body with it)
        self._checked = 0  # bytes of `_data` known to be complete, plain head lines
        self._length: int | None = None  # the Content-Length those lines declared
        self._head: tuple[int, dict[bytes, bytes], int, int] | None = None  # status, headers, body start, length
        self._body: bytearray | None = None  # a large body being received in place
        self._filled = 0
        self._delegate: ResponseParser | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse received bytes; raises MalformedResponse (from `ResponseParser`) for a response it refuses."""
        if self._delegate is not None:
            self._delegate.feed(data)
            return
        if self._body is not None:
            data = self._fill(data)
            if not data:
                return
        elif not self._data and data.__class__ is bytes:  # the usual case: whole responses, nothing before them
            data = self._take_whole(data)
            if not data:
                return
        self._data = self._data + data if self._data else bytes(data)
        self._parse()

    def body_room(self) -> memoryview | None:
        """Where the rest of a large body goes (`recv_into` it, then `body_received`); None when no body is open."""
        body = self._body
        return None if body is None else memoryview(body)[self._filled :]

    def body_received(self, count: int) -> None:
        """`count` more bytes of the open large body were written into `body_room()`."""
        self._filled += count
        if self._filled == len(self._body):  # type: ignore[arg-type]
            self._finish_body()

    def eof(self) -> bool:
        """The peer closed the connection: True if that completed a response (never for the plain form, whose
        responses all declare their length)."""
        return self._delegate.eof() if self._delegate is not None else False

    def next_response(self) -> Response | None:
        """The oldest complete response not taken yet, or None."""
        if self._ready:
            return self._ready.pop(0)
        return self._delegate.next_response() if self._delegate is not None else None

    @property
    def in_progress(self) -> bool:
        """Whether part of a response has been received (a close now would cut it short)."""
        if self._delegate is not None:
            return self._delegate.in_progress
        return bool(self._data) or self._body is not None

    def partial_request_id(self) -> str | None:
        """The request id header of the response in progress, if it has been read."""
        if self._delegate is not None:
            return self._delegate.partial_request_id()
        if self._head is not None:
            value = self._head[1].get(b"lambda-runtime-aws-request-id")
        elif self._data:
            # httptools reports a header line once the next line's name has begun (or the head has ended)
            data, checked = self._data, self._checked
            if data[checked : checked + 1] in (b"", b"\r"):
                checked = data.rfind(b"\r\n", 0, checked - 2) + 2  # 1 when no header line is complete: none
            value = _lines_header(data[:checked], b"lambda-runtime-aws-request-id")
        else:
            return None
        return value.decode("utf-8", "replace") if value else None

    # -- inside --

    def _take_whole(self, data: bytes) -> bytes:
        """Take the whole plain responses `data` begins with; the bytes after them."""
        offset, size, ready = 0, len(data), self._ready
        while True:
            end = data.find(b"\r\n\r\n", offset)
            if end <= offset or data[offset] in _CRLF:
                break
            head = _plain_head(data, end, offset)
            if head is None:
                break
            status, headers, start, length = head
            if size - start < length:
                break
            offset = start + length
            ready.append(Response(status, headers, data[start:offset]))
            if offset == size:
                return b""
        return data[offset:] if offset else data

    def _parse(self) -> None:
        while self._data:
            if self._head is None and not self._read_head():
                return
            status, headers, start, length = self._head  # type: ignore[misc]
            data = self._data
            if len(data) - start >= length:
                self._head = None
                self._data = data[start + length :]
                self._checked = 0
                self._ready.append(Response(status, headers, data[start : start + length]))
            elif length >= LARGE_BODY:
                body = self._body = bytearray(length)
                self._filled = len(data) - start
                body[: self._filled] = memoryview(data)[start:]
                self._data = b""
                return
            else:
                return

    def _read_head(self) -> bool:
        """Check the head received so far; True once it is complete and plain (`_head` set). Hands over to
        `ResponseParser` at the first byte that is not plain."""
        data = self._data
        end = data.find(b"\r\n\r\n", max(0, self._checked - 2))
        if data[0] in b"\r\n":
            self._hand_over()
            return False
        if end < 0:
            if not self._check_lines(data, len(data)):
                self._hand_over()
                return False
            rest = data[self._checked :]
            at_cr = rest.endswith(b"\r")  # then the line must be complete but for its LF
            if len(data) > HEAD_LIMIT or not self._line_ok(rest[:-1] if at_cr else rest, at_cr):
                self._hand_over()
            return False
        head = _plain_head(data, end)
        if head is None:
            self._hand_over()
            return False
        self._head = head
        self._length = None
        return True

    def _check_lines(self, data: bytes, limit: int) -> bool:
        """Whether the complete lines of `data` before `limit` are plain (each line is checked once)."""
        checked = self._checked
        while True:
            line_end = data.find(b"\r\n", checked, limit)
            if line_end < 0:
                return True
            line = data[checked:line_end]
            if not self._line_ok(line, True):
                return False
            if checked and line[:15].lower() == b"content-length:":
                self._length = int(line[15:].lstrip(b" \t"))
            checked = self._checked = line_end + 2

    def _line_ok(self, line: bytes, complete: bool) -> bool:
        """Whether `line` (the status line when nothing is checked yet) is plain, or may still become so."""
        if self._checked == 0:
            return _status_line_ok(line) and (len(line) >= 12 or not complete)
        name, colon, value = line.partition(b":")
        if name.translate(_TOKEN_ONLY) is not name or value.translate(_VALUE_ONLY) is not value:
            return False
        if not colon:
            return not complete
        if not name:
            return False
        name = name.lower()
        if name in _FRAMING:
            return False  # what these mean (and when httptools refuses their values) is httptools' to say
        if name == b"content-length":
            digits = value.lstrip(b" \t")
            if self._length is not None or digits.translate(_DIGITS_ONLY) is not digits or len(digits) > 15:
                return False
            return bool(digits) or not complete
        return True

    def _fill(self, data: bytes | bytearray | memoryview) -> bytes:
        """Copy received bytes into the open large body; returns what follows it."""
        body = self._body
        take = min(len(data), len(body) - self._filled)  # type: ignore[arg-type]
        body[self._filled : self._filled + take] = data[:take]  # type: ignore[index]
        self._filled += take
        if self._filled == len(body):  # type: ignore[arg-type]
            self._finish_body()
        return bytes(data[take:])

    def _finish_body(self) -> None:
        status, headers, _, _ = self._head  # type: ignore[misc]
        self._ready.append(Response(status, headers, self._body))  # type: ignore[arg-type]
        self._head = self._body = None
        self._filled = self._checked = 0

    def _hand_over(self) -> None:
        """From the start of the response in progress on, `ResponseParser` reads everything."""
        from fastric.runtime.wire.parser import ResponseParser

        data, self._data = self._data, b""
        self._head = self._length = None
        self._delegate = ResponseParser()
        self._delegate.feed(data)


def _plain_head(data: bytes, end: int, start: int = 0) -> tuple[int, dict[bytes, bytes], int, int] | None:
    """(status, headers, body start, body length) for the complete head `data[start:end]`, or None if not plain."""
    head = data[start:end]
    seen = _HEADS.get(head) if end - start <= _KNOWN_HEAD_SIZE else None
    if seen is not None:
        return seen[0], seen[1].copy(), end + 4, seen[2]
    lines = head.split(b"\r\n")
    first = lines.pop(0)
    status = _STATUS_LINES.get(first)
    if status is None:
        if len(first) < 12 or not _status_line_ok(first):
            return None
        status = int(first[9:12])
    if end - start + 4 > HEAD_LIMIT:
        return None
    headers: dict[bytes, bytes] = {}
    known = _LINES
    missing = False
    for line in lines:
        header = known.get(line)
        if header is None:
            name, colon, value = line.partition(b":")
            if not colon or value.translate(_VALUE_ONLY) is not value:
                return None  # (a CR or LF alone is not a _VALUE byte either)
            lowered = _NAMES.get(name)
            if lowered is None:
                lowered = _header_name(name)
                if lowered is None:
                    return None
            header = lowered, value.lstrip(b" \t")
            if lowered not in _PER_INVOCATION:
                if len(known) >= _KNOWN_LINES:
                    known.clear()
                known[line] = header
            missing = True
        name, value = header
        if name not in headers:
            headers[name] = value
        elif name == b"content-length":
            return None
    length = headers.get(b"content-length")
    if length is None or not length.isdigit() or len(length) > 15:
        return None  # unframed (read to the connection's end), or an odd length: httptools' to read
    size = int(length)
    if not missing and end - start <= _KNOWN_HEAD_SIZE:  # a head that may come again byte for byte (the 202 to
        # every post): no line is looked at then
        if len(_HEADS) >= _KNOWN_HEADS:
            _HEADS.clear()
        _HEADS[head] = status, headers.copy(), size
    return status, headers, end + 4, size


def _header_name(name: bytes) -> bytes | None:
    """The lowercased `name` of a header line (kept in `_NAMES`), or None if it is not a plain one."""
    if not name or name.translate(_TOKEN_ONLY) is not name:
        return None
    lowered = name.lower()
    if lowered in _FRAMING:
        return None  # what these mean (and when httptools refuses their values) is httptools' to say
    if len(_NAMES) >= _KNOWN_NAMES:
        _NAMES.clear()
    _NAMES[name] = lowered
    return lowered


# Lines seen in plain heads, as (lowercased name, value): most lines of a Runtime API's responses repeat (content
# type and length, function ARN, Date within a second), so each is checked once; a bounded dict, emptied when full.
# The lines of the headers that differ in every invocation are not kept: they would only push the others out.
_LINES: dict[bytes, tuple[bytes, bytes]] = {}
_KNOWN_LINES = 64
_PER_INVOCATION = frozenset(
    (
        b"lambda-runtime-aws-request-id",
        b"lambda-runtime-trace-id",
        b"lambda-runtime-deadline-ms",
        b"lambda-runtime-client-context",
        b"lambda-runtime-cognito-identity",
    )
)
# Whole heads seen, as (status, headers, length): those whose lines were all known come again byte for byte
# (`202 Accepted` to every post, within a second of its Date). A bounded dict, emptied when full.
_HEADS: dict[bytes, tuple[int, dict[bytes, bytes], int]] = {}
_KNOWN_HEADS = 16
# Only short heads are looked up whole: a POST's answer is about 100 bytes, while a `/next` answer (300 and more)
# carries a new request id every time and would only pay for hashing itself.
_KNOWN_HEAD_SIZE = 192
# Header names checked (token characters, not a framing header) and lowercased once: name → lowercased name.
_NAMES: dict[bytes, bytes] = {}
_KNOWN_NAMES = 64
_STATUS_LINES = {b"HTTP/1.1 200 OK": 200, b"HTTP/1.1 202 Accepted": 202}


def _status_line_ok(part: bytes) -> bool:
    """Whether `part` is, or begins, a plain status line: `HTTP/1.1 `, a final status with a body, a reason."""
    if not _STATUS_PREFIX.startswith(part[:9]):
        return False
    digits = part[9:12]
    if digits.translate(_DIGITS_ONLY) is not digits or (digits and digits[0] not in b"2345"):
        return False
    if len(digits) == 3 and int(digits) in _NO_BODY_STATUSES:
        return False
    reason = part[12:]
    return not reason or (reason[0] == 0x20 and reason.translate(_VALUE_ONLY) is reason)


def _lines_header(head: bytes, wanted: bytes) -> bytes | None:
    """The first value of header `wanted` (lowercase) among the header lines of `head` (lines ending in CRLF)."""
    for line in head.split(b"\r\n")[1:-1]:
        name, _, value = line.partition(b":")
        if name.lower() == wanted:
            return value.lstrip(b" \t")
    return None
