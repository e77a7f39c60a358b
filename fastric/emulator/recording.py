"""An invocation's whole record, for programs that drive the emulator (`fastric.testing`), not for people.

`RecordSink` answers one invocation with frames, each `struct.pack(">cI", kind, len(data)) + data`:

- `D`: bytes of the response, as the function produced them (a buffered response is one frame);
- `E`: the error document (a function error, a streamed response's error trailer, a timeout, a crash): the
  same JSON document whichever way the function answered;
- `R` (last): the record, a JSON object: `request_id`, `status_code` (the invoke endpoint's: 200, or 502
  for a platform failure), `content_type`, `logs` (the invocation's whole output, `START` … `REPORT`, not
  cut to 4 KB as a log tail is), the REPORT line's numbers (`duration_ms`, `billed_duration_ms`,
  `memory_size_mb`, `max_memory_used_mb`, `init_duration_ms`) and `import_profile` (an
  `ImportProfile.to_dict()` on an instance's first invocation with `--import-profile`, else null).

The record is complete after the REPORT line. `live=False` (invoke) holds every frame until then and sends
one response, and, as Lambda's `Invoke` buffers a streamed response, a stream over 6 291 556 bytes becomes the
`Function.ResponseSizeTooLarge` error; `live=True` (stream) sends the `D` frames as they come, chunked, uncapped.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import orjson

from .documents import MAX_PAYLOAD, response_too_large
from .httpserver import Exchange
from .importprofile import ImportProfile
from .invocation import ResponseSink
from .report import PlatformLog, Report

FRAME_HEAD = struct.Struct(">cI")
CONTENT_TYPE = "application/vnd.fastric.frames"


def frame(kind: bytes, data: bytes) -> bytes:
    return FRAME_HEAD.pack(kind, len(data)) + data


class RecordingLog(PlatformLog):
    """A PlatformLog that also keeps, per request id, the REPORT line's numbers and the import profile."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reports: dict[str, dict[str, Any]] = {}

    def report_line(self, report: Report) -> str:
        self.reports[report.request_id] = {
            "duration_ms": round(report.duration_ms, 2),
            "billed_duration_ms": max(1, math.ceil(report.duration_ms)),  # as the REPORT line (report.format_report)
            "memory_size_mb": report.memory_mb,
            "max_memory_used_mb": report.max_memory_used_mb,
            "init_duration_ms": None if report.init_duration_ms is None else round(report.init_duration_ms, 2),
            "import_profile": None,
        }
        return super().report_line(report)

    def import_profile(self, request_id: str, profile: ImportProfile) -> None:
        if request_id in self.reports:
            self.reports[request_id]["import_profile"] = profile.to_dict()
        super().import_profile(request_id, profile)

    def take(self, request_id: str) -> dict[str, Any]:
        return self.reports.pop(request_id, {})


class FullLog:
    """An invocation's log lines, all of them (the sandbox's `invocation.tail` interface)."""

    def __init__(self, on_finish: Callable[[], None]):
        self.lines: list[str] = []
        self.on_finish = on_finish

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def finish(self) -> None:
        self.on_finish()


class RecordSink(ResponseSink):
    """Answers an exchange with an invocation's frames (see the module docstring)."""

    def __init__(self, exchange: Exchange, log: RecordingLog, live: bool):
        self.exchange = exchange
        self.log = log
        self.live = live
        self.tail = FullLog(self._finish)
        self.status = 200
        self.content_type = "application/json"
        self._held = bytearray()
        self._started = False
        self._streamed = 0  # bytes of a streamed response (live=False caps them as Invoke does)

    def _send(self, kind: bytes, data: bytes) -> None:
        if not self.live:
            self._held += frame(kind, data)
            return
        if not self._started:
            self._started = True
            self.exchange.start_stream(200, [("Content-Type", CONTENT_TYPE), ("X-Amzn-RequestId", self.request_id)])
        self.exchange.write(frame(kind, data))

    def complete(self, status: int, content_type: str, body: bytes, function_error: bool) -> None:
        self.status, self.content_type = status, content_type
        if function_error:
            self._send(b"E", body)
        elif body:
            self._send(b"D", body)

    def start(self, content_type: str) -> None:
        self.content_type = content_type

    def write(self, data: bytes) -> None:
        self._streamed += len(data)
        if self.live or self._streamed <= MAX_PAYLOAD:
            self._send(b"D", data)
        else:
            self._held.clear()  # only D frames are held before the end

    def end(self, error_type: str | None, error_document: bytes | None) -> None:
        if error_document is not None:
            self._send(b"E", error_document)
        elif not self.live and self._streamed > MAX_PAYLOAD:
            self._send(b"E", response_too_large(self._streamed))

    def when_writable(self, callback: Callable[[], None]) -> None:
        if self.live:
            self.exchange.when_writable(callback)
        else:
            callback()

    @property
    def writable(self) -> bool:
        return not self.live or self.exchange.writable

    def _finish(self) -> None:
        record = {
            "request_id": self.request_id,
            "status_code": self.status,
            "content_type": self.content_type,
            "logs": self.tail.text(),
            **self.log.take(self.request_id),
        }
        self._send(b"R", orjson.dumps(record))
        if self.live:
            self.exchange.end()
        else:
            headers = [("Content-Type", CONTENT_TYPE), ("X-Amzn-RequestId", self.request_id)]
            self.exchange.respond(200, headers, bytes(self._held))
