"""The runtime's own log output: error blocks (TEXT and JSON), LAMBDA_WARNING texts, the LAMBDA_RUNTIME line."""

from __future__ import annotations

import os
import time

from fastric.runtime.logs.logstate import state

TEXT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_UTF8_EXECUTION_ENVS = frozenset(
    ("AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15")
)


def json_error_line(document: dict) -> str:
    """The JSON error log: `timestamp`, `level`, then the document; simplejson-compatible `to_json` bytes.

    Re-reads AWS_EXECUTION_ENV for `ensure_ascii`, as awslambdaric's `to_json` does."""
    import json  # here, not at the top: TEXT logging never needs it

    ensure_ascii = os.environ.get("AWS_EXECUTION_ENV") not in _UTF8_EXECUTION_ENVS
    return json.dumps({"timestamp": _utc_timestamp(), "level": "ERROR", **document}, ensure_ascii=ensure_ascii)


def _utc_timestamp() -> str:
    import logging  # configured by now (`logs.setup`); the converter is the one every formatter uses

    now = time.time()
    if state.milliseconds:
        return "%s.%03dZ" % (time.strftime(TEXT_DATE_FORMAT, logging.Formatter.converter(now)), int(now * 1000) % 1000)
    return time.strftime(JSON_DATE_FORMAT, logging.Formatter.converter(now))


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


UNHANDLED_INIT_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "runtime updates can be triggered by a function change, or can be applied automatically. To determine if the "
    "runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates with "
    "a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


def preview_runtime_warning() -> str:
    """The preview-runtime LAMBDA_WARNING, with the China-region docs link where `AWS_REGION` is `cn-*`."""
    host = "docs.amazonaws.cn" if os.environ.get("AWS_REGION", "").startswith("cn-") else "docs.aws.amazon.com"
    return (
        "LAMBDA_WARNING: This is a preview runtime version and should not be used for production workloads. "
        "For further information and to provide feedback, see "
        f"https://{host}/lambda/latest/dg/lambda-runtimes.html\r"
    )


def is_preview_runtime() -> bool:
    """Whether `AWS_EXECUTION_ENV` names a preview runtime and `LAMBDA_DISABLE_PREVIEW_WARN` is unset or empty."""
    return (
        not os.environ.get("LAMBDA_DISABLE_PREVIEW_WARN", "")
        and os.environ.get("AWS_EXECUTION_ENV", "") == "AWS_Lambda_python3.15"
    )


def runtime_line(message: str, level: str = "ERROR") -> bytes:
    """`[ERROR] [<epoch ms>] LAMBDA_RUNTIME <message>` as UTF-8 with surrogateescape (bytes decoded with
    surrogateescape come out as they arrived)."""
    return f"[{level}] [{time.time_ns() // 1_000_000}] LAMBDA_RUNTIME {message}\n".encode("utf-8", "surrogateescape")
