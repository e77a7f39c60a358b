"""The Runtime API the bootstrap talks to (`/2018-06-01/runtime/...`), following RAPID's answers.

- `GET invocation/next`: waits for an invocation; 200 with the event and every `Lambda-Runtime-*` header
  (always with a Content-Type). The first `/next` of a process ends its init phase (once every extension
  has called next too); each one also tells the sandbox the runtime is done with its last invocation.
- `POST invocation/{id}/response`: 202; 400 `InvalidRequestID` for an id never handed out; 403
  `InvalidStateTransition` once the invocation has its answer; 413 `RequestEntityTooLarge` over
  6 291 556 bytes (the invoker then gets `Function.ResponseSizeTooLarge`); 400
  `InvalidFunctionResponseMode` for a response mode other than `streaming`. Streamed bodies are relayed
  to the invoker as they arrive; error trailers become a function error.
- `POST invocation/{id}/error`: 202, the posted document goes to the invoker as a function error. Under
  `--concurrency`, `Runtime.ExitError` (what fastric's parent posts for a worker that died) is a crash: 502.
- `POST init/error`: 202 during init (the invocations waiting get the document, with 502); 403 after.
A `Lambda-Runtime-Invocation-Id` echoed on a post must match the one sent on `/next` (400 otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import orjson

from . import documents
from .httpserver import Exchange, encode_headers
from .invocation import Invocation, State
from .sandbox import Instance, Sandbox

PREFIX = "/2018-06-01/runtime/"
WORKER_EXIT = "Runtime.ExitError"  # the error type a multi-concurrency runtime's parent posts for a dead worker
JSON = [("Content-Type", "application/json")]
JSON_BLOCK = encode_headers(JSON)
NEXT_ROUTE = "invocation/next"
NEXT_FIELDS = (  # a `/next` answer's fields, for the request id, deadline, ARN field, trace id and invocation id
    b"Content-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: %s\r\nLambda-Runtime-Deadline-Ms: %d\r\n"
    b"%sLambda-Runtime-Trace-Id: %s\r\nLambda-Runtime-Invocation-Id: %s\r\n"
)
INVALID_INVOCATION_ID = documents.error_document("InvalidInvocationID", "Invalid invocation ID")
RUNTIME_UNAVAILABLE = documents.error_document(
    "Runtime.Unavailable", "Container error. Non-recoverable state. Runtime should exit promptly."
)


class RuntimeAPI:
    """Routes the bootstrap's requests to the sandbox."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self._arn_block = b""  # the ARN's field, encoded once (for the ARN it was built from)
        self._arn = ""

    def _next_headers(self, invocation: Invocation) -> bytes:
        """The header fields of a `/next` answer, encoded (see `next_headers`)."""
        arn = self.sandbox.config.function_arn
        if arn != self._arn:
            self._arn, self._arn_block = arn, encode_headers([("Lambda-Runtime-Invoked-Function-Arn", arn)])
        if invocation.client_context or invocation.cognito_identity or invocation.tenant_id:
            return encode_headers(next_headers(invocation, arn))
        return NEXT_FIELDS % (
            invocation.request_id.encode("latin-1"),
            invocation.deadline_ms,
            self._arn_block,
            invocation.trace_id.encode("latin-1"),
            invocation.invocation_id.encode("latin-1"),
        )

    def __call__(self, exchange: Exchange) -> Coroutine[Any, Any, None] | None:
        """The coroutine that answers the request (this routing runs at once, not as a step of it)."""
        path = exchange.path
        if not path.startswith(PREFIX):
            return refuse(exchange, 404, documents.NOT_FOUND)
        route = path[len(PREFIX) :]
        if route == NEXT_ROUTE:
            if exchange.method != "GET":
                return refuse(exchange, 405, documents.METHOD_NOT_ALLOWED)
            return self._next_now(exchange)
        if exchange.method != "POST" and (route == "init/error" or route.startswith("invocation/")):
            return refuse(exchange, 405, documents.METHOD_NOT_ALLOWED)
        if route == "init/error":
            return self.init_error(exchange)
        parts = route.split("/")
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] == "response":
            return self._response_now(exchange, parts[1])
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] == "error":
            return self.error(exchange, parts[1])
        return refuse(exchange, 404, documents.NOT_FOUND)

    # -- /next -----------------------------------------------------------------------------
    def _next_now(self, exchange: Exchange) -> Coroutine[Any, Any, None] | None:
        """`/next` of an initialized runtime (the usual case), without a task: answered at once, or when its poll
        is resolved; any other (init, refusal) by the coroutine returned (`next`)."""
        instance = self.sandbox.current
        if instance is None or instance.initialized_at is None or instance.refuses_next:
            return self.next(exchange)
        instance.polled()
        invocation = instance.take_queued()
        if invocation is not None:
            self._hand_out(exchange, instance, invocation)
            return None
        poll = instance.add_poll_callback(partial(self._hand_out, exchange, instance))
        exchange.on_close(poll.cancel)
        return None

    def _hand_out(self, exchange: Exchange, instance: Instance, invocation: Invocation) -> None:
        if exchange.closed:  # the poller went away as it was served: give the invocation to the next one
            instance.requeue(invocation)
            return
        self.sandbox.dispatched(instance, invocation)
        exchange.respond(200, self._next_headers(invocation), invocation.event)

    async def next(self, exchange: Exchange) -> None:
        sandbox = self.sandbox
        instance = sandbox.current
        if instance is None or instance.refuses_next:
            # A process the emulator has given up on (after a timeout or an init error): tell it to exit.
            return exchange.respond(500, JSON, RUNTIME_UNAVAILABLE)
        instance.polled()
        if instance.initialized_at is None:
            init = asyncio.ensure_future(sandbox.complete_init(instance))
            exchange.on_close(canceller(init))
            try:
                await init
            except asyncio.CancelledError:
                return
            if instance.refuses_next:
                return exchange.respond(500, JSON, RUNTIME_UNAVAILABLE)
        invocation = instance.take_queued()
        if invocation is None:
            poll = instance.add_poll()
            exchange.on_close(lambda: _cancel(poll))
            try:
                invocation = await poll
            except asyncio.CancelledError:
                return
        self._hand_out(exchange, instance, invocation)

    # -- /response -------------------------------------------------------------------------
    def _response_now(self, exchange: Exchange, request_id: str) -> Coroutine[Any, Any, None] | None:
        """A whole buffered response to the invocation in flight (the usual case), taken at once; any other post
        by the coroutine returned (`response`)."""
        invocation = self.sandbox.inflight.get(request_id)
        headers = exchange.headers
        if (
            invocation is None
            or invocation.state is not State.DISPATCHED
            or headers.get("lambda-runtime-invocation-id", invocation.invocation_id)
            not in (invocation.invocation_id, "")
            or "lambda-runtime-function-response-mode" in headers
            or exchange.trailers
        ):
            return self.response(exchange, request_id)
        body = exchange.body_if_complete()
        if body is None:
            return self.response(exchange, request_id)
        invocation.state = State.RESPONDING
        invocation.succeed(headers.get("content-type") or "application/json", body)
        exchange.respond(202, JSON_BLOCK, documents.ACCEPTED)
        return None

    async def response(self, exchange: Exchange, request_id: str) -> None:
        invocation = await self._claim(exchange, request_id, "InvocationResponse")
        if invocation is None:
            return
        mode = exchange.header("lambda-runtime-function-response-mode")
        if mode is not None and mode != "streaming":
            await exchange.read_body()
            invocation.fail(documents.invalid_response_mode(request_id), error_type="Runtime.InvalidResponseModeHeader")
            return exchange.respond(400, JSON, documents.INVALID_RESPONSE_MODE)
        if mode == "streaming":
            return await self._relay_stream(exchange, invocation)
        body = exchange.body_if_complete()  # all of it is in (the usual case): no need to wait
        if body is None:
            body = await _read_limited_body(exchange, invocation)
        if body is None:
            return
        error = _trailer_error(exchange) if exchange.trailers else None
        if error is not None:
            invocation.fail(error[1], error_type=error[0])
        else:
            invocation.succeed(exchange.headers.get("content-type") or "application/json", body)
        exchange.respond(202, JSON_BLOCK, documents.ACCEPTED)

    async def _relay_stream(self, exchange: Exchange, invocation: Invocation) -> None:
        content_type = exchange.header("content-type") or "application/octet-stream"
        sink = invocation.sink

        def relay(data: bytes) -> None:
            invocation.stream_write(content_type, data)
            if not sink.writable:
                exchange.pause_reading()
                sink.when_writable(exchange.resume_reading)

        exchange.stream_body(relay)
        try:
            await exchange.read_body()
        except asyncio.CancelledError:
            _truncated(invocation)
            raise
        error = _trailer_error(exchange)
        if error is not None:
            invocation.stream_end(content_type, error[0], error[1])
        else:
            invocation.stream_end(content_type, None, None)
        exchange.respond(202, JSON, documents.ACCEPTED)

    # -- /error ----------------------------------------------------------------------------
    async def error(self, exchange: Exchange, request_id: str) -> None:
        invocation = await self._claim(exchange, request_id, "InvocationErrorResponse")
        if invocation is None:
            return
        body = await _read_limited_body(exchange, invocation)
        if body is None:
            return
        content_type = exchange.header("content-type")
        error_type = exchange.header("lambda-runtime-function-error-type")
        document = documents.posted_error(body, content_type, error_type)
        if error_type == WORKER_EXIT and self.sandbox.config.concurrency is not None:
            self.sandbox.worker_exited(invocation, document)  # posted by the runtime's parent: a crash
        else:
            invocation.fail(document, content_type=_invoker_error_content_type(content_type))
        exchange.respond(202, JSON, documents.ACCEPTED)

    # -- /init/error -----------------------------------------------------------------------
    async def init_error(self, exchange: Exchange) -> None:
        instance = self.sandbox.current
        if instance is None or not instance.may_post_init_error:
            await exchange.read_body()
            source = "Ready" if instance is not None and instance.polls_received else "InitError"
            return exchange.respond(403, JSON, documents.invalid_state_transition(source, "InitError"))
        body = await exchange.read_body()
        header_type = exchange.header("lambda-runtime-function-error-type")
        document = documents.posted_error(body, exchange.header("content-type"), header_type)
        self.sandbox.log.note(f"init error posted by pid {instance.pid}: {document.decode('utf-8', 'replace')}")
        self.sandbox.init_failed(instance, document, header_type or _error_type_of(document))
        exchange.respond(202, JSON, documents.ACCEPTED)

    # -- shared ----------------------------------------------------------------------------
    async def _claim(self, exchange: Exchange, request_id: str, target: str) -> Invocation | None:
        """The dispatched invocation this post answers, marked as being answered; else refuse the post."""
        invocation = self.sandbox.inflight.get(request_id)
        if (
            invocation is not None
            and invocation.state is State.DISPATCHED
            and exchange.headers.get("lambda-runtime-invocation-id", invocation.invocation_id)
            in (invocation.invocation_id, "")
        ):
            invocation.state = State.RESPONDING  # the usual case, decided without a step of its own
            return invocation
        invocation, seen = self.sandbox.lookup(request_id)
        if invocation is None and not seen:
            await refuse(exchange, 400, documents.INVALID_REQUEST_ID)
            return None
        if invocation is None or invocation.state is not State.DISPATCHED:
            await refuse(exchange, 403, documents.invalid_state_transition("RuntimeResponseSentState", target))
            return None
        echoed = exchange.header("lambda-runtime-invocation-id")
        if echoed and echoed != invocation.invocation_id:
            await refuse(exchange, 400, INVALID_INVOCATION_ID)
            return None
        invocation.state = State.RESPONDING
        return invocation


def next_headers(invocation: Invocation, function_arn: str) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", "application/json"),
        ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
        ("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
        ("Lambda-Runtime-Invoked-Function-Arn", function_arn),
        ("Lambda-Runtime-Trace-Id", invocation.trace_id),
        ("Lambda-Runtime-Invocation-Id", invocation.invocation_id),
    ]
    if invocation.client_context:
        headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
    if invocation.cognito_identity:
        headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
    if invocation.tenant_id:
        headers.append(("Lambda-Runtime-Aws-Tenant-Id", invocation.tenant_id))
    return headers


def canceller(future: asyncio.Future) -> Callable[[], None]:
    """A callback that cancels `future` (for `Exchange.on_close`)."""

    def cancel() -> None:
        future.cancel()

    return cancel


async def refuse(exchange: Exchange, status: int, document: bytes) -> None:
    """Answer with an error once the request body is in (drained, so the connection stays usable)."""
    try:
        await exchange.read_body()
    except asyncio.CancelledError:
        return
    exchange.respond(status, JSON, document)


def _trailer_error(exchange: Exchange) -> tuple[str, bytes] | None:
    error_type = exchange.trailers.get("lambda-runtime-function-error-type")
    encoded = exchange.trailers.get("lambda-runtime-function-error-body")
    if not error_type and not encoded:
        return None
    return error_type or "Runtime.Unknown", documents.error_from_trailers(error_type, encoded)


async def _read_limited_body(exchange: Exchange, invocation: Invocation) -> bytes | None:
    """A posted body; None (after answering 413 and failing the invocation) when it is over the payload limit."""
    try:
        body = await exchange.read_body()
    except asyncio.CancelledError:
        _truncated(invocation)
        raise
    if exchange.over_limit:
        invocation.fail(documents.response_too_large(exchange.body_size), error_type="Function.ResponseSizeTooLarge")
        exchange.respond(413, JSON, documents.PAYLOAD_TOO_LARGE)
        return None
    return body


def _truncated(invocation: Invocation) -> None:
    invocation.fail(
        documents.error_document(
            "Runtime.TruncatedResponse",
            f"RequestId: {invocation.request_id} Error: the runtime's connection closed during its response",
        ),
        error_type="Runtime.TruncatedResponse",
    )


def _invoker_error_content_type(content_type: str | None) -> str:
    if not content_type or content_type.lower().startswith("application/vnd.aws.lambda.error"):
        return "application/json"
    return content_type


def _error_type_of(document: bytes) -> str:
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError:
        return "Runtime.Unknown"
    error_type = value.get("errorType") if isinstance(value, dict) else None
    return error_type if isinstance(error_type, str) and error_type else "Runtime.Unknown"


def _cancel(future: asyncio.Future) -> None:
    future.cancel()
