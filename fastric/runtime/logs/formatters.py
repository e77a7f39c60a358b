"""The root logger's handler, filter and formatters, as awslambdaric 4.2.2 installs them.

Class names (`LambdaLoggerHandler`, `LambdaLoggerHandlerWithFrameType`, `LambdaLoggerFilter`), the handlers'
`log_sink` attribute and the TEXT formatter being a plain `logging.Formatter` are kept because third-party code
(e.g. Datadog's log injection) looks for them.
"""

from __future__ import annotations

import logging
import time
import traceback

from fastric.runtime.logs.frames import JSON_FRAME_TYPES, TEXT_FRAME_TYPES, level_bucket
from fastric.runtime.logs.logstate import state
from fastric.runtime.logs.messages import JSON_DATE_FORMAT, TEXT_DATE_FORMAT

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from fastric.runtime.logs.sinks import LogSink

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"


class LambdaLoggerFilter(logging.Filter):
    """Stamps every record reaching the root handler with the current request id ("" before the first) and tenant."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = state.request_id
        record.tenant_id = state.tenant_id
        return True


class LambdaLoggerHandler(logging.Handler):
    """TEXT without `AWS_LAMBDA_LOG_LEVEL`: every record goes to the sink as an untyped (0xA55A0003) frame."""

    def __init__(self, log_sink: LogSink):
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        # Like awslambdaric, no handleError(): a formatting failure propagates to the logging call.
        self.log_sink.log(self.format(record))


class LambdaLoggerHandlerWithFrameType(logging.Handler):
    """JSON, or TEXT with `AWS_LAMBDA_LOG_LEVEL`: frames typed by format and level bucket."""

    def __init__(self, log_sink: LogSink):
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


class JsonFormatter(logging.Formatter):
    """awslambdaric's JSON record: fixed field order, `None` fields dropped, `extra=` fields appended.

    The record is normalised in place (level bucketed, `levelname` renamed, `_frame_type` set), as awslambdaric
    does, so handlers after this one see the same record they would see there.
    """

    def __init__(self, milliseconds: bool = False):
        import json  # here, not at the top: TEXT logging never needs it

        super().__init__(datefmt=JSON_DATE_FORMAT)
        self.milliseconds = milliseconds
        self._encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

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
            # AttributeError for the (None, None, None) of `logger.exception()` outside an except block, as there
            "errorType": exc_info[0].__name__ if exc_info else None,  # type: ignore[union-attr]
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
        return self._encode({key: value for key, value in result.items() if value is not None}) + "\n"


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
