"""The Runtime API exchange as the loops see it: what a `/next` answer means, what a POST's status means, when
to pipeline, and the state an invocation sets up before its event is decoded.

No JSON codec here (`steps.py` adds the event decoding and the reply encoding): start-up serves the first
invocation with these same decisions (`first.py`) before the hot path's modules are imported.
"""

from __future__ import annotations

import os
import sys

from fastric.runtime import logs
from fastric.runtime.context import LambdaContext
from fastric.runtime.wire.parser import Response
from fastric.runtime.wire.protocol import Invocation, ProtocolError, Request, outcome, parse_invocation

NEXT_FAILED = "Failed to get next invocation"


class Stop(Exception):
    """The Runtime API told the runtime to stop (or is gone): leave the loop with this exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Reply:
    """What an invocation posts: a success (`/response`) or an error (`/error`), as one buffered request.

    Streamed replies (`fastric.streaming`) are written in pieces by the loop instead; they carry the same
    `kind` for the loop's messages."""

    __slots__ = ("kind", "request")

    def __init__(self, kind: str, request: Request):
        self.kind = kind  # "success" or "error", as in the "Failed to post handler ... response" messages
        self.request = request


def next_invocation(response: Response) -> Invocation | None:
    """The invocation a `/next` response announces; None for one that cannot be answered (logged)."""
    if response.status != 200:
        logs.runtime_log(f"{NEXT_FAILED}. Http Response code: {response.status}")
        raise Stop(1)
    try:
        return parse_invocation(response.headers, response.body)
    except ProtocolError as exc:
        logs.runtime_log(str(exc))
        if b"lambda-runtime-aws-request-id" in response.headers:
            return None  # an id refused for the wire: nothing can be posted for it
        raise Stop(1) from None


def start(invocation: Invocation) -> LambdaContext:
    """Per-invocation state (log ids, `_X_AMZN_TRACE_ID`), then the invocation's context."""
    logs.set_request(invocation.request_id, invocation.tenant_id)
    if invocation.trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = invocation.trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]
    return context_of(invocation)


def context_of(invocation: Invocation) -> LambdaContext:
    """The context the handler receives for `invocation`."""
    return LambdaContext(
        invocation.request_id,
        invocation.client_context,
        invocation.cognito_identity,
        invocation.deadline_ms,
        invocation.function_arn,
        invocation.tenant_id,
    )


def check_posted(posted: Response, kind: str) -> None:
    """A refused POST is logged and the loop goes on; a 5xx stops the runtime."""
    if posted.status >= 300:
        logs.runtime_log(
            f"Failed to post handler {kind} response. Http response code: {posted.status}. "
            f"{posted.body.decode('utf-8', 'replace')}"
        )
        if outcome(posted.status) == "fatal":
            raise Stop(1)


def lost(message: str, exc: Exception) -> Stop:
    """Log why the Runtime API cannot be reached; the Stop to raise."""
    logs.runtime_log(f"{message} ({exc})")
    return Stop(1)


def next_lost(exc: Exception) -> Stop:
    return lost(f"{NEXT_FAILED}. No Response from endpoint", exc)


def post_lost(kind: str, exc: Exception) -> Stop:
    return lost(f"Failed to post handler {kind} response", exc)


# FASTRIC_PIPELINING=0 turns pipelining off, for a server that sends Date but drops pipelined requests.
PIPELINING = os.environ.get("FASTRIC_PIPELINING", "1").strip().lower() not in ("0", "off", "false", "no")
_announced = False


def pipelines(response: Response) -> bool:
    """Whether to write the next `GET /next` behind a POST in one write (HTTP/1.1 pipelining).

    Only to a full HTTP/1.1 server: one that sends the Date header RFC 9110 asks of origin servers, as Lambda's
    does; HTTP/1.1 obliges such a server to answer pipelined requests in order. A hand-rolled server without it
    gets each request only after the previous response, as awslambdaric sends them (docs/architecture.md)."""
    on = PIPELINING and b"date" in response.headers
    if not _announced:
        _announce(on, response)
    return on


def _announce(on: bool, response: Response) -> None:
    """Say once, at debug level, which mode the runtime uses."""
    global _announced
    _announced = True
    if on:
        why = "the Runtime API sends Date"
    elif not PIPELINING:
        why = "FASTRIC_PIPELINING is off"
    else:
        why = "the Runtime API sends no Date header"
    if "logging" not in sys.modules and logs.state.log_level != "DEBUG":
        return  # the root logger's level (WARNING unless AWS_LAMBDA_LOG_LEVEL says DEBUG) drops it: no import
    import logging

    logging.getLogger("fastric").debug("HTTP/1.1 pipelining %s (%s)", "on" if on else "off", why)
