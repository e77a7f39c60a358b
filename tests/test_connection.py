"""In-process tests of both transports (blocking `Connection`, asyncio `AsyncConnection`) against a scripted
HTTP server on 127.0.0.1: one policy for both — keep-alive, pipelining, and a lost connection (or a malformed
response, which is logged) re-opened once, the request sent again."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
import uvloop
from raw_http import read_request

from fastric.runtime.wire.aioconnection import AsyncConnection
from fastric.runtime.wire.connection import Connection, ConnectionLost

OK = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"
GET_A = [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"]
GET_B = [b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"]
POST = [b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n", b"body"]


def answer(path: bytes, status: int = 200, extra: bytes = b"") -> bytes:
    body = b"for " + path
    return b"HTTP/1.1 %d OK\r\n%sContent-Length: %d\r\n\r\n%s" % (status, extra, len(body), body)


class ScriptedServer:
    """Accepts connections; for connection number i and each request on it, `script(i, n, path)` returns the bytes to
    send (b"" = send nothing, None = close the connection without answering)."""

    def __init__(self, script):
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.requests: list[tuple[int, bytes]] = []  # (connection number, request line)
        self.connections = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            index = self.connections
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn, index):
        buffer, count = b"", 0
        try:
            while True:
                received = read_request(conn, buffer)
                if received is None:
                    return
                request_line, buffer = received
                self.requests.append((index, request_line))
                reply = self.script(index, count, request_line.split()[1])
                count += 1
                if reply is None:
                    conn.close()
                    return
                conn.sendall(reply)
                if b"Connection: close" in reply:  # as a server that said so: read nothing more on it
                    conn.close()
                    return
        except OSError:
            return

    def close(self):
        self.listener.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def serve():
    servers = []

    def start(script):
        server = ScriptedServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


class Blocking:
    """The blocking transport, driven as the loops drive it."""

    def __init__(self, address):
        self.connection = Connection(address)

    def request(self, request, then=None):
        return self.connection.request(request, then)

    def response_to(self, request):
        return self.connection.response_to(request)

    def close(self):
        self.connection.close()


class Async:
    """The asyncio transport, each call run to completion on one uvloop loop."""

    def __init__(self, address):
        self.loop = uvloop.new_event_loop()
        self.connection = AsyncConnection(self.loop, address)

    def request(self, request, then=None):
        return self.loop.run_until_complete(self.connection.request(request, then))

    def response_to(self, request):
        return self.loop.run_until_complete(self.connection.response_to(request))

    def close(self):
        self.connection.close()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()


@pytest.fixture(params=[Blocking, Async], ids=["blocking", "asyncio"])
def transport(request):
    made = []

    def make(address):
        client = request.param(address)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_keep_alive_one_connection_for_many_requests(serve, transport):
    server = serve(lambda i, n, path: answer(path))
    client = transport(server.address)
    for _ in range(5):
        assert client.request(GET_A).body == b"for /a"
    assert client.request(POST).body == b"for /p"
    assert server.connections == 1


def test_pipelined_pair_then_response_to(serve, transport):
    server = serve(lambda i, n, path: answer(path))
    client = transport(server.address)
    assert client.request(POST, GET_B).body == b"for /p"
    assert client.response_to(GET_B).body == b"for /b"
    assert [line for _, line in server.requests] == [b"POST /p HTTP/1.1", b"GET /b HTTP/1.1"]
    assert server.connections == 1


def test_lost_before_answer_is_reopened_once_and_resent(serve, transport):
    server = serve(lambda i, n, path: None if (i, n) == (0, 1) else answer(path))
    client = transport(server.address)
    assert client.request(GET_A).body == b"for /a"
    assert client.request(GET_B).body == b"for /b"  # connection 0 closed on it; sent again on connection 1
    assert server.requests[-2:] == [(0, b"GET /b HTTP/1.1"), (1, b"GET /b HTTP/1.1")]


def test_lost_twice_raises_connection_lost(serve, transport):
    server = serve(lambda i, n, path: None)
    client = transport(server.address)
    with pytest.raises(ConnectionLost):
        client.request(GET_A)
    assert server.connections == 2


def test_unreachable_raises_connection_lost(transport):
    listener = socket.create_server(("127.0.0.1", 0))
    address = "127.0.0.1:%d" % listener.getsockname()[1]
    listener.close()
    with pytest.raises(ConnectionLost, match="cannot connect"):
        transport(address).request(GET_A)


def test_pipelined_request_dropped_with_the_connection_is_resent(serve, transport):
    # The server answers the POST with Connection: close and never reads the pipelined GET.
    def script(i, n, path):
        if i == 0 and n == 0:
            return answer(path, extra=b"Connection: close\r\n")
        return answer(path)

    server = serve(script)
    client = transport(server.address)
    assert client.request(POST, GET_B).body == b"for /p"
    assert client.response_to(GET_B).body == b"for /b"
    assert server.requests[-1] == (1, b"GET /b HTTP/1.1")


def test_malformed_response_is_logged_then_reconnected(serve, transport, capfd):
    server = serve(lambda i, n, path: b"HTTP/1.1 2x0 what\r\n\r\n" if i == 0 else answer(path))
    client = transport(server.address)
    assert client.request(GET_A).body == b"for /a"
    assert server.connections == 2
    out = capfd.readouterr().out
    assert "LAMBDA_RUNTIME Malformed response from the Runtime API" in out


def test_interim_response_before_the_final_one(serve, transport):
    server = serve(lambda i, n, path: b"HTTP/1.1 100 Continue\r\n\r\n" + answer(path))
    client = transport(server.address)
    assert client.request(POST, GET_B).status == 200
    assert client.response_to(GET_B).body == b"for /b"
    assert server.connections == 1


def test_large_request_and_response(serve, transport):
    big = b"y" * (3 << 20)

    def script(i, n, path):
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big

    server = serve(script)
    client = transport(server.address)
    request = [b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big), big]
    assert client.request(request).body == big
