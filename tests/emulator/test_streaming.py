"""Streamed responses (`Lambda-Runtime-Function-Response-Mode: streaming`) relayed to the invoker."""

from __future__ import annotations

import base64
import json
import socket

from emulator_process import INVOKE_PATH, PROBE

ERROR = {"errorMessage": "stream broke", "errorType": "StreamError"}


class RawResponse:
    """Reads one chunked HTTP/1.1 response from a socket, step by step."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed; got {self.buffer!r}")
        self.buffer += data

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def head(self) -> tuple[int, dict[str, str]]:
        lines = self.read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    def chunk(self) -> bytes | None:
        size = int(self.read_until(b"\r\n").split(b";")[0], 16)
        if size == 0:
            return None
        while len(self.buffer) < size + 2:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size + 2 :]
        return data

    def trailers(self) -> dict[str, str]:
        found = {}
        while line := self.read_until(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            found[name.strip().lower()] = value.strip()
        return found


def post(emu, event) -> tuple[socket.socket, RawResponse]:
    body = json.dumps(event).encode()
    sock = socket.create_connection(("127.0.0.1", emu.port), timeout=20)
    sock.sendall(
        f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    return sock, RawResponse(sock)


def test_stream_is_relayed_as_it_arrives(emulator, tmp_path):
    gate = tmp_path / "gate"
    emu = emulator("--", *PROBE)
    sock, response = post(emu, {"action": "stream", "chunks": ["first ", "second ", "third"], "gate": str(gate)})
    with sock:
        status, headers = response.head()
        assert status == 200
        assert headers["transfer-encoding"] == "chunked"
        assert headers["content-type"] == "text/plain"
        assert "x-amz-function-error" not in headers
        # The bootstrap holds the rest of its stream until the gate exists: this chunk was relayed live.
        assert response.chunk() == b"first "
        gate.touch()
        rest = b""
        while (chunk := response.chunk()) is not None:
            rest += chunk
        assert rest == b"second third"
        assert response.trailers() == {}
    assert emu.invoke({"action": "notes"}).json()["notes"] == [[202, {"status": "OK"}]]


def test_error_trailer_before_any_byte_is_a_function_error(emulator):
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "stream", "chunks": [], "error": ERROR})
    assert response.status == 200
    assert response.headers["x-amz-function-error"] == "Unhandled"
    assert response.json() == ERROR


def test_error_trailer_after_bytes_becomes_trailers(emulator):
    emu = emulator("--", *PROBE)
    sock, response = post(emu, {"action": "stream", "chunks": ["partial ", "output"], "error": ERROR})
    with sock:
        status, headers = response.head()
        assert status == 200
        assert "X-Amz-Function-Error" in headers["trailer"]
        body = b""
        while (chunk := response.chunk()) is not None:
            body += chunk
        trailers = response.trailers()
    assert body == b"partial output"
    assert trailers["x-amz-function-error"] == "Unhandled"
    assert trailers["lambda-runtime-function-error-type"] == "StreamError"
    assert json.loads(base64.b64decode(trailers["lambda-runtime-function-error-body"])) == ERROR


def test_stream_through_a_buffering_client(emulator):
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "stream", "chunks": ["a" * 70000, "b" * 10]})
    assert response.status == 200 and response.body == b"a" * 70000 + b"b" * 10
    assert emu.invoke({"ok": True}).status == 200
