"""Streamed responses (`Lambda-Runtime-Function-Response-Mode: streaming`) relayed to the invoker."""

from __future__ import annotations

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


def test_invoke_buffers_a_stream(emulator):
    """`Invoke` gets a streamed response whole, as Lambda buffers it (InvokeWithResponseStream streams live:
    test_boto3.py)."""
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "stream", "chunks": ["first ", "second ", "third"]})
    assert response.status == 200 and response.body == b"first second third"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-length"] == str(len(b"first second third"))
    assert "x-amz-function-error" not in response.headers
    assert emu.invoke({"action": "notes"}).json()["notes"] == [[202, {"status": "OK"}]]


def test_error_trailer_before_any_byte_is_a_function_error(emulator):
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "stream", "chunks": [], "error": ERROR})
    assert response.status == 200
    assert response.headers["x-amz-function-error"] == "Unhandled"
    assert response.json() == ERROR


def test_an_error_after_bytes_is_a_function_error_on_invoke(emulator):
    """The stream's bytes are dropped: the invoker gets `Unhandled` and the error document (not trailers the
    SDKs ignore)."""
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "stream", "chunks": ["partial ", "output"], "error": ERROR})
    assert response.status == 200
    assert response.headers["x-amz-function-error"] == "Unhandled"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == ERROR
    assert "trailer" not in response.headers and "transfer-encoding" not in response.headers


def test_stream_through_a_buffering_client(emulator):
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "stream", "chunks": ["a" * 70000, "b" * 10]})
    assert response.status == 200 and response.body == b"a" * 70000 + b"b" * 10
    assert emu.invoke({"ok": True}).status == 200
