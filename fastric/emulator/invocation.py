"""One invocation: what the invoker sent, where it is in its life, and where its result goes.

The result goes to a `ResponseSink`: `HTTPSink` answers the invoke endpoint's HTTP request, `StreamSink`
writes to a file (the `fastric invoke` command). Every function-side failure carries
`X-Amz-Function-Error: Unhandled`, as the Lambda Invoke API does.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from .documents import MAX_PAYLOAD, response_too_large
from .httpserver import Exchange


class State(enum.Enum):
    QUEUED = "queued"  # waiting for a slot or for the bootstrap's /next
    DISPATCHED = "dispatched"  # handed to the bootstrap by /next
    RESPONDING = "responding"  # a /response or /error post is being received
    DONE = "done"


class ResponseSink:
    """Where an invocation's result goes. This base class drops it (asynchronous `Event` invokes)."""

    request_id = ""  # set by the Invocation
    # Whether a streamed response reaches the invoker as it comes (InvokeWithResponseStream, Function URLs);
    # False: it is buffered, and a failure is answered with `complete` like any other (Invoke).
    streams_live = True

    def complete(self, status: int, content_type: str, body: bytes, function_error: bool) -> None:
        """The whole response at once."""

    def start(self, content_type: str) -> None:
        """A streamed response begins."""

    def write(self, data: bytes) -> None:
        """Part of a streamed response."""

    def end(self, error_type: str | None, error_document: bytes | None) -> None:
        """A streamed response ends, with the error its trailers carried, if any."""

    def when_writable(self, callback: Callable[[], None]) -> None:
        callback()

    @property
    def writable(self) -> bool:
        return True


class Invocation:
    """An invoke request on its way through the emulator."""

    def __init__(
        self,
        event: bytes,
        sink: ResponseSink,
        *,
        trace_id: str | None = None,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        tenant_id: str | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ):
        """`loop`: the running loop, if the caller has it at hand."""
        self.request_id = new_uuid()
        self.invocation_id = new_uuid()
        self.event = event
        self.sink = sink
        sink.request_id = self.request_id
        self.trace_id = trace_id or new_trace_id()
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.tenant_id = tenant_id
        self.state = State.QUEUED
        self.abandoned = False  # the invoker went away before the invocation started
        self.deadline_ms = 0
        self.started_at = 0.0  # monotonic, when the sandbox took it
        self.clock_started_at = 0.0  # monotonic, when its timeout started counting (the invoke phase)
        self.timers: list[asyncio.TimerHandle] = []  # the sandbox's, cancelled when it ends
        self.dispatched_at = 0.0  # monotonic, when /next handed it out
        self.finished_at = 0.0
        self.report_status: str | None = None  # REPORT's "Status:" (timeout, error)
        self.report_error_type: str | None = None
        self.function_error = False
        self.instance: Any = None  # the sandbox instance it was handed to
        self.tail: Any = None  # a LogTail when the invoker asked for the log (X-Amz-Log-Type: Tail)
        self.done: asyncio.Future = (loop or asyncio.get_running_loop()).create_future()
        self._streaming = False
        self._streamed_bytes = 0
        self._waiter: asyncio.Future | None = None  # the `wait` in progress

    @property
    def finished(self) -> bool:
        return self.state is State.DONE

    def abandon(self) -> None:
        """The invoker went away: an invocation still waiting for a slot will not run."""
        self.abandoned = True

    # -- outcomes --------------------------------------------------------------------------
    def succeed(self, content_type: str, body: bytes) -> None:
        if self._finish():
            self.sink.complete(200, content_type, body, False)

    def fail(
        self,
        document: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        report_status: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """Finish with a function error (status 200) or a platform failure (502, timeouts)."""
        if not self._finish():
            return
        self.function_error = True
        self.report_status = report_status
        self.report_error_type = error_type
        if self._streaming and self.sink.streams_live:  # headers are gone: the error travels in trailers
            self.sink.end(error_type or "Unhandled", document)
        else:
            self.sink.complete(status, content_type, document, True)

    def stream_write(self, content_type: str, data: bytes) -> None:
        """Relay part of a streamed response. The invoker's headers go out with the first bytes."""
        if self.finished or not data:
            return
        if not self._streaming:
            self._streaming = True
            self.sink.start(content_type)
        self._streamed_bytes += len(data)
        self.sink.write(data)

    def stream_end(self, content_type: str, error_type: str | None, error_document: bytes | None) -> None:
        """End a streamed response, successfully or with the error its trailers carried."""
        if error_document is not None:
            self.fail(error_document, error_type=error_type)
        elif not self._streaming:
            self.succeed(content_type, b"")
        elif self._finish():
            self.sink.end(None, None)

    def _finish(self) -> bool:
        if self.state is State.DONE:
            return False
        self.state = State.DONE
        self.finished_at = time.monotonic()
        if not self.done.done():
            self.done.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)  # at once: not through a callback of `done` (a turn of the loop)
        return True

    async def wait(self, other: asyncio.Future) -> None:
        """Until the invocation is finished or `other` is done (neither is cancelled)."""
        if self.state is State.DONE or other.done():
            return
        waiter = self._waiter = self.done.get_loop().create_future()

        def wake(_: asyncio.Future) -> None:
            if not waiter.done():
                waiter.set_result(None)

        other.add_done_callback(wake)
        try:
            await waiter
        finally:
            self._waiter = None
            other.remove_done_callback(wake)


# Ids need to be unique, not unpredictable: random bits from a generator seeded once from os.urandom, without the
# system call and the `uuid.UUID` object of each `uuid.uuid4()`.
_bits = random.Random().getrandbits
_UUID4_MASK = ((1 << 128) - 1) & ~((0xF000 << 64) | (0xC000 << 48))  # the version and variant bits cleared
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, variant RFC 4122


def new_uuid() -> str:
    """A random (version 4) UUID in its string form, as `str(uuid.uuid4())`."""
    h = (_bits(128) & _UUID4_MASK | _UUID4_SET).to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_trace_id() -> str:
    """An X-Ray trace header like the one Lambda sends when the caller sent none."""
    return f"Root=1-{int(time.time()):08x}-{_bits(96):024x};Parent={_bits(64):016x};Sampled=0"


class HTTPSink(ResponseSink):
    """Answers the invoke endpoint's HTTP exchange (`Invoke`).

    A streamed response is buffered, as Lambda buffers it for `Invoke` (up to the 6 291 556-byte limit): the
    invoker gets the whole body, or, when the stream ends with an error, `X-Amz-Function-Error: Unhandled` and
    the error document, whatever the log type. (`InvokeWithResponseStream` and Function URLs stream live.)
    """

    streams_live = False

    def __init__(self, exchange: Exchange):
        self.exchange = exchange
        self._buffer: bytearray | None = None  # a streamed response so far
        self._streamed = 0
        self._content_type = "application/octet-stream"

    def _headers(self, content_type: str, function_error: bool) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", content_type),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("X-Amzn-RequestId", self.request_id),
        ]
        if function_error:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        return headers

    def complete(self, status: int, content_type: str, body: bytes, function_error: bool) -> None:
        self.exchange.respond(status, self._headers(content_type, function_error), body)

    def start(self, content_type: str) -> None:
        self._buffer, self._content_type = bytearray(), content_type

    def write(self, data: bytes) -> None:
        self._streamed += len(data)
        if self._buffer is not None and self._streamed <= MAX_PAYLOAD:
            self._buffer += data
        else:
            self._buffer = None

    def end(self, error_type: str | None, error_document: bytes | None) -> None:
        if error_document is not None:
            self.complete(200, "application/json", error_document, True)
        elif self._buffer is None:
            self.complete(200, "application/json", response_too_large(self._streamed), True)
        else:
            self.complete(200, self._content_type, bytes(self._buffer), False)

    def when_writable(self, callback: Callable[[], None]) -> None:
        self.exchange.when_writable(callback)

    @property
    def writable(self) -> bool:
        return self.exchange.writable


class StreamSink(ResponseSink):
    """Writes the response body to a binary file as it arrives; an error document replaces it on failure.

    The file gets the body byte for byte. On a terminal (`terminal=True`) a newline follows it as soon as
    the invocation ends, before the platform's `END` line reaches the same screen through stderr.
    """

    def __init__(self, out: BinaryIO, terminal: bool = False):
        self.out = out
        self.terminal = terminal
        self.function_error = False
        self.status = 0
        self.muted = False
        self._ends_with_newline = True

    def mute(self) -> None:
        """Write nothing more (the invoke was interrupted: what follows is the emulator stopping it)."""
        self.muted = True

    def complete(self, status: int, content_type: str, body: bytes, function_error: bool) -> None:
        self.status, self.function_error = status, function_error
        self.write(body)
        self._end_line()

    def start(self, content_type: str) -> None:
        self.status = 200

    def write(self, data: bytes) -> None:
        if data and not self.muted:
            self.out.write(data)
            self.out.flush()
            self._ends_with_newline = data.endswith(b"\n")

    def end(self, error_type: str | None, error_document: bytes | None) -> None:
        if error_document is not None:
            self.function_error = True
            if not self._ends_with_newline:
                self.write(b"\n")
            self.write(error_document)
        self._end_line()

    def _end_line(self) -> None:
        if self.terminal and not self._ends_with_newline:
            self.write(b"\n")
