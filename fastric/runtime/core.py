"""The invocation core every path shares, sans I/O: the Runtime API session and the answer to an invocation.

Every driver — the blocking loop (`loop.py`), the uvloop loop (`aioloop.py`), the Managed Instances pollers
(`concurrent.py`), forked workers (`workers.py`), the first invocation — moves bytes and calls the handler; what
they decide is decided here, once:

- `Session`: which `GET /next` is outstanding, the pipelining rule, `/next` response → invocation, what a failed
  `/next` or POST means (stop, retry after a delay, or go on: the session's `Policy`).
- `make_answer` / `make_async_answer`: begin (log ids, `_X_AMZN_TRACE_ID`, context, decoded event), call the
  handler, build the reply (`/response`, a streamed one, or `/error`). The JSON codec is a parameter: the standard
  library's (`plainjson.FIRST`) for a plain `def` handler's first invocation, orjson's (`marshal.HOT`) after;
  nothing else differs between them.

A decision that ends the process raises `Exit`, which only a driver's `serve` catches, to return its code.
Nothing here imports a JSON codec, a socket or an event loop: the first invocation runs it before the hot path
is imported.
"""

from __future__ import annotations

import os
import sys
from types import CoroutineType

from fastric.runtime import logs
from fastric.runtime.context import LambdaContext
from fastric.runtime.faults import describe_exception, dump_document
from fastric.runtime.streaming import Stream, streamed_reply
from fastric.runtime.wire.protocol import Invocation, ProtocolError, Request, outcome, parse_invocation

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from fastric.runtime.streaming import StreamedReply
    from fastric.runtime.wire.parser import Response
    from fastric.runtime.wire.protocol import Requests

NEXT_FAILED = "Failed to get next invocation"

# `os.environ` on POSIX: a str view over a mapping of bytes (`_data`) kept in step with the C environment.
_PLAIN_ENVIRON = os._Environ if os.name == "posix" and hasattr(os.environ, "_data") else None
_TRACE_KEY = b"_X_AMZN_TRACE_ID"
_FS_ENCODING = sys.getfilesystemencoding()
_putenv, _unsetenv = os.putenv, os.unsetenv


class Exit(Exception):
    """The Runtime API ended the process (or is gone): the driver's `serve` returns this exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Reply:
    """What an invocation posts as one buffered request: a success (`/response`) or an error (`/error`).

    `kind` names it in the "Failed to post handler ... response" messages; a `StreamedReply` carries one too."""

    __slots__ = ("kind", "request")

    def __init__(self, kind: str, request: Request):
        self.kind = kind  # "success" or "error"
        self.request = request


class Codec:
    """How events are decoded and results encoded: `decode(body, content_type)` and `encode(result)` →
    `(body, content_type)`, each raising `FaultError` as the hot path does. One per path: `plainjson.FIRST`
    (standard library, deferring to the hot path for anything it cannot give exactly so) and `marshal.HOT`."""

    __slots__ = ("decode", "encode")

    def __init__(self, decode: Callable[[Any, str | None], Any], encode: Callable[[Any], tuple[bytes, bytes]]):
        self.decode = decode
        self.encode = encode


class Policy:
    """What a session does when the Runtime API fails it. The default is awslambdaric's: any failure ends the
    process. Managed Instances pollers retry a failed `/next` after each of `retry_delays` and go on after a
    failed POST (`POLLER`)."""

    __slots__ = ("retry_delays", "post_failure_ends")

    def __init__(self, retry_delays: tuple[float, ...] = (), post_failure_ends: bool = True):
        self.retry_delays = retry_delays
        self.post_failure_ends = post_failure_ends


ONE_AT_A_TIME = Policy()
POLLER = Policy(retry_delays=(0.1, 0.2, 0.4, 0.8, 1.6), post_failure_ends=False)


# FASTRIC_PIPELINING=0 turns pipelining off, for a server that sends Date but drops pipelined requests.
PIPELINING = os.environ.get("FASTRIC_PIPELINING", "1").strip().lower() not in ("0", "off", "false", "no")


class Session:
    """One connection's Runtime API exchange, sans I/O. A driver asks it what to send and tells it what came back.

    The pipelining rule: a POST carries the following `GET /next` behind it in the same write only to a full
    HTTP/1.1 server — one that sends the Date header RFC 9110 asks of origin servers, as Lambda's does; HTTP/1.1
    obliges such a server to answer pipelined requests in order. Other servers get each request after the
    previous response, as awslambdaric sends them (docs/architecture.md, "Pipelining rule")."""

    __slots__ = ("requests", "next_sent", "pipelining", "pause", "policy", "_failures")

    def __init__(self, requests: Requests, next_sent: bool = False, policy: Policy = ONE_AT_A_TIME):
        self.requests = requests
        self.next_sent = next_sent  # a GET /next is on the wire and its response not read yet
        self.pipelining = False  # the last /next was answered by a full HTTP/1.1 server
        self.pause = 0.0  # seconds to wait before asking for /next again (after a failure a policy retries)
        self.policy = policy
        self._failures = 0  # /next failures in a row

    # -- GET /next --

    def next_answered(self, response: Response) -> Invocation | None:
        """The invocation a `/next` response announces; None: ask again (after `pause` seconds). Raises Exit."""
        self.next_sent = False
        if response.status != 200:
            self._next_failed(f"{NEXT_FAILED}. Http Response code: {response.status}")
            return None
        self.pipelining = PIPELINING and b"date" in response.headers
        if logs.DEBUG:
            _announce(self.pipelining, response)
        if self._failures:
            self._failures = 0
            self.pause = 0.0
        try:
            return parse_invocation(response.headers, response.body)
        except ProtocolError as exc:
            if b"lambda-runtime-aws-request-id" not in response.headers:
                self._next_failed(str(exc))
            else:
                logs.runtime_log(str(exc))  # an id refused for the wire: nothing can be posted for it; ask again
            return None

    def next_lost(self, exc: Exception) -> None:
        """The `/next` response could not be read (`ConnectionLost`, `MalformedResponse`): ask again after
        `pause` seconds, or Exit."""
        self.next_sent = False
        self._next_failed(f"{NEXT_FAILED}. No Response from endpoint ({exc})")

    def _next_failed(self, message: str) -> None:
        logs.runtime_log(message)
        delays = self.policy.retry_delays
        if self._failures >= len(delays):
            raise Exit(1)
        self.pause = delays[self._failures]
        self._failures += 1
        logs.runtime_log(f"Retrying the next invocation in {self.pause:g} s (attempt {self._failures})")

    # -- POST /response, /error --

    def then(self, then_next: bool = True) -> Request | None:
        """What to write behind a POST: the next `GET /next` when pipelining (and `then_next`), else None."""
        return self.requests.next if then_next and self.pipelining else None

    def posted(self, response: Response, kind: str, then: Request | None) -> None:
        """A POST's response (with `then` written behind it): a refused POST is logged and the loop goes on; a
        5xx ends the process (unless the policy goes on)."""
        self.next_sent = then is not None
        if response.status >= 300:
            logs.runtime_log(
                f"Failed to post handler {kind} response. Http response code: {response.status}. "
                f"{response.body.decode('utf-8', 'replace')}"
            )
            if outcome(response.status) == "fatal" and self.policy.post_failure_ends:
                raise Exit(1)

    def post_lost(self, kind: str, exc: Exception) -> None:
        """The POST could not be written or its response read: Exit (unless the policy goes on)."""
        self.next_sent = False
        logs.runtime_log(f"Failed to post handler {kind} response ({exc})")
        if self.policy.post_failure_ends:
            raise Exit(1)


_announced = False


def _announce(on: bool, response: Response) -> None:
    """FASTRIC_DEBUG: say once which pipelining mode the runtime uses, and why."""
    global _announced
    if _announced:
        return
    _announced = True
    if on:
        why = "the Runtime API sends Date"
    elif not PIPELINING:
        why = "FASTRIC_PIPELINING is off"
    else:
        why = "the Runtime API sends no Date header"
    logs.runtime_debug(f"HTTP/1.1 pipelining {'on' if on else 'off'} ({why})")


# -- answering an invocation ------------------------------------------------------------------------------------


def begin(invocation: Invocation) -> LambdaContext:
    """Per-invocation state (log ids, `_X_AMZN_TRACE_ID`), then the invocation's context.

    Under Managed Instances both are the current Task's (`logs.use_task_local_ids`, `concurrent.TaskLocalEnviron`)."""
    logs.set_request(invocation.request_id, invocation.tenant_id)
    trace_id = invocation.trace_id
    environ = os.environ
    if environ.__class__ is _PLAIN_ENVIRON:  # what `os.environ[...] = ...` does, without its Python-level steps
        if trace_id is not None:
            value = trace_id.encode(_FS_ENCODING, "surrogateescape")
            _putenv(_TRACE_KEY, value)
            environ._data[_TRACE_KEY] = value  # type: ignore[attr-defined]
        elif _TRACE_KEY in environ._data:  # type: ignore[attr-defined]
            _unsetenv(_TRACE_KEY)
            del environ._data[_TRACE_KEY]  # type: ignore[attr-defined]
    elif trace_id is not None:  # Managed Instances' task-local view, or another mapping a function installed
        environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in environ:
        del environ["_X_AMZN_TRACE_ID"]
    return LambdaContext(
        invocation.request_id,
        invocation.client_context,
        invocation.cognito_identity,
        invocation.deadline_ms,
        invocation.function_arn,
        invocation.tenant_id,
    )


def make_answer(
    requests: Requests, handler: Callable, codec: Codec, run_coroutine: Callable[[Any], Any]
) -> Callable[[Invocation], Reply | StreamedReply]:
    """`answer(invocation)` for a plain `def` handler: begin, call, and its result or its error as the reply.

    A coroutine the handler returns runs on `run_coroutine`'s loop."""
    decode, encode = codec.decode, codec.encode

    def answer(invocation: Invocation) -> Reply | StreamedReply:
        try:
            context = begin(invocation)
            body, invocation.body = invocation.body, b""  # a large event's memory goes once it is decoded
            event = decode(body, invocation.content_type)
            del body
            result = handler(event, context)
            if result.__class__ is CoroutineType:
                result = run_coroutine(result)
            return result_reply(requests, invocation, result, encode)
        except Exception as exc:
            return error_reply(requests, invocation, exc)

    return answer


def make_async_answer(
    requests: Requests, handler: Callable[..., Awaitable], codec: Codec
) -> Callable[[Invocation], Awaitable[Reply | StreamedReply]]:
    """`answer(invocation)` for an `async def` handler: the same steps as `make_answer`'s, the handler awaited."""
    decode, encode = codec.decode, codec.encode

    async def answer(invocation: Invocation) -> Reply | StreamedReply:
        try:
            context = begin(invocation)
            body, invocation.body = invocation.body, b""
            event = decode(body, invocation.content_type)
            del body
            result = await handler(event, context)
            return result_reply(requests, invocation, result, encode)
        except Exception as exc:
            return error_reply(requests, invocation, exc)

    return answer


def result_reply(
    requests: Requests, invocation: Invocation, result: Any, encode: Callable[[Any], tuple[bytes, bytes]]
) -> Reply | StreamedReply:
    """`POST /response` for a handler's result (FaultError if it cannot be encoded), or the streamed reply for a
    streaming handler's `Stream`."""
    if result.__class__ is Stream:
        return streamed_reply(requests, invocation, result)
    body, content_type = encode(result)
    return Reply("success", requests.response(invocation.request_id, body, content_type, invocation.invocation_id))


def error_reply(requests: Requests, invocation: Invocation, exc: BaseException) -> Reply:
    """Log the error document for `exc`, then `POST /error` with it (the hot path's code, on every path)."""
    document, xray_cause = describe_exception(exc, invocation.request_id)
    logs.log_error(document)
    body = dump_document(document)
    return Reply("error", requests.error(invocation.request_id, body, xray_cause, invocation.invocation_id))
