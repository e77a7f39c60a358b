"""Where log records and the runtime's error blocks go: stdout, or the telemetry fd as frames."""

from __future__ import annotations

import os
import sys
import time

from fastric.runtime.logs.frames import DEFAULT_FRAME_TYPE, TEXT_FRAME_TYPES, encode_frame, write_all

_ERROR = 40


class StandardLogSink:
    """No telemetry fd: everything is written to the *current* `sys.stdout`, unframed."""

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        sys.stdout.write(msg)

    def log_error(self, message_lines: list[str]) -> None:
        sys.stdout.write("\r".join(message_lines) + "\n")


class FramedTelemetryLogSink:
    """`_LAMBDA_TELEMETRY_LOG_FD`: one frame per message, written with a single `write()`."""

    def __init__(self, fd: int, error_frame_type: bytes = TEXT_FRAME_TYPES[_ERROR]):
        self.fd = fd
        self.error_frame_type = error_frame_type

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        write_all(self.fd, encode_frame(frame_type or DEFAULT_FRAME_TYPE, msg, time.time_ns() // 1000))

    def log_error(self, message_lines: list[str]) -> None:
        self.log("\n".join(message_lines), self.error_frame_type)


LogSink = StandardLogSink | FramedTelemetryLogSink


def create_log_sink(error_frame_type: bytes = TEXT_FRAME_TYPES[_ERROR]) -> LogSink:
    """The framed sink if `_LAMBDA_TELEMETRY_LOG_FD` is set (the variable is deleted), else the stdout sink."""
    fd = os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    if fd is None:
        return StandardLogSink()
    os.fstat(int(fd))  # a bad descriptor fails at start-up, as awslambdaric's os.fdopen() does
    return FramedTelemetryLogSink(int(fd), error_frame_type)
