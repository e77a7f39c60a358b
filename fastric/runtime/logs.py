"""Log output exactly as awslambdaric 4.2.2 writes it: stdout/stderr, TEXT/JSON records, telemetry-fd frames.

Interface used by the runtime:
  setup()                      once at start-up, before the handler import
  set_request(rid, tenant_id)  per invocation, before the handler runs (two global assignments)
  log_error(document)          the runtime's `[ERROR] Type: message` block for an error document
  warn_unhandled_init()        the LAMBDA_WARNING line logged before an init error
  context_log(message)         what `LambdaContext.log()` writes
  runtime_log(message)         one line about the runtime itself (`[ERROR] [<ms>] LAMBDA_RUNTIME ...`) on fd 1

Environment read once by `setup()`: AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL, _LAMBDA_TELEMETRY_LOG_FD (then
deleted), AWS_LAMBDA_LOG_TIMESTAMP_PRECISION (fastric's opt-in millisecond JSON timestamps), and for the preview
warning AWS_EXECUTION_ENV, LAMBDA_DISABLE_PREVIEW_WARN, AWS_REGION. `log_error` re-reads AWS_EXECUTION_ENV for
the JSON variant's `ensure_ascii`, as awslambdaric's `to_json` does.

Class names (`LambdaLoggerHandler`, `LambdaLoggerHandlerWithFrameType`), the handlers' `log_sink` attribute and the
TEXT formatter being a plain `logging.Formatter` are kept because third-party code (e.g. Datadog's log
injection) looks for them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import sys
import time
import traceback

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from typing import TextIO

# -- frame types (big-endian u32), by level bucket ------------------------------------------------------------


def _frame_types(base: int) -> dict[int, bytes]:
    # NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL are base + 0, 8, 12, 16, 20, 24
    return {
        level: (base + offset).to_bytes(4, "big")
        for level, offset in ((0, 0), (10, 8), (20, 12), (30, 16), (40, 20), (50, 24))
    }


JSON_FRAME_TYPES = _frame_types(0xA55A0002)
TEXT_FRAME_TYPES = _frame_types(0xA55A0003)
DEFAULT_FRAME_TYPE = TEXT_FRAME_TYPES[logging.NOTSET]

_FRAME_HEADER = struct.Struct(">IQ")  # after the 4-byte type: message length, timestamp in microseconds


def encode_frame(frame_type: bytes, message: str, timestamp_us: int) -> bytes:
    """One telemetry frame: type (4 bytes), UTF-8 length (4), UNIX microseconds (8), all big-endian, then the text."""
    data = message.encode("utf-8")
    return frame_type + _FRAME_HEADER.pack(len(data), timestamp_us) + data


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


def level_bucket(levelno: int) -> int:
    """A record level clamped to 0..50 and rounded down to a multiple of 10 (25 → 20, 60 → 50)."""
    return min(50, max(0, levelno)) // 10 * 10


# -- sinks: where records and error blocks go -----------------------------------------------------------------


class StandardLogSink:
    """No telemetry fd: everything is written to the *current* `sys.stdout`, unframed."""

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        sys.stdout.write(msg)

    def log_error(self, message_lines: list[str]) -> None:
        sys.stdout.write("\r".join(message_lines) + "\n")


class FramedTelemetryLogSink:
    """`_LAMBDA_TELEMETRY_LOG_FD`: one frame per message, written with a single `write()`."""

    def __init__(self, fd: int, error_frame_type: bytes = TEXT_FRAME_TYPES[logging.ERROR]):
        self.fd = fd
        self.error_frame_type = error_frame_type

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        _write_all(self.fd, encode_frame(frame_type or DEFAULT_FRAME_TYPE, msg, time.time_ns() // 1000))

    def log_error(self, message_lines: list[str]) -> None:
        self.log("\n".join(message_lines), self.error_frame_type)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    while written < len(data):  # only on a short write (signal, non-blocking fd); normally one write per frame
        data = data[written:]
        written = os.write(fd, data)


LogSink = StandardLogSink | FramedTelemetryLogSink


def create_log_sink(error_frame_type: bytes = TEXT_FRAME_TYPES[logging.ERROR]) -> LogSink:
    """The framed sink if `_LAMBDA_TELEMETRY_LOG_FD` is set (the variable is deleted), else the stdout sink."""
    fd = os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    if fd is None:
        return StandardLogSink()
    os.fstat(int(fd))  # a bad descriptor fails at start-up, as awslambdaric's os.fdopen() does
    return FramedTelemetryLogSink(int(fd), error_frame_type)


# -- logging handlers, filter, formatters ---------------------------------------------------------------------

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
TEXT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_request_id = ""
_tenant_id: str | None = None


class LambdaLoggerFilter(logging.Filter):
    """Stamps every record reaching the root handler with the current request id ("" before the first) and tenant."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _task_ids is not None:
            record.aws_request_id, record.tenant_id = _task_ids.get()
            return True
        record.aws_request_id = _request_id
        record.tenant_id = _tenant_id
        return True


class LambdaLoggerHandler(logging.Handler):
    """TEXT without `AWS_LAMBDA_LOG_LEVEL`: every record goes to the sink as an untyped (0xA55A0003) frame."""

    def __init__(self, log_sink):
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        # Like awslambdaric, no handleError(): a formatting failure propagates to the logging call.
        self.log_sink.log(self.format(record))


class LambdaLoggerHandlerWithFrameType(logging.Handler):
    """JSON, or TEXT with `AWS_LAMBDA_LOG_LEVEL`: frames typed by format and level bucket."""

    def __init__(self, log_sink):
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)  # JsonFormatter sets record._frame_type
        self.log_sink.log(
            message, getattr(record, "_frame_type", None) or TEXT_FRAME_TYPES.get(level_bucket(record.levelno))
        )


_RESERVED_FIELDS = frozenset(
    (
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "aws_request_id",
        "tenant_id",
        "_frame_type",
    )
)

_json_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    """awslambdaric's JSON record: fixed field order, `None` fields dropped, `extra=` fields appended.

    The record is normalised in place (level bucketed, `levelname` renamed, `_frame_type` set), as awslambdaric
    does, so handlers after this one see the same record they would see there.
    """

    def __init__(self, milliseconds: bool = False):
        super().__init__(datefmt=JSON_DATE_FORMAT)
        self.milliseconds = milliseconds

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if self.milliseconds:
            return "%s.%03dZ" % (time.strftime(TEXT_DATE_FORMAT, self.converter(record.created)), record.msecs)
        return super().formatTime(record, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        levelno = record.levelno = level_bucket(record.levelno)
        record.levelname = logging.getLevelName(levelno)
        record._frame_type = JSON_FRAME_TYPES.get(levelno, JSON_FRAME_TYPES[logging.NOTSET])
        exc_info = record.exc_info
        msg = record.msg
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": msg if isinstance(msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            # Present (possibly None) before the extras are merged, so an `extra=` of the same name is dropped.
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
        }
        tenant_id = getattr(record, "tenant_id", None)
        if tenant_id is not None:
            result["tenantId"] = tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED_FIELDS and key not in result:
                result[key] = value
        return _json_encode({key: value for key, value in result.items() if value is not None}) + "\n"


def parse_log_format(value: str | None) -> bool:
    """True for JSON (`AWS_LAMBDA_LOG_FORMAT`, case-insensitive); anything else is TEXT."""
    return bool(value) and value.upper() == "JSON"


def parse_log_level(value: str | None) -> str:
    """`AWS_LAMBDA_LOG_LEVEL` as awslambdaric reads it: unset → "", exactly "TRACE" → "DEBUG", else upper-cased."""
    return {None: "", "TRACE": "DEBUG"}.get(value, value).upper()


def configure_logging(json_format: bool, log_level: str, sink: LogSink, milliseconds: bool = False) -> logging.Handler:
    """Install the one root handler (with the request filter) and the root level; returns the handler."""
    logging.Formatter.converter = time.gmtime  # global, as in awslambdaric: every formatter prints UTC
    root = logging.getLogger()
    if json_format or log_level:
        handler: logging.Handler = LambdaLoggerHandlerWithFrameType(sink)
    else:
        handler = LambdaLoggerHandler(sink)
    if json_format:
        handler.setFormatter(JsonFormatter(milliseconds))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, TEXT_DATE_FORMAT))
    if log_level in logging._nameToLevel:
        root.setLevel(log_level)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)
    return handler


# -- stdout / stderr ------------------------------------------------------------------------------------------


class Unbuffered:
    """Flush-after-write proxy, for a stream without a file descriptor (awslambdaric wraps every stream so)."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def write(self, msg):
        result = self.stream.write(msg)
        self.stream.flush()
        return result

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


def unbuffered(stream: TextIO | None) -> TextIO | None:
    """`stream` made to reach its file descriptor on every write.

    Like `python -u`: a write-through TextIOWrapper over an unbuffered FileIO on the same fd, with the original's
    encoding, errors and name. No per-write Python code runs, and each `write()` is one `write(2)`, as with
    awslambdaric's flush-per-write proxy (so `print("a", "b")` produces the same chunks and ordering).
    """
    if stream is None:
        return None
    try:
        if stream.write_through and not hasattr(stream.buffer, "raw"):
            return stream  # already unbuffered (python -u, PYTHONUNBUFFERED)
        fd = stream.fileno()
        stream.flush()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return stream if isinstance(stream, Unbuffered) else Unbuffered(stream)
    raw = io.FileIO(fd, "wb", closefd=False)
    raw.name = getattr(stream, "name", fd)
    wrapper = io.TextIOWrapper(
        raw, encoding=stream.encoding, errors=stream.errors, newline="\n", line_buffering=False, write_through=True
    )
    wrapper.mode = "w"
    return wrapper


# -- runtime state and the interface the runtime calls --------------------------------------------------------

_sink: LogSink = StandardLogSink()
_json_format = False
_milliseconds = False
_root_handler: logging.Handler | None = None


def setup() -> None:
    """Make stdout/stderr unbuffered, create the sink, configure the root logger, log the preview warning."""
    global _sink, _json_format, _milliseconds, _root_handler
    sys.stdout = unbuffered(sys.stdout)
    sys.stderr = unbuffered(sys.stderr)
    environ = os.environ
    _json_format = parse_log_format(environ.get("AWS_LAMBDA_LOG_FORMAT"))
    _milliseconds = (environ.get("AWS_LAMBDA_LOG_TIMESTAMP_PRECISION") or "").lower() == "milliseconds"
    error_frame_type = (JSON_FRAME_TYPES if _json_format else TEXT_FRAME_TYPES)[logging.ERROR]
    _sink = create_log_sink(error_frame_type)
    if _root_handler is not None:  # set up twice in one process: replace, never duplicate
        logging.getLogger().removeHandler(_root_handler)
    _root_handler = configure_logging(
        _json_format, parse_log_level(environ.get("AWS_LAMBDA_LOG_LEVEL")), _sink, _milliseconds
    )
    warn_preview_runtime()


def emit_worker_pool_event(worker_count: int) -> None:
    """Multi-concurrency parent, before forking: set up, log awslambdaric's DEBUG worker-pool event, then drop the
    root handlers and close the telemetry fd (the workers' records go unframed to stdout)."""
    global _sink, _root_handler
    setup()
    root = logging.getLogger()
    root.debug(
        {
            "event": "runtime_worker_pool_initializing",
            "workerCount": worker_count,
            "executionEnvironmentMaxConcurrency": worker_count,
        }
    )
    root.handlers.clear()
    _root_handler = None
    if isinstance(_sink, FramedTelemetryLogSink):
        os.close(_sink.fd)
    _sink = StandardLogSink()


_task_ids = None


def use_task_local_ids() -> None:
    """TEMPORARY (replaced by the logs package): ids per asyncio Task."""
    global _task_ids
    import contextvars

    _task_ids = contextvars.ContextVar("ids", default=("", None))


def set_request(request_id: str, tenant_id: str | None) -> None:
    """The ids stamped on log records from now on (never reset between invocations, as in awslambdaric)."""
    global _request_id, _tenant_id
    if _task_ids is not None:
        _task_ids.set((request_id, tenant_id))
        return
    _request_id = request_id
    _tenant_id = tenant_id


def _utc_timestamp() -> str:
    now = time.time()
    if _milliseconds:
        return "%s.%03dZ" % (time.strftime(TEXT_DATE_FORMAT, logging.Formatter.converter(now)), int(now * 1000) % 1000)
    return time.strftime(JSON_DATE_FORMAT, logging.Formatter.converter(now))


_UTF8_EXECUTION_ENVS = frozenset(
    ("AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15")
)


def json_error_line(document: dict) -> str:
    """The JSON error log: `timestamp`, `level`, then the document; simplejson-compatible `to_json` bytes."""
    ensure_ascii = os.environ.get("AWS_EXECUTION_ENV") not in _UTF8_EXECUTION_ENVS
    return json.dumps({"timestamp": _utc_timestamp(), "level": "ERROR", **document}, ensure_ascii=ensure_ascii)


def text_error_lines(document: dict) -> list[str]:
    """The TEXT error block's lines: `[ERROR] Type: message`, the Traceback line, frames with NBSP indentation."""
    head = "[ERROR]"
    error_type = document.get("errorType")
    if error_type:
        head += " " + error_type
    message = document.get("errorMessage")
    if message:
        if error_type:
            head += ":"
        head += " " + message
    lines = [head]
    stack = document.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    return lines


def log_error(document: dict) -> None:
    """Log a runtime error document (init or invocation), before it is posted; never level-filtered."""
    if _json_format:
        _sink.log_error([json_error_line(document)])
    else:
        _sink.log_error(text_error_lines(document))


UNHANDLED_INIT_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "runtime updates can be triggered by a function change, or can be applied automatically. To determine if the "
    "runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates with "
    "a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


def warn_unhandled_init() -> None:
    """The LAMBDA_WARNING logged before an init error's block (through logging: level-filtered and formatted)."""
    logging.warning(UNHANDLED_INIT_WARNING)


def preview_runtime_warning() -> str:
    """The preview-runtime LAMBDA_WARNING, with the China-region docs link where `AWS_REGION` is `cn-*`."""
    host = "docs.amazonaws.cn" if os.environ.get("AWS_REGION", "").startswith("cn-") else "docs.aws.amazon.com"
    return (
        "LAMBDA_WARNING: This is a preview runtime version and should not be used for production workloads. "
        "For further information and to provide feedback, see "
        f"https://{host}/lambda/latest/dg/lambda-runtimes.html\r"
    )


def warn_preview_runtime() -> None:
    """Log the preview warning when `AWS_EXECUTION_ENV` names a preview runtime, unless disabled."""
    if (
        not os.environ.get("LAMBDA_DISABLE_PREVIEW_WARN", "")
        and os.environ.get("AWS_EXECUTION_ENV", "") == "AWS_Lambda_python3.15"
    ):
        logging.warning(preview_runtime_warning())


def context_log(message: str) -> None:
    """`LambdaContext.log`: through the first root handler that has a sink (an untyped frame), else to stdout."""
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "log_sink"):
            handler.log_sink.log(message)
            return
    sys.stdout.write(message)


def runtime_log(message: str) -> None:
    """`[ERROR] [<epoch ms>] LAMBDA_RUNTIME <message>` raw on fd 1, bypassing sys.stdout and the telemetry fd.

    Encoded as UTF-8 with surrogateescape, so bytes decoded with surrogateescape come out as they arrived.
    """
    line = f"[ERROR] [{time.time_ns() // 1_000_000}] LAMBDA_RUNTIME {message}\n"
    _write_all(1, line.encode("utf-8", "surrogateescape"))
