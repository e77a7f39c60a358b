"""Telemetry-fd frames: type (4 bytes), UTF-8 length (4), UNIX microseconds (8), all big-endian, then the text."""

from __future__ import annotations

import os
import struct


def _frame_types(base: int) -> dict[int, bytes]:
    # NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL are base + 0, 8, 12, 16, 20, 24
    return {
        level: (base + offset).to_bytes(4, "big")
        for level, offset in ((0, 0), (10, 8), (20, 12), (30, 16), (40, 20), (50, 24))
    }


JSON_FRAME_TYPES = _frame_types(0xA55A0002)
TEXT_FRAME_TYPES = _frame_types(0xA55A0003)
DEFAULT_FRAME_TYPE = TEXT_FRAME_TYPES[0]


def level_bucket(levelno: int) -> int:
    """A record level clamped to 0..50 and rounded down to a multiple of 10 (25 → 20, 60 → 50)."""
    return min(50, max(0, levelno)) // 10 * 10


_HEADER = struct.Struct(">IQ")  # after the 4-byte type: message length, timestamp in microseconds


def encode_frame(frame_type: bytes, message: str, timestamp_us: int) -> bytes:
    """One frame of `message` stamped `timestamp_us`."""
    data = message.encode("utf-8")
    return frame_type + _HEADER.pack(len(data), timestamp_us) + data


def decode_frames(data: bytes) -> list[tuple[int, int, str]]:
    """Split a telemetry stream into (frame type, timestamp in µs, message) triples; for tests and tools."""
    frames, offset = [], 0
    while offset < len(data):
        frame_type, length, timestamp = struct.unpack_from(">IIQ", data, offset)
        offset += 16
        frames.append((frame_type, timestamp, data[offset : offset + length].decode("utf-8")))
        offset += length
    if offset != len(data):
        raise ValueError("truncated telemetry frame")
    return frames


def write_all(fd: int, data: bytes) -> None:
    """`data` written to `fd`: one `write(2)`, more only after a short write (a signal, a non-blocking fd)."""
    written = os.write(fd, data)
    while written < len(data):
        data = data[written:]
        written = os.write(fd, data)
