"""Reading HTTP/1.1 requests off a raw socket, for the scripted test servers (Content-Length bodies only)."""

from __future__ import annotations

import socket


def read_request(conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
    """The next request's request line, and what was received after the request; None once the peer closed."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffer) < length:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    return lines[0], buffer[length:]
