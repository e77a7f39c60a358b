"""Limits and the JSON documents the emulator answers with, on both sides (RAPID's wording where it has one)."""

from __future__ import annotations

import base64
import binascii
import signal

import orjson

MAX_PAYLOAD = 6 * 1024 * 1024 + 100  # 6 291 556 bytes, inclusive, both directions (RAPID's MaxPayloadSize)

ACCEPTED = b'{"status":"OK"}'


def error_document(error_type: str, message: str) -> bytes:
    return orjson.dumps({"errorMessage": message, "errorType": error_type})


# -- Runtime API answers (what the bootstrap sees) --------------------------------------------
INVALID_REQUEST_ID = error_document("InvalidRequestID", "Invalid request ID")
PAYLOAD_TOO_LARGE = error_document(
    "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."
)
INVALID_RESPONSE_MODE = error_document("InvalidFunctionResponseMode", "Invalid function response mode")
NOT_FOUND = error_document("NotFound", "Not found")
METHOD_NOT_ALLOWED = error_document("MethodNotAllowed", "Method not allowed")


def invalid_state_transition(source: str, target: str) -> bytes:
    return error_document(
        "InvalidStateTransition",
        f"State transition from {source} to {target} failed for runtime. Error: State transition is not allowed",
    )


# -- Invoke API answers (what the invoker sees) -----------------------------------------------
def service_error(error_type: str, message: str) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of a Lambda API error (a refused request, not a function error), as Lambda sends them.

    The type travels in `X-Amzn-ErrorType` and the body is `{"Type": "User", "message": ...}`: boto3 raises
    a `ClientError` with that code and message.
    """
    headers = [("Content-Type", "application/json"), ("X-Amzn-ErrorType", error_type)]
    return headers, orjson.dumps({"Type": "User", "message": message})


def timed_out(request_id: str, timeout: float) -> bytes:
    return error_document(
        "Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
    )


def response_too_large(size: int) -> bytes:
    return error_document(
        "Function.ResponseSizeTooLarge",
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).",
    )


def invalid_response_mode(request_id: str) -> bytes:
    return error_document(
        "Runtime.InvalidResponseModeHeader",
        f"RequestId: {request_id} Error: invalid Lambda-Runtime-Function-Response-Mode header",
    )


def exit_reason(returncode: int) -> str:
    """Go's wording for a process exit, as RAPID prints it: `exit status 3`, `signal: killed`."""
    if returncode < 0:
        try:
            name = signal.strsignal(-returncode) or f"signal {-returncode}"
        except ValueError:
            name = f"signal {-returncode}"
        return f"signal: {name.lower()}"
    return f"exit status {returncode}"


def runtime_exit(request_id: str, returncode: int) -> bytes:
    if returncode == 0:
        message = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    else:
        message = f"RequestId: {request_id} Error: Runtime exited with error: {exit_reason(returncode)}"
    return error_document("Runtime.ExitError", message)


def invalid_entrypoint(request_id: str, reason: str) -> bytes:
    return error_document("Runtime.InvalidEntrypoint", f"RequestId: {request_id} Error: {reason}")


def sandbox_reset(request_id: str, reason: str) -> bytes:
    return error_document("Sandbox.Reset", f"RequestId: {request_id} Error: {reason}")


def error_from_trailers(error_type: str | None, encoded_body: str | None) -> bytes:
    """The error document carried by streaming trailers (base64 JSON), or one built from the type alone."""
    if encoded_body:
        try:
            return base64.b64decode(encoded_body.strip(), validate=True)
        except (binascii.Error, ValueError):
            pass
    return error_document(error_type or "Runtime.Unknown", "")


def posted_error(body: bytes, content_type: str | None, error_type: str | None) -> bytes:
    """The document an invoker sees for a runtime's `/error` post.

    The body is passed through; with the `error.cause+json` content type its `errorCause` (meant for
    X-Ray) is stripped, as RAPID does; an empty body is replaced by one built from the error-type header.
    """
    if not body.strip():
        return error_document(error_type or "Runtime.Unknown", "")
    if content_type and content_type.split(";")[0].strip().lower() == "application/vnd.aws.lambda.error.cause+json":
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return error_document(error_type or "Runtime.Unknown", "Invalid error body")
        if isinstance(document, dict):
            document.pop("errorCause", None)
            return orjson.dumps(document)
    return body


def error_message(document: bytes) -> str | None:
    """The `errorMessage` of an error document, if it is a JSON object with one."""
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None
    message = value.get("errorMessage") if isinstance(value, dict) else None
    return message if isinstance(message, str) else None
