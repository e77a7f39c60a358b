"""A small HTTP/1.1 server on asyncio + httptools, streaming in both directions.

Each request is an `Exchange`. Exchanges on one connection are handled strictly in order (a pipelined
request waits until the previous response is finished). The application, `app(exchange)`, is called when
the exchange becomes active: as soon as its head is parsed (and the rest of the data at hand with it). It
answers at once or arranges to answer later by itself (it returns None: no task for the usual request, whose
body `Exchange.body_if_complete` gives), or returns a coroutine, run as a task, that can consume a request
body while it is still arriving (`Exchange.stream_body`) or wait for all of it (`Exchange.read_body`). An
application that fails gets a 500 answer (if nothing was sent yet) and its error logged. Bodies are buffered
up to a limit; past it the bytes are counted and dropped and `Exchange.over_limit` is set, so an oversized
request is drained and answered without closing the connection. Responses are written whole (`respond`) or
chunked with trailers (`start_stream`).

A request head (request line and header fields, or trailers) is bounded at MAX_HEAD bytes, as the RIE bounds
it: past that, the request is answered `431 Request Header Fields Too Large` and the connection is closed
without reading more.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from http import HTTPStatus
from typing import Any

import httptools

Headers = Iterable[tuple[str, str]]
# An exchange's application: called once the request's head is parsed (and whatever of the body came with it),
# it answers at once, or later by itself (returning None), or returns a coroutine that is run as a task.
App = Callable[["Exchange"], Coroutine[Any, Any, None] | None]

MAX_HEAD = 1024 * 1024  # bytes of a request's head (line and fields), as the RIE's limit
HEAD_TOO_LARGE = b'{"errorMessage":"Request header fields too large","errorType":"RequestHeaderFieldsTooLarge"}'
REASONS = {status.value: status.phrase for status in HTTPStatus}
REASONS[413] = "Payload Too Large"  # RFC 9110's wording ("Request Entity Too Large" is RFC 2616's)


def reason(status: int) -> str:
    """The standard reason phrase of a status code; "Unknown" for a code without one."""
    return REASONS.get(status, "Unknown")


def _head(status: int, headers: Headers) -> list[str]:
    lines = [f"HTTP/1.1 {status} {reason(status)}\r\n", f"Date: {_http_date()}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    return lines


_date_cache = (0, "")
_status_heads: dict[int, bytes] = {}  # status -> its status line and Date field, for the second `_status_second`
_status_second = 0
_header_names: dict[bytes, str] = {}  # a request's field name as received -> lower-case str (the usual ones)
HEADER_NAMES_KEPT = 256


def _status_head(status: int) -> bytes:
    """The status line and the Date field of a response, encoded (cached for the current second)."""
    global _status_second
    now = int(time.time())
    if now != _status_second:
        _status_heads.clear()
        _status_second = now
    head = _status_heads.get(status)
    if head is None:
        head = _status_heads[status] = f"HTTP/1.1 {status} {reason(status)}\r\nDate: {_http_date()}\r\n".encode(
            "latin-1"
        )
    return head


def _decode_headers(raw_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header fields by lower-case name; repeated ones joined with ", " (names learnt for `_header_names`)."""
    headers: dict[str, str] = {}
    names = _header_names
    for raw_name, raw_value in raw_headers:
        name = names.get(raw_name)
        if name is None:
            name = raw_name.decode("latin-1").lower()
            if len(names) < HEADER_NAMES_KEPT:
                names[raw_name] = name
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def encode_headers(headers: Headers) -> bytes:
    """Header fields as they go on the wire, for `Exchange.respond` (a block built once can be sent many times)."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")


def _http_date() -> str:
    """The Date header value (RFC 9110 asks it of every origin server with a clock), cached per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)))
    return _date_cache[1]


_NO_TRAILERS: dict[str, str] = {}  # shared, never written: a request's trailers replace it (`on_header`)
_METHODS = {method.encode(): method for method in ("GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS")}


class Exchange:
    """One request and its response."""

    # What every exchange starts with, as class attributes (fewer stores per request); set per instance later.
    trailers = _NO_TRAILERS
    body_size = 0
    over_limit = False
    request_complete = False
    responded = False
    _on_data: Callable[[bytes], None] | None = None
    _complete: asyncio.Future | None = None
    _streaming = False
    _continue_sent = False
    _held_back = False  # reading paused: a body past the limit before the application read or streamed it
    _header_list: list[tuple[str, str]] | None = None

    def __init__(
        self,
        conn: HTTPConnection,
        method: str,
        target: str,
        headers: dict[str, str],
        http_version: str,
        keep_alive: bool,
        body_limit: int,
    ):
        self.conn = conn
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.headers = headers  # lower-case names; repeated headers joined with ", "
        self.raw_headers: list[tuple[bytes, bytes]] = []  # as received
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.body = bytearray()
        self._body_limit = body_limit
        self._close_callbacks: list[Callable[[], object]] = []

    @property
    def header_list(self) -> list[tuple[str, str]]:
        """(lower-case name, value) in arrival order (made when first asked for)."""
        if self._header_list is None:
            self._header_list = [
                (name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in self.raw_headers
            ]
        return self._header_list

    # -- request side ----------------------------------------------------------------------
    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def expects_continue(self) -> bool:
        return self.headers.get("expect", "").lower() == "100-continue" and not self._continue_sent

    def _send_continue(self) -> None:
        if self.expects_continue and not self.request_complete:
            self._continue_sent = True
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _feed(self, data: bytes) -> None:
        self.body_size += len(data)
        if self._on_data is not None:
            self._on_data(data)
        elif not self.over_limit:
            self.body += data
            if self.body_size > self._body_limit:
                if self._complete is not None:  # the application waits for the whole body: it is too large
                    self._drop_body()
                else:  # it may yet stream the body (`stream_body`): hold what came, read no more until it says
                    self._held_back = True
                    self.conn.pause_reading()

    def _drop_body(self) -> None:
        self.over_limit = True
        self.body = bytearray()
        if self._held_back:
            self._held_back = False
            self.conn.resume_reading()

    def _finish_request(self) -> None:
        self.request_complete = True
        if self._complete is not None and not self._complete.done():
            self._complete.set_result(None)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop serving the exchange."""
        return self.conn._loop

    async def read_body(self) -> bytes:
        """Wait for the whole request; return its body (empty if it went over the limit)."""
        if self.body_size > self._body_limit and not self.over_limit:
            self._drop_body()
        if not self.request_complete:
            self._send_continue()
            self._complete = asyncio.get_running_loop().create_future()
            await self._complete
        return bytes(self.body)

    def body_if_complete(self) -> bytes | None:
        """The whole body, if the request is complete and within the limit (`read_body` would return it at once,
        without a suspension); else None."""
        if self.request_complete and not self.over_limit and self.body_size <= self._body_limit:
            return bytes(self.body)
        return None

    def stream_body(self, on_data: Callable[[bytes], None]) -> None:
        """Deliver the body to `on_data` as it arrives (what came already is delivered at once)."""
        self._on_data = on_data
        if self._held_back:  # more than the limit came before the application chose to stream it
            self._held_back = False
            self.conn.resume_reading()
        if self.body:
            buffered, self.body = bytes(self.body), bytearray()
            on_data(buffered)
        self._send_continue()

    def pause_reading(self) -> None:
        self.conn.pause_reading()

    def resume_reading(self) -> None:
        self.conn.resume_reading()

    # -- response side ---------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.conn.closed

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call `callback` if the connection is lost before this exchange is finished."""
        self._close_callbacks.append(callback)

    def respond(self, status: int, headers: Headers | bytes = (), body: bytes = b"", close: bool = False) -> None:
        """Send a complete response with a Content-Length. `headers`: (name, value) pairs, or a block of fields
        already encoded (`encode_headers`)."""
        if self.responded:
            return
        if not close:
            close = not self.keep_alive or (not self.request_complete and self.expects_continue)
        block = headers if isinstance(headers, bytes) else encode_headers(headers)
        head = b"%s%sContent-Length: %d\r\n%s" % (
            _status_head(status),
            block,
            len(body),
            b"Connection: close\r\n\r\n" if close else b"\r\n",
        )
        if self.method == "HEAD":  # headers only, Content-Length as for GET (RFC 9110 §9.3.2)
            body = b""
        conn = self.conn
        if len(body) < 65536:  # one buffer, one system call
            if not conn.closed and conn.transport is not None:
                conn.transport.write(head + body)
        else:
            conn.write_joined(head, body)
        self._done(close)

    def start_stream(self, status: int, headers: Headers = (), trailer_names: Iterable[str] = ()) -> None:
        """Start a chunked response; continue with `write` and `end`."""
        lines = _head(status, headers)
        trailer_names = list(trailer_names)
        if trailer_names:
            lines.append(f"Trailer: {', '.join(trailer_names)}\r\n")
        lines.append("Transfer-Encoding: chunked\r\n\r\n")
        self._streaming = True
        self.conn.write("".join(lines).encode("latin-1"))

    def write(self, data: bytes) -> None:
        if data and self._streaming and not self.responded and self.method != "HEAD":
            self.conn.write_joined(b"%x\r\n" % len(data), data, b"\r\n")

    def end(self, trailers: Headers = ()) -> None:
        """Finish a chunked response, with optional trailers."""
        if self.responded:
            return
        tail = "".join(f"{name}: {value}\r\n" for name, value in trailers)
        if self.method != "HEAD":
            self.conn.write(f"0\r\n{tail}\r\n".encode("latin-1"))
        self._done(not self.keep_alive)

    @property
    def writable(self) -> bool:
        return not self.conn.write_paused

    def when_writable(self, callback: Callable[[], None]) -> None:
        self.conn.when_writable(callback)

    def _done(self, close: bool) -> None:
        self.responded = True
        self._close_callbacks.clear()
        self.conn.exchange_done(self, close)

    def _lost(self) -> None:
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback()
        if self._complete is not None and not self._complete.done():
            self._complete.cancel()


class HTTPConnection(asyncio.Protocol):
    """Feeds httptools and runs the app for each exchange, one at a time."""

    def __init__(self, app: App, body_limit: int):
        self.app = app
        self.body_limit = body_limit
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self.closed = False
        self.write_paused = False
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._current: Exchange | None = None  # the exchange being parsed
        self._active: Exchange | None = None  # the exchange being answered
        self._queue: deque[Exchange] = deque()
        self._writable_callbacks: list[Callable[[], None]] = []
        self._reading_paused = False
        self._head_size = 0  # bytes of the current head so far (request line and fields, or trailers)
        self._raw_head_bytes = 0  # bytes received while a head is being read (the guard for one huge field)
        self._in_head = True
        self._head_too_large = False
        self._feeding = False  # inside `data_received`'s parse
        self._to_start: Exchange | None = None  # an exchange to start once the parse of this data is over

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        if self.closed or self._head_too_large:
            return
        if self._in_head:
            self._raw_head_bytes += len(data)
            if self._raw_head_bytes > 2 * MAX_HEAD:  # a field too large for the parser to finish it
                return self._refuse_head()
        self._feeding = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b'{"errorMessage":"Upgrade not supported","errorType":"BadRequest"}')
        except httptools.HttpParserError:
            if self._head_too_large:
                self._refuse_head()
            else:
                self._fail(400, b'{"errorMessage":"Malformed HTTP request","errorType":"BadRequest"}')
        finally:
            self._feeding = False
        exchange, self._to_start = self._to_start, None
        if exchange is not None:
            self._start(exchange)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for exchange in ([self._active] if self._active else []) + list(self._queue):
            exchange._lost()
        self._queue.clear()
        self._active = None
        self._run_writable_callbacks()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._run_writable_callbacks()

    # -- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._raw_headers = []
        self._current = None
        self._head_size = 0
        self._in_head = True

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            self._head_too_large = True
            raise HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD:
            self._head_too_large = True
            raise HeadTooLarge
        if self._current is None:
            self._raw_headers.append((name, value))
        else:  # a trailer, after the last chunk
            if self._current.trailers is _NO_TRAILERS:
                self._current.trailers = {}
            self._current.trailers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._in_head, self._raw_head_bytes, self._head_size = False, 0, 0
        raw_headers = self._raw_headers
        try:  # the usual head: every name seen before (no decoding), none repeated
            headers = {_header_names[name]: value.decode("latin-1") for name, value in raw_headers}
        except KeyError:
            headers = {}
        if len(headers) != len(raw_headers):
            headers = _decode_headers(raw_headers)
        parser = self._parser
        method = parser.get_method()
        exchange = Exchange(
            self,
            _METHODS.get(method) or method.decode("latin-1"),
            self._url.decode("latin-1"),
            headers,
            parser.get_http_version(),
            parser.should_keep_alive(),
            self.body_limit,
        )
        exchange.raw_headers = self._raw_headers
        self._current = exchange
        self._queue.append(exchange)
        if self._active is None:
            self._activate_next()

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current._feed(body)

    def on_message_complete(self) -> None:
        self._in_head, self._raw_head_bytes = True, 0
        exchange, self._current = self._current, None
        if exchange is not None:
            exchange._finish_request()
            if exchange is self._active and exchange.responded:
                self._advance(exchange)

    # -- plumbing --------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def write_joined(self, *parts: bytes) -> None:
        """Write small parts as one buffer (one syscall); large ones without copying them."""
        if len(parts) == 2 and len(parts[0]) + len(parts[1]) < 65536:
            self.write(parts[0] + parts[1])
        elif sum(map(len, parts)) < 65536:
            self.write(b"".join(parts))
        else:
            for part in parts:
                self.write(part)

    def pause_reading(self) -> None:
        if not self._reading_paused and not self.closed and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and not self.closed and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def when_writable(self, callback: Callable[[], None]) -> None:
        if self.write_paused and not self.closed:
            self._writable_callbacks.append(callback)
        else:
            callback()

    def _run_writable_callbacks(self) -> None:
        callbacks, self._writable_callbacks = self._writable_callbacks, []
        for callback in callbacks:
            callback()

    def exchange_done(self, exchange: Exchange, close: bool) -> None:
        if close:
            self._close()
        elif exchange.request_complete and self._active is exchange:
            self._queue.popleft()
            self._active = None
            if self._reading_paused:
                self.resume_reading()
            if self._queue:
                self._activate_next()

    def _advance(self, exchange: Exchange) -> None:
        if self._active is exchange:
            self._queue.popleft()
            self._active = None
            self.resume_reading()
            if self._queue:
                self._activate_next()

    def _activate_next(self) -> None:
        exchange = self._queue[0]
        self._active = exchange
        if self._feeding:  # its head was just parsed: start it once the rest of this data is parsed too
            self._to_start = exchange
        else:  # the one before it just finished: start it on the next turn of the loop (no nesting)
            self._loop.call_soon(self._start, exchange)

    def _start(self, exchange: Exchange) -> None:
        """Run the app for `exchange`: most requests are answered right here; a coroutine it returns becomes a
        task (itself, no wrapper to resume at every step), whose end `_app_done` sees."""
        try:
            work = self.app(exchange)
        except Exception as error:
            _app_failed(exchange, error, self._loop, None)
            return
        if work is not None:
            task = self._loop.create_task(work)
            task.add_done_callback(partial(_app_done, exchange))

    def _refuse_head(self) -> None:
        self._head_too_large = True
        self._fail(431, HEAD_TOO_LARGE)

    def _fail(self, status: int, body: bytes) -> None:
        if self._active is None or self._active.responded:
            self.write(
                "".join(
                    _head(
                        status,
                        [
                            ("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))),
                            ("Connection", "close"),
                        ],
                    )
                ).encode("latin-1")
                + b"\r\n"
                + body
            )
        self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class HeadTooLarge(Exception):
    """A request head over MAX_HEAD bytes (raised inside the parser's callbacks)."""


def _app_done(exchange: Exchange, task: asyncio.Task) -> None:
    """An exchange's application task ended: see `_app_failed`."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        _app_failed(exchange, error, task.get_loop(), task)


def _app_failed(
    exchange: Exchange, error: BaseException, loop: asyncio.AbstractEventLoop, task: asyncio.Task | None
) -> None:
    """An exchange's application failed: 500 (if nothing was sent yet), and the error logged."""
    if not exchange.responded:
        exchange.respond(
            500,
            [("Content-Type", "application/json")],
            b'{"errorMessage":"Internal emulator error","errorType":"EmulatorError"}',
            close=True,
        )
    context: dict[str, Any] = {"message": "unhandled error in an HTTP handler", "exception": error}
    if task is not None:
        context["task"] = task
    loop.call_exception_handler(context)


async def serve(app: App, host: str, port: int, body_limit: int) -> asyncio.Server:
    """Start an HTTP server for `app` on host:port (port 0 picks a free one)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HTTPConnection(app, body_limit), host, port, reuse_address=True)
