"""Log output exactly as awslambdaric 4.2.2 writes it: stdout/stderr, TEXT/JSON records, telemetry-fd frames.

The facade the runtime calls:
  setup()                      once at start-up, before the handler import
  set_request(rid, tenant_id)  per invocation, before the handler runs (two attribute stores)
  log_error(document)          the runtime's `[ERROR] Type: message` block for an error document
  warn_unhandled_init()        the LAMBDA_WARNING line logged before an init error
  context_log(message)         what `LambdaContext.log()` writes
  runtime_log(message)         one line about the runtime itself (`[ERROR] [<ms>] LAMBDA_RUNTIME ...`) on fd 1
  emit_worker_pool_event(n)    the multi-concurrency parent's DEBUG event, before it forks its workers
  use_task_local_ids()         per-asyncio-Task request/tenant ids, for invocations that interleave in one process

Environment read once by `setup()`: AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL, _LAMBDA_TELEMETRY_LOG_FD (then
deleted), AWS_LAMBDA_LOG_TIMESTAMP_PRECISION (fastric's opt-in millisecond JSON timestamps), and for the preview
warning AWS_EXECUTION_ENV, LAMBDA_DISABLE_PREVIEW_WARN, AWS_REGION.

The pieces, one job each: `frames` (telemetry frame encoding), `sinks` (stdout or the telemetry fd), `formatters`
(root handler, filter, TEXT/JSON formatters), `streams` (unbuffered stdout/stderr), `messages` (the runtime's own
lines), `logstate` (the one state object, `logs.state`: what `setup()` decided and the current ids), `onimport`
(configuring the root logger when `logging` is first imported).

`logging` is not imported here: `setup()` configures the root logger at once if `logging` is imported already,
else the moment anything imports it (`onimport.py`), before that import returns, so the function's code never
sees the root logger unconfigured and a function that never logs never loads it. The names of `formatters`
(which subclass `logging` classes) are imported from this package on first use.
"""

from __future__ import annotations

import os
import sys

from fastric.runtime.logs import onimport
from fastric.runtime.logs.frames import (
    DEFAULT_FRAME_TYPE,
    JSON_FRAME_TYPES,
    TEXT_FRAME_TYPES,
    decode_frames,
    encode_frame,
    level_bucket,
    write_all,
)
from fastric.runtime.logs.logstate import (
    LogState,
    TaskLocalLogState,
    make_ids_task_local,
    parse_log_format,
    parse_log_level,
    state,
)
from fastric.runtime.logs.messages import (
    JSON_DATE_FORMAT,
    TEXT_DATE_FORMAT,
    UNHANDLED_INIT_WARNING,
    is_preview_runtime,
    json_error_line,
    preview_runtime_warning,
    runtime_line,
    text_error_lines,
)
from fastric.runtime.logs.onimport import after_import
from fastric.runtime.logs.sinks import FramedTelemetryLogSink, LogSink, StandardLogSink, create_log_sink
from fastric.runtime.logs.streams import Unbuffered, unbuffered

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from fastric.runtime.logs.formatters import (
        TEXT_FORMAT,
        JsonFormatter,
        LambdaLoggerFilter,
        LambdaLoggerHandler,
        LambdaLoggerHandlerWithFrameType,
        configure_logging,
    )

_FORMATTER_NAMES = frozenset(
    (
        "TEXT_FORMAT",
        "JsonFormatter",
        "LambdaLoggerFilter",
        "LambdaLoggerHandler",
        "LambdaLoggerHandlerWithFrameType",
        "configure_logging",
    )
)
_ERROR = 40  # logging.ERROR

__all__ = [
    "DEFAULT_FRAME_TYPE",
    "JSON_DATE_FORMAT",
    "JSON_FRAME_TYPES",
    "TEXT_DATE_FORMAT",
    "TEXT_FORMAT",
    "TEXT_FRAME_TYPES",
    "UNHANDLED_INIT_WARNING",
    "FramedTelemetryLogSink",
    "JsonFormatter",
    "LambdaLoggerFilter",
    "LambdaLoggerHandler",
    "LambdaLoggerHandlerWithFrameType",
    "LogSink",
    "LogState",
    "StandardLogSink",
    "TaskLocalLogState",
    "Unbuffered",
    "configure_logging",
    "context_log",
    "create_log_sink",
    "decode_frames",
    "emit_worker_pool_event",
    "encode_frame",
    "json_error_line",
    "level_bucket",
    "log_error",
    "parse_log_format",
    "parse_log_level",
    "preview_runtime_warning",
    "runtime_debug",
    "runtime_log",
    "set_request",
    "settle",
    "setup",
    "state",
    "text_error_lines",
    "unbuffered",
    "use_task_local_ids",
    "warn_preview_runtime",
    "warn_unhandled_init",
]


def setup() -> None:
    """Make stdout/stderr unbuffered, create the sink, configure the root logger (now, or when `logging` is first
    imported), log the preview warning."""
    sys.stdout = unbuffered(sys.stdout)
    sys.stderr = unbuffered(sys.stderr)
    environ = os.environ
    state.json_format = json_format = parse_log_format(environ.get("AWS_LAMBDA_LOG_FORMAT"))
    state.milliseconds = (environ.get("AWS_LAMBDA_LOG_TIMESTAMP_PRECISION") or "").lower() == "milliseconds"
    state.log_level = parse_log_level(environ.get("AWS_LAMBDA_LOG_LEVEL"))
    state.sink = create_log_sink((JSON_FRAME_TYPES if json_format else TEXT_FRAME_TYPES)[_ERROR])
    after_import("logging", configure_root_logger)
    warn_preview_runtime()


def configure_root_logger() -> None:
    """Install the root handler `setup()` decided on (replacing the one a previous `setup()` installed)."""
    import logging

    from fastric.runtime.logs.formatters import configure_logging

    if state.root_handler is not None:  # set up twice in one process: replace, never duplicate
        logging.getLogger().removeHandler(state.root_handler)
    state.root_handler = configure_logging(state.json_format, state.log_level, state.sink, state.milliseconds)


def settle() -> None:
    """After the handler's import: if `logging` was imported past the watch (a finder of the function's own in
    front of it), configure the root logger now."""
    onimport.catch_up("logging")


def emit_worker_pool_event(worker_count: int) -> None:
    """Multi-concurrency parent, before forking: set up, log awslambdaric's DEBUG worker-pool event, then drop the
    root handlers and close the telemetry fd (the workers' records go unframed to stdout)."""
    setup()
    import logging  # the root logger is configured as it is imported

    root = logging.getLogger()
    root.debug(
        {
            "event": "runtime_worker_pool_initializing",
            "workerCount": worker_count,
            "executionEnvironmentMaxConcurrency": worker_count,
        }
    )
    root.handlers.clear()
    state.root_handler = None
    if isinstance(state.sink, FramedTelemetryLogSink):
        os.close(state.sink.fd)
    state.sink = StandardLogSink()


def set_request(request_id: str, tenant_id: str | None) -> None:
    """The ids stamped on log records from now on (never reset between invocations, as in awslambdaric); with
    task-local ids, on the records of the current asyncio Task."""
    state.request_id = request_id
    state.tenant_id = tenant_id


def use_task_local_ids(enabled: bool = True) -> None:
    """From now on `set_request` sets the ids of the current asyncio Task (a `contextvars.ContextVar`), and each
    Task's records carry its own; `enabled=False` goes back to one process-wide pair (the default)."""
    make_ids_task_local(state, enabled)


def log_error(document: dict) -> None:
    """Log a runtime error document (init or invocation), before it is posted; never level-filtered."""
    if state.json_format:
        state.sink.log_error([json_error_line(document)])
    else:
        state.sink.log_error(text_error_lines(document))


def warn_unhandled_init() -> None:
    """The LAMBDA_WARNING logged before an init error's block (through logging: level-filtered and formatted)."""
    import logging

    logging.warning(UNHANDLED_INIT_WARNING)


def warn_preview_runtime() -> None:
    """Log the preview warning when `AWS_EXECUTION_ENV` names a preview runtime, unless disabled."""
    if is_preview_runtime():
        import logging

        logging.warning(preview_runtime_warning())


def context_log(message: str) -> None:
    """`LambdaContext.log`: through the first root handler that has a sink (an untyped frame), else to stdout."""
    logging = sys.modules.get("logging")
    if logging is None:  # nothing imported logging yet: after setup(), the root handler would be its, on state.sink
        (state.sink.log if onimport.pending("logging") else sys.stdout.write)(message)
        return
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "log_sink"):
            handler.log_sink.log(message)
            return
    sys.stdout.write(message)


def runtime_log(message: str) -> None:
    """`[ERROR] [<epoch ms>] LAMBDA_RUNTIME <message>` raw on fd 1, bypassing sys.stdout and the telemetry fd."""
    write_all(1, runtime_line(message))


# FASTRIC_DEBUG=1: fastric's own diagnostics (which pipelining mode it uses, say) as LAMBDA_RUNTIME lines. The
# function's log stream belongs to the function: without it, nothing of fastric's own but awslambdaric's lines.
DEBUG = os.environ.get("FASTRIC_DEBUG", "").strip().lower() in ("1", "on", "true", "yes")


def runtime_debug(message: str) -> None:
    """`[DEBUG] [<epoch ms>] LAMBDA_RUNTIME <message>` on fd 1, when the user asked for it (FASTRIC_DEBUG)."""
    if DEBUG:
        write_all(1, runtime_line(message, "DEBUG"))


def __getattr__(name: str) -> object:
    """The names of `formatters`, imported on first use (it imports `logging`)."""
    if name not in _FORMATTER_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from fastric.runtime.logs import formatters

    return getattr(formatters, name)
