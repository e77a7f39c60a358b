"""`X-Amz-Log-Type: Tail`: the invocation's log, last 4 KB, base64 in `X-Amz-Log-Result` (boto3's `LogResult`).

As on Lambda, the log is the invocation's `START` line, the output of the function (and of the extensions)
while it ran, and its `END` and `REPORT` lines; so the answer waits for the `REPORT` line (the end of the
invoke phase), the response held until then.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from .httpserver import Exchange
from .invocation import HTTPSink

TAIL_BYTES = 4096


class LogTail:
    """Collects an invocation's log lines; `finish()` is called after its REPORT line."""

    def __init__(self, on_finish: Callable[[], None] = lambda: None):
        self.data = bytearray()
        self.on_finish = on_finish

    def add(self, line: str) -> None:
        self.data += line.encode("utf-8", "replace") + b"\n"
        if len(self.data) > 4 * TAIL_BYTES:
            del self.data[:-TAIL_BYTES]

    def result(self) -> str:
        """Base64 of the last 4 KB."""
        return base64.b64encode(bytes(self.data[-TAIL_BYTES:])).decode("ascii")

    def finish(self) -> None:
        self.on_finish()


class TailSink(HTTPSink):
    """An HTTPSink that holds the response (a stream is buffered whole) until the log tail is complete."""

    def __init__(self, exchange: Exchange):
        super().__init__(exchange)
        self.tail = LogTail(self._release)
        self._held: tuple[int, str, bytes, bool] | None = None
        self._stream_type = "application/octet-stream"
        self._stream = bytearray()
        self._log_result: str | None = None

    def _headers(self, content_type: str, function_error: bool) -> list[tuple[str, str]]:
        headers = super()._headers(content_type, function_error)
        if self._log_result is not None:
            headers.append(("X-Amz-Log-Result", self._log_result))
        return headers

    def complete(self, status: int, content_type: str, body: bytes, function_error: bool) -> None:
        self._held = (status, content_type, body, function_error)

    def start(self, content_type: str) -> None:
        self._stream_type = content_type

    def write(self, data: bytes) -> None:
        self._stream += data

    def end(self, error_type: str | None, error_document: bytes | None) -> None:
        if error_document is None:
            self._held = (200, self._stream_type, bytes(self._stream), False)
        else:
            self._held = (200, "application/json", error_document, True)

    def when_writable(self, callback: Callable[[], None]) -> None:
        callback()

    @property
    def writable(self) -> bool:
        return True

    def _release(self) -> None:
        self._log_result = self.tail.result()
        if self._held is not None:
            super().complete(*self._held)
