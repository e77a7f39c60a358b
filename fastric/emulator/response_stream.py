"""The answer to `InvokeWithResponseStream`: the function's response as an AWS event stream.

HTTP 200 with `X-Amz-Executed-Version`, `X-Amzn-RequestId` and the function's Content-Type (boto3's
`ResponseStreamContentType`), then a body of event-stream messages (`eventstream.py`): a `PayloadChunk`
for each piece of a streamed response as it arrives (a buffered response is one `PayloadChunk`), then one
`InvokeComplete`. Function failures are not API errors here (the operation has no `X-Amz-Function-Error`
header): whether before any output or mid-stream, the stream ends with an `InvokeComplete` whose
`ErrorCode` is the error type (the trailer's `Lambda-Runtime-Function-Error-Type`, else the document's
`errorType`: `Sandbox.Timedout`, `Runtime.ExitError`, ...) and whose `ErrorDetails` is the document's
`errorMessage` (the document itself when it has none). The headers go out with the first event.
"""

from __future__ import annotations

import orjson

from . import eventstream
from .httpserver import Exchange
from .invocation import HTTPSink


class EventStreamSink(HTTPSink):
    """Answers the response-streaming invoke endpoint's exchange with event-stream messages."""

    streams_live = True

    def __init__(self, exchange: Exchange):
        super().__init__(exchange)
        self._head: list[tuple[str, str]] | None = None  # the response's headers once it has started
        self._frames: bytearray | None = None  # for HTTP/1.0 invokers, which cannot take chunks

    def complete(self, status: int, content_type: str, body: bytes, function_error: bool) -> None:
        self.start(content_type)
        if function_error:
            self._finish(eventstream.invoke_complete(*error_fields(None, body)))
            return
        if body:
            self._send(eventstream.payload_chunk(body))
        self._finish(eventstream.invoke_complete())

    def start(self, content_type: str) -> None:
        if self._head is not None:
            return
        self._head = self._headers(content_type, False)
        if self.exchange.http_version == "1.0":
            self._frames = bytearray()
        else:
            self.exchange.start_stream(200, self._head)

    def write(self, data: bytes) -> None:
        self._send(eventstream.payload_chunk(data))

    def end(self, error_type: str | None, error_document: bytes | None) -> None:
        if error_document is None:
            self._finish(eventstream.invoke_complete())
        else:
            self._finish(eventstream.invoke_complete(*error_fields(error_type, error_document)))

    def _send(self, frame: bytes) -> None:
        if self._frames is not None:
            self._frames += frame
        else:
            self.exchange.write(frame)

    def _finish(self, last_frame: bytes) -> None:
        self._send(last_frame)
        if self._frames is not None:
            self.exchange.respond(200, self._head or (), bytes(self._frames))
        else:
            self.exchange.end()


def error_fields(error_type: str | None, document: bytes) -> tuple[str, str]:
    """`ErrorCode` and `ErrorDetails` for an error document."""
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError:
        value = None
    fields = value if isinstance(value, dict) else {}
    document_type, message = fields.get("errorType"), fields.get("errorMessage")
    code = error_type or (document_type if isinstance(document_type, str) and document_type else "Unhandled")
    details = message if isinstance(message, str) else document.decode("utf-8", "replace")
    return code, details
