"""The invoke endpoints, as the RIE and the Lambda Invoke API serve them.

- `POST /2015-03-31/functions/{name}/invocations` (`Invoke`): the response body as the function gave it.
- `POST /2021-11-15/functions/{name}/response-streaming-invocations` (`InvokeWithResponseStream`): the
  response as an AWS event stream (`response_stream.py`), relayed as the function streams it.

Request headers honoured: `X-Amz-Client-Context` (base64 of a JSON object; passed to the runtime as one
line of ASCII JSON), `X-Amzn-Trace-Id`, `X-Amz-Tenant-Id`, `X-Amz-Invocation-Type` (`RequestResponse`,
`Event` → 202 at once (Invoke only), `DryRun` → 204) and, an emulator extension, `X-Amz-Cognito-Identity`
(JSON, passed as is). `X-Amz-Log-Type: Tail` (Invoke) holds the answer until the REPORT line and adds
`X-Amz-Log-Result` (see tail.py). An empty body is the event `{}`. Refusals are Lambda API errors (`X-Amzn-ErrorType`
and `{"Type": "User", "message": ...}`, which boto3 raises as `ClientError`): a body that is not JSON or a
client context that is not base64 JSON gets 400 `InvalidRequestContentException`; a body over
6 291 556 bytes gets 413 `RequestEntityTooLarge` and never reaches the function.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Coroutine
from typing import Any

import orjson

from . import documents
from .httpserver import Exchange
from .invocation import HTTPSink, Invocation, ResponseSink
from .response_stream import EventStreamSink
from .scheduler import Scheduler
from .tail import TailSink

INVOKE_PATH = re.compile(r"/2015-03-31/functions/[^/]+/invocations")
STREAM_INVOKE_PATH = re.compile(r"/2021-11-15/functions/[^/]+/response-streaming-invocations")
RIE_INVOKE_PATH = "/2015-03-31/functions/function/invocations"  # the RIE's, what most invokers send
JSON = [("Content-Type", "application/json")]


class Refused(Exception):
    """A request Lambda would refuse: the API error type and message."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class InvokeAPI:
    """Turns invoke requests into invocations on the scheduler."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler

    def __call__(self, exchange: Exchange) -> Coroutine[Any, Any, None] | None:
        """An `Invoke` of the RIE's path whose body is all in (the usual request) is taken at once; any other
        request by the coroutine returned."""
        if exchange.path == RIE_INVOKE_PATH and exchange.method == "POST":
            body = exchange.body_if_complete()
            if body is not None:
                self._invoke(exchange, body, streaming=False)
                return None
        return self._handle(exchange)

    async def _handle(self, exchange: Exchange) -> None:
        path = exchange.path
        streaming = path != RIE_INVOKE_PATH and STREAM_INVOKE_PATH.fullmatch(path) is not None
        if not streaming and path != RIE_INVOKE_PATH and not INVOKE_PATH.fullmatch(path):
            await exchange.read_body()
            return _refuse(
                exchange,
                404,
                Refused(
                    "ResourceNotFoundException",
                    f"No route for {exchange.method} {exchange.path}; invoke with POST "
                    "/2015-03-31/functions/function/invocations or "
                    "/2021-11-15/functions/function/response-streaming-invocations",
                ),
            )
        if exchange.method != "POST":
            await exchange.read_body()
            return exchange.respond(405, JSON + [("Allow", "POST")], documents.METHOD_NOT_ALLOWED)
        if _declared_length(exchange) > documents.MAX_PAYLOAD and exchange.expects_continue:
            return exchange.respond(413, JSON, documents.PAYLOAD_TOO_LARGE, close=True)
        body = exchange.body_if_complete()  # all of it is in (the usual case): no need to wait
        if body is None:
            body = await exchange.read_body()
        if exchange.over_limit:
            return exchange.respond(413, JSON, documents.PAYLOAD_TOO_LARGE)
        self._invoke(exchange, body, streaming)

    def _invoke(self, exchange: Exchange, body: bytes, streaming: bool) -> None:
        """A whole invoke request within the limits: refuse it, or hand its invocation to the scheduler."""
        headers = exchange.headers
        invocation_type = (headers.get("x-amz-invocation-type") or "RequestResponse").lower()
        try:
            _check_event(body)
            client_context = compact_client_context(headers.get("x-amz-client-context"))
            if streaming and invocation_type == "event":
                raise Refused(
                    "InvalidParameterValueException", "InvokeWithResponseStream does not take InvocationType Event"
                )
        except Refused as refusal:
            return _refuse(exchange, 400, refusal)
        if invocation_type == "dryrun":
            return exchange.respond(204)
        sink: ResponseSink
        if invocation_type == "event":
            sink = ResponseSink()
        elif streaming:
            sink = EventStreamSink(exchange)
        elif (headers.get("x-amz-log-type") or "").lower() == "tail":
            sink = TailSink(exchange)
        else:
            sink = HTTPSink(exchange)
        invocation = Invocation(
            body if body.strip() else b"{}",
            sink,
            trace_id=headers.get("x-amzn-trace-id"),
            client_context=client_context,
            cognito_identity=headers.get("x-amz-cognito-identity"),
            tenant_id=headers.get("x-amz-tenant-id"),
            loop=exchange.loop,
        )
        if isinstance(sink, TailSink):
            invocation.tail = sink.tail
        if invocation_type == "event":
            exchange.respond(202, [("X-Amzn-RequestId", invocation.request_id)])
        else:
            exchange.on_close(invocation.abandon)
        self.scheduler.submit(invocation)


def _refuse(exchange: Exchange, status: int, refusal: Refused) -> None:
    headers, body = documents.service_error(refusal.error_type, refusal.message)
    exchange.respond(status, headers, body)


def _declared_length(exchange: Exchange) -> int:
    try:
        return int(exchange.header("content-length") or 0)
    except ValueError:
        return 0


def _check_event(body: bytes) -> None:
    if body.strip():
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise Refused("InvalidRequestContentException", f"Could not parse request body into json: {error}")


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def compact_client_context(encoded: str | None) -> str | None:
    """The client context for the runtime's `Lambda-Runtime-Client-Context` header, or None if none was sent.

    The invoker sends base64 of a JSON object, laid out as it likes (boto3 passes it through as given, often
    pretty-printed); the runtime gets the same object as one line of ASCII JSON, safe in an HTTP header.
    Raises `Refused` for anything else.
    """
    if not encoded:
        return None
    try:
        value = json.loads(base64.b64decode(encoded, validate=True), parse_constant=_no_constants)
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        value = None
    if not isinstance(value, dict):
        raise Refused("InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
