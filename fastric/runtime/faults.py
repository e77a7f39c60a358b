"""Error documents, stack traces and the X-Ray error cause, shaped exactly as awslambdaric 4.2.2 shapes them."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    import traceback
    from types import TracebackType

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the fastric package
XRAY_CAUSE_LIMIT = 1024 * 1024  # awslambdaric drops the X-Ray cause header at 1 MiB or more


class FaultError(Exception):
    """A failure the runtime classifies itself (`Runtime.*`): reported with this type, message and trace."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


def error_document(message: str, error_type: str, request_id: str, stack: list[str]) -> dict:
    """The Runtime API error body, keys in awslambdaric's order."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack or [],
    }


def _user_frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    """The traceback's frames without fastric's own leading frames (all of them if every frame is fastric's)."""
    import traceback  # here, not at the top: only errors need it, and it costs milliseconds at start-up

    frames = traceback.extract_tb(tb)
    for index, frame in enumerate(frames):
        if not frame.filename.startswith(_PACKAGE_DIR):
            return frames[index:]
    return frames


def format_frames(frames: list[traceback.FrameSummary]) -> list[str]:
    """`traceback.format_list` over the frames without their column positions, as awslambdaric formats them: no
    caret lines."""
    import traceback

    return traceback.format_list(
        [traceback.FrameSummary(f.filename, f.lineno, f.name, lookup_line=False, line=f.line) for f in frames]
    )


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the report
        return f"<unprintable {type(value).__name__} object>"


def describe_exception(exc: BaseException, request_id: str) -> tuple[dict, bytes | None]:
    """The error document and X-Ray cause (ASCII JSON bytes, or None when over the limit) for an exception."""
    if isinstance(exc, FaultError):
        document = error_document(exc.message, exc.error_type, request_id, exc.stack)
        cause = {
            "working_directory": _cwd(),
            "exceptions": [{"message": exc.message, "type": "LambdaValidationError", "stack": []}],
            "paths": [],
        }
        return document, _xray_header(cause)
    frames = _user_frames(exc.__traceback__)
    message = _safe_str(exc)
    name = type(exc).__name__
    document = error_document(message, name, request_id, format_frames(frames))
    cause = {
        "working_directory": _cwd(),
        "exceptions": [
            {
                "message": message,
                "type": name,
                "stack": [{"label": f.name, "path": f.filename, "line": f.lineno} for f in frames],
            }
        ],
        "paths": list(dict.fromkeys(f.filename for f in frames)),
    }
    return document, _xray_header(cause)


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        return ""


def _xray_header(cause: dict) -> bytes | None:
    import json  # here, not at the top: this module is imported on the way to the first /next, json need not be

    # ASCII-escaped so the header value never carries raw non-ASCII or control bytes.
    value = json.dumps(cause, ensure_ascii=True).encode("ascii")
    return value if len(value) < XRAY_CAUSE_LIMIT else None


def dump_document(document: dict) -> bytes:
    """The error document as JSON bytes (orjson; falls back to escaped JSON for strings orjson refuses)."""
    import orjson

    try:
        return orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError):
        import json

        return json.dumps(document, ensure_ascii=True, default=_safe_str).encode("ascii")
