"""The keep-alive HTTP/1.1 connection to the Runtime API on a blocking socket (plain `def` handlers).

No event loop and no asyncio: the hot loop of plain `def` handlers is `sendall` and `recv` on one socket,
responses parsed by `PlainResponseParser` (the standard library; httptools' `ResponseParser` for a response that
is not in the plain form), a large body received in place. `aioconnection.py` is the same connection for the
asyncio loop (with `ResponseParser`); both
follow one policy (`request`, `response_to`): a connection that was lost, or that sent a response the parser
refused (logged), is closed and re-opened once, and the request sent again, before giving up.
"""

from __future__ import annotations

import _socket  # socket.py costs milliseconds at start-up and adds nothing here

from fastric.runtime.logs import runtime_log
from fastric.runtime.wire.parser import MalformedResponse, Response
from fastric.runtime.wire.plainparser import PlainResponseParser
from fastric.runtime.wire.protocol import Request, split_address

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from fastric.runtime.wire.parser import ResponseParser

_RECV_SIZE = 65536  # below glibc's mmap threshold: a larger recv buffer costs an mmap/munmap per call
_JOIN_LIMIT = 65536  # requests smaller than this go out in one sendall


class ConnectionLost(Exception):
    """The Runtime API could not be reached, or closed the connection before answering.

    `cut_response`: the connection ended in the middle of a response (a truncated body, a reset mid-body)."""

    def __init__(self, reason: str, cut_response: bool = False):
        super().__init__(reason)
        self.cut_response = cut_response


def lost_while_reading(parser: PlainResponseParser | ResponseParser, reason: str) -> ConnectionLost:
    """The ConnectionLost for a connection that ended while `parser` was reading."""
    if parser.in_progress:
        request_id = parser.partial_request_id()
        reason = "in the middle of a response" + (f" (request id {request_id})" if request_id else "") + f": {reason}"
        return ConnectionLost(f"the Runtime API closed the connection {reason}", cut_response=True)
    return ConnectionLost(f"the Runtime API closed the connection: {reason}")


def open_socket(address: str) -> _socket.socket:
    """A TCP connection (Nagle off) to the Runtime API at `host:port`; OSError if it cannot be opened."""
    host, port = split_address(address)
    # An ASCII host goes as bytes: a str is encoded with the "idna" codec first, which costs milliseconds to import.
    family, kind, proto, _, sockaddr = _socket.getaddrinfo(
        host.encode("ascii") if host.isascii() else host, port, 0, _socket.SOCK_STREAM
    )[0]
    sock = _socket.socket(family, kind, proto)
    try:
        sock.connect(sockaddr)
        if family != _socket.AF_UNIX:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except OSError:
        sock.close()
        raise
    return sock


def note_retry(exc: ConnectionLost | MalformedResponse) -> None:
    """Before a connection is re-opened: a malformed or cut response is logged, so none is ever dropped silently."""
    if isinstance(exc, MalformedResponse):
        runtime_log(f"Malformed response from the Runtime API: {exc}")
    elif exc.cut_response:
        runtime_log(f"Response from the Runtime API cut short, {exc}")


class Connection:
    """A blocking keep-alive connection to the Runtime API at `host:port`, opened lazily.

    Responses are read with `PlainResponseParser`: the standard library for the plain responses the Runtime API
    sends, httptools (`ResponseParser`) from the first one that is not."""

    def __init__(self, address: str, sock: _socket.socket | None = None):
        self.address = address
        self._sock = sock
        self._parser = PlainResponseParser()

    def request(self, request: Request, then: Request | None = None) -> Response:
        """Send `request` and return its response. `then` is sent right behind it in the same write (HTTP/1.1
        pipelining); `response_to(then)` reads its response. Sent again once on a new connection if lost."""
        try:
            self.send(request if then is None else [*request, *then])  # `_exchange`, inline: the hot path's call
            return self.receive()
        except (ConnectionLost, MalformedResponse) as exc:
            note_retry(exc)
            self.close()
            return self._exchange(request, then)

    def response_to(self, request: Request) -> Response:
        """The response to `request`, already sent behind another one (sent again on a new connection if the
        connection was lost or closed before answering it)."""
        if self._sock is None:
            return self.request(request)
        try:
            return self.receive()
        except (ConnectionLost, MalformedResponse) as exc:
            note_retry(exc)
            self.close()
            return self._exchange(request, None)

    def send(self, request: Request) -> None:
        """Write a request (connecting first if needed); ConnectionLost if that fails."""
        sock = self._sock
        if sock is None:
            sock = self._sock = self._connect()
        try:
            if len(request) == 1:
                sock.sendall(request[0])
            elif sum(map(len, request)) < _JOIN_LIMIT:
                sock.sendall(b"".join(request))
            else:
                for chunk in request:
                    sock.sendall(chunk)
        except OSError as exc:
            raise ConnectionLost(f"the Runtime API closed the connection: {exc}") from None

    def receive(self) -> Response:
        """The next response on this connection; ConnectionLost or MalformedResponse if there is none."""
        sock, parser = self._sock, self._parser
        if sock is None:
            raise ConnectionLost("the connection was closed before the response")
        response = parser.next_response()
        while response is None:
            try:
                data = sock.recv(_RECV_SIZE)
            except OSError as exc:
                raise lost_while_reading(parser, str(exc)) from None
            if not data:
                if not parser.eof():
                    raise lost_while_reading(parser, "end of stream")
            else:
                parser.feed(data)
            response = parser.next_response()
            if response is None and parser.body_room() is not None:
                self._receive_body(sock, parser)  # a large body goes straight into its buffer
                response = parser.next_response()
        if not response.keep_alive:
            self.close()  # a request pipelined behind this one is then sent again by response_to
        return response

    @staticmethod
    def _receive_body(sock: _socket.socket, parser: PlainResponseParser) -> None:
        """Receive the rest of the large body the parser has open into its buffer (`recv_into`, no copy)."""
        room = parser.body_room()
        while room is not None:
            try:
                count = sock.recv_into(room)
            except OSError as exc:
                raise lost_while_reading(parser, str(exc)) from None
            if not count:
                raise lost_while_reading(parser, "end of stream")
            parser.body_received(count)
            room = parser.body_room()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._parser = PlainResponseParser()

    def detach(self) -> _socket.socket | None:
        """Hand the open socket over (to the asyncio transport); this connection forgets it."""
        sock, self._sock = self._sock, None
        return sock

    def _exchange(self, request: Request, then: Request | None) -> Response:
        self.send(request if then is None else [*request, *then])
        return self.receive()

    def _connect(self) -> _socket.socket:
        try:
            sock = open_socket(self.address)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self.address}: {exc}") from None
        self._parser = PlainResponseParser()
        return sock
