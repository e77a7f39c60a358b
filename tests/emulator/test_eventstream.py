"""The event-stream encoder, decoded by botocore's own parsers (what boto3 runs on the response)."""

from __future__ import annotations

import json
import zlib

import botocore.session
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
from botocore.parsers import RestJSONParser

from fastric.emulator import eventstream


def decode(data: bytes) -> list:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


class RawStream:
    """What botocore's EventStream reads from: an object with `stream()` yielding bytes."""

    def __init__(self, *parts: bytes):
        self.parts = parts

    def stream(self):
        yield from self.parts

    def close(self) -> None:
        pass


def boto3_events(*parts: bytes) -> list[dict]:
    """The events boto3's `invoke_with_response_stream(...)["EventStream"]` yields for this body."""
    model = botocore.session.get_session().get_service_model("lambda")
    shape = model.operation_model("InvokeWithResponseStream").output_shape.members["EventStream"]
    parser = RestJSONParser.EVENT_STREAM_PARSER_CLS()
    return list(EventStream(RawStream(*parts), shape, parser, "InvokeWithResponseStream"))


def test_message_layout_and_checksums():
    message = eventstream.encode_message([("a", "b")], b"xyz")
    header_block = b"\x01a\x07\x00\x01b"
    assert len(message) == 12 + len(header_block) + 3 + 4
    assert message[:8] == len(message).to_bytes(4, "big") + len(header_block).to_bytes(4, "big")
    assert message[8:12] == zlib.crc32(message[:8]).to_bytes(4, "big")
    assert message[12:-4] == header_block + b"xyz"
    assert message[-4:] == zlib.crc32(message[:-4]).to_bytes(4, "big")
    ((decoded,),) = [decode(message)]
    assert decoded.headers == {"a": "b"} and decoded.payload == b"xyz"


def test_payload_chunk_headers():
    (message,) = decode(eventstream.payload_chunk(b"\x00\xffbytes"))
    assert message.headers == {
        ":event-type": "PayloadChunk",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert message.payload == b"\x00\xffbytes"


def test_invoke_complete_payloads():
    (success,) = decode(eventstream.invoke_complete())
    assert success.headers[":event-type"] == "InvokeComplete"
    assert success.headers[":content-type"] == "application/json"
    assert json.loads(success.payload) == {}
    (failure,) = decode(eventstream.invoke_complete("Sandbox.Timedout", "Task timed out", "bG9n"))
    assert json.loads(failure.payload) == {
        "ErrorCode": "Sandbox.Timedout",
        "ErrorDetails": "Task timed out",
        "LogResult": "bG9n",
    }


def test_a_corrupted_message_fails_botocores_checksum():
    message = bytearray(eventstream.payload_chunk(b"data"))
    message[-6] ^= 0xFF  # a payload byte
    with pytest.raises(ChecksumMismatch):
        decode(bytes(message))


def test_unicode_header_values_and_the_length_limit():
    (message,) = decode(eventstream.encode_message([("name", "café €")], b""))
    assert message.headers == {"name": "café €"}
    with pytest.raises(ValueError):
        eventstream.encode_headers([("n", "x" * 70000)])


def test_boto3_sees_lambdas_events_even_when_messages_are_split_across_reads():
    body = eventstream.payload_chunk(b"hello ") + eventstream.payload_chunk(b"world")
    body += eventstream.invoke_complete("StreamError", "stream broke")
    parts = [body[i : i + 7] for i in range(0, len(body), 7)]
    assert boto3_events(*parts) == [
        {"PayloadChunk": {"Payload": b"hello "}},
        {"PayloadChunk": {"Payload": b"world"}},
        {"InvokeComplete": {"ErrorCode": "StreamError", "ErrorDetails": "stream broke"}},
    ]
    assert boto3_events(eventstream.invoke_complete()) == [{"InvokeComplete": {}}]
