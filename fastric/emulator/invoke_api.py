"""The invoke endpoint, `POST /2015-03-31/functions/{name}/invocations`, as the RIE and the Lambda Invoke API serve it.

Request headers honoured: `X-Amz-Client-Context` (base64 JSON, passed decoded to the runtime),
`X-Amzn-Trace-Id`, `X-Amz-Tenant-Id`, `X-Amz-Invocation-Type` (`RequestResponse`, `Event` → 202 at once,
`DryRun` → 204) and, an emulator extension, `X-Amz-Cognito-Identity` (JSON, passed as is).
`X-Amz-Log-Type: Tail` holds the answer until the REPORT line and adds `X-Amz-Log-Result` (see tail.py).
An empty body is the event `{}`; a body that is not JSON gets 400 (as from Lambda); a body over
6 291 556 bytes gets 413 `RequestEntityTooLarge` and never reaches the function.
"""

from __future__ import annotations

import base64
import binascii
import re

import orjson

from . import documents
from .httpserver import Exchange
from .invocation import HTTPSink, Invocation, ResponseSink
from .scheduler import Scheduler
from .tail import TailSink

INVOKE_PATH = re.compile(r"/2015-03-31/functions/[^/]+/invocations")
JSON = [("Content-Type", "application/json")]


class InvokeAPI:
    """Turns invoke requests into invocations on the scheduler."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler

    async def __call__(self, exchange: Exchange) -> None:
        if not INVOKE_PATH.fullmatch(exchange.path):
            await exchange.read_body()
            return exchange.respond(
                404,
                JSON,
                documents.error_document(
                    "ResourceNotFoundException",
                    f"No route for {exchange.method} {exchange.path}; "
                    "invoke with POST /2015-03-31/functions/function/invocations",
                ),
            )
        if exchange.method != "POST":
            await exchange.read_body()
            return exchange.respond(405, JSON, documents.METHOD_NOT_ALLOWED)
        if _declared_length(exchange) > documents.MAX_PAYLOAD and exchange.expects_continue:
            return exchange.respond(413, JSON, documents.PAYLOAD_TOO_LARGE, close=True)
        body = await exchange.read_body()
        if exchange.over_limit:
            return exchange.respond(413, JSON, documents.PAYLOAD_TOO_LARGE)
        refusal = _check_request(exchange, body)
        if refusal is not None:
            return exchange.respond(400, JSON, refusal)
        invocation_type = (exchange.header("x-amz-invocation-type") or "RequestResponse").lower()
        if invocation_type == "dryrun":
            return exchange.respond(204)
        sink: ResponseSink = HTTPSink(exchange) if invocation_type != "event" else ResponseSink()
        if invocation_type != "event" and (exchange.header("x-amz-log-type") or "").lower() == "tail":
            sink = TailSink(exchange)
        invocation = Invocation(
            body if body.strip() else b"{}",
            sink,
            trace_id=exchange.header("x-amzn-trace-id"),
            client_context=_client_context(exchange),
            cognito_identity=exchange.header("x-amz-cognito-identity"),
            tenant_id=exchange.header("x-amz-tenant-id"),
        )
        if isinstance(sink, TailSink):
            invocation.tail = sink.tail
        if invocation_type == "event":
            exchange.respond(202, [("X-Amzn-RequestId", invocation.request_id)])
        else:
            exchange.on_close(invocation.abandon)
        self.scheduler.submit(invocation)


def _declared_length(exchange: Exchange) -> int:
    try:
        return int(exchange.header("content-length") or 0)
    except ValueError:
        return 0


def _client_context(exchange: Exchange) -> str | None:
    encoded = exchange.header("x-amz-client-context")
    if not encoded:
        return None
    return base64.b64decode(encoded, validate=True).decode("utf-8")


def _check_request(exchange: Exchange, body: bytes) -> bytes | None:
    """An error document if the request is not one Lambda would accept."""
    if body.strip():
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as error:
            return documents.error_document(
                "InvalidRequestContentException", f"Could not parse request body into json: {error}"
            )
    try:
        _client_context(exchange)
    except (binascii.Error, ValueError):
        return documents.error_document(
            "InvalidRequestContentException", "X-Amz-Client-Context must be a valid Base64-encoded JSON object."
        )
    return None
