"""AWS event-stream encoding (`application/vnd.amazon.eventstream`) for `InvokeWithResponseStream`, sans-I/O.

A message is: total length and headers length (uint32, big-endian), a CRC32 of those 8 bytes, the headers,
the payload, then a CRC32 of everything before it. A header is: name length (uint8), name (UTF-8), value
type (uint8; only 7, a string, is written here), value length (uint16), value (UTF-8).

Lambda's stream is `PayloadChunk` events (the function's bytes, as they come) and one final
`InvokeComplete` event (a JSON object with `ErrorCode` / `ErrorDetails` on failure, `LogResult` with
`X-Amz-Log-Type: Tail`; `{}` on a plain success).
"""

from __future__ import annotations

import struct
import zlib

import orjson

STRING = 7  # the header value type for a UTF-8 string
PRELUDE = struct.Struct(">II")
CRC = struct.Struct(">I")
MAX_HEADER_VALUE = 0xFFFF


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """The header block of a message: string-valued headers, in order."""
    parts = []
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        if len(raw_name) > 0xFF or len(raw_value) > MAX_HEADER_VALUE:
            raise ValueError(f"event-stream header {name!r} is too long")
        parts.append(
            struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", STRING, len(raw_value)) + raw_value
        )
    return b"".join(parts)


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One complete event-stream message."""
    header_block = encode_headers(headers)
    prelude = PRELUDE.pack(PRELUDE.size + CRC.size + len(header_block) + len(payload) + CRC.size, len(header_block))
    prelude += CRC.pack(zlib.crc32(prelude))
    body = prelude + header_block + payload
    return body + CRC.pack(zlib.crc32(body))


def event(event_type: str, content_type: str, payload: bytes) -> bytes:
    return encode_message(
        [(":event-type", event_type), (":content-type", content_type), (":message-type", "event")], payload
    )


def payload_chunk(data: bytes) -> bytes:
    """A `PayloadChunk` event carrying part of the function's response."""
    return event("PayloadChunk", "application/octet-stream", data)


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    """The final `InvokeComplete` event; without an error code it reports success."""
    fields = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    return event(
        "InvokeComplete",
        "application/json",
        orjson.dumps({name: value for name, value in fields.items() if value is not None}),
    )
