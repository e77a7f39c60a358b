"""Bounded request heads on every endpoint the emulator serves: a head over 1 MB is answered 431 and the
connection closed without reading more; a large head under the limit is served as usual."""

from __future__ import annotations

import re
import select
import socket

from emulator_process import INVOKE_PATH, PROBE

from fastric.emulator.httpserver import MAX_HEAD, reason

RUNTIME_API = re.compile(r"Runtime API for the bootstrap: 127\.0\.0\.1:(\d+)")


def _send_head(port: int, path: str, fields: list[bytes], stop_after: int | None = None) -> bytes:
    """Send a POST head made of `fields` piece by piece, stopping once the server answers or `stop_after` bytes
    are out (so that nothing is left unread when a refusing server closes); the server's answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    answer = b""
    with sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n".encode())
        data = b"".join(fields) + b"\r\n{}"
        pieces = [data[i : i + 32768] for i in range(0, len(data), 32768)]
        sent = 0
        for piece in pieces:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or (stop_after is not None and sent > stop_after):
                break
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and (answer.startswith(b"HTTP/1.1 431") or b"}" in answer):
                    break
        except ConnectionResetError:
            pass
        try:  # closed by the server after a 431 (nothing more arrives)
            closed = answer.startswith(b"HTTP/1.1 431") and sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
    return answer if not answer.startswith(b"HTTP/1.1 431") or closed else b"not closed: " + answer


def _fields(count: int, size: int) -> list[bytes]:
    return [b"X-Filler-%d: %s\r\n" % (i, b"v" * size) for i in range(count)]


def test_a_head_over_the_limit_is_refused_with_431_on_each_server(emulator):
    emu = emulator("--", *PROBE)
    runtime_port = int(emu.wait_for(RUNTIME_API.search).group(1))
    too_many = _fields(12_000, 80)  # ~1.2 MB of fields
    assert sum(map(len, too_many)) > MAX_HEAD
    for port, path in ((emu.port, INVOKE_PATH), (runtime_port, "/2018-06-01/runtime/init/error")):
        answer = _send_head(port, path, too_many, stop_after=MAX_HEAD + 65536)
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
        assert b"RequestHeaderFieldsTooLarge" in answer and b"Connection: close" in answer
    one_huge = [b"X-Huge: " + b"h" * (3 * MAX_HEAD) + b"\r\n"]
    assert _send_head(emu.port, INVOKE_PATH, one_huge, stop_after=2 * MAX_HEAD + 65536).startswith(b"HTTP/1.1 431 ")
    assert emu.invoke({}).status == 200  # the emulator serves on


def test_a_large_head_under_the_limit_is_served(emulator):
    emu = emulator("--", *PROBE)
    answer = _send_head(emu.port, INVOKE_PATH, _fields(10_000, 2))  # ~150 KB, as in the issue
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]


def test_reason_phrases_are_the_standard_ones():
    assert reason(201) == "Created" and reason(204) == "No Content"
    assert reason(431) == "Request Header Fields Too Large" and reason(413) == "Payload Too Large"
    assert reason(299) == "Unknown"
