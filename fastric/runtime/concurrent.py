"""Many invocations in flight in one process, for `async def` handlers on Lambda Managed Instances.

With `AWS_LAMBDA_MAX_CONCURRENCY=N`, a process serving an `async def` handler runs M pollers (M = N, or its
share of N when `FASTRIC_WORKERS=K` splits N over K processes; see `workers.py`) on one uvloop loop. Each
poller is `aioloop`'s loop — its own keep-alive connection, `next` → handler → `post` — running as its own
asyncio Task, so the M invocations interleave at every `await` and share one copy of the function's module,
clients and caches.

Per-invocation state is per Task: the request and tenant ids on log records (`logs.use_task_local_ids`), the
context object, and `_X_AMZN_TRACE_ID`, which code such as the X-Ray SDK and OpenTelemetry's propagators read
from `os.environ` — here a task-local view of that one variable (`TaskLocalTraceId`).

Robustness, as AWS's own clients behave under concurrency: a failed `/next` is retried with backoff; a POST
that fails is logged and the poller goes on; one invocation's failure never touches the others; a handler that
blocks the loop (`time.sleep`, CPU-bound work) is reported once, since it stalls every invocation in flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time

import uvloop

from fastric.runtime import logs
from fastric.runtime.aioloop import AsyncRuntimeClient, answer
from fastric.runtime.exchange import context_of
from fastric.runtime.lifecycle import own_work, run_after_response_async
from fastric.runtime.marshal import decode_event
from fastric.runtime.steps import Stop
from fastric.runtime.streaming import for_async_loop
from fastric.runtime.wire.protocol import Invocation, Requests

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from fastric.runtime.context import LambdaContext

TRACE_ID = "_X_AMZN_TRACE_ID"
NEXT_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.6)  # seconds between attempts at a failed /next, then the worker ends
BLOCKED_LOOP_REPORT = 0.5  # seconds the loop may be held by one callback before that is reported (once)

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastric_trace_id", default=None)


class TaskLocalTraceId(os._Environ):
    """`os.environ` whose `_X_AMZN_TRACE_ID` is the current Task's invocation's trace id (the class of the one
    `os.environ` object is swapped, so every reference to it, `os.getenv` included, sees the view)."""

    def __getitem__(self, key: str) -> str:
        if key == TRACE_ID:
            value = _trace_id.get()
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: str) -> None:
        if key == TRACE_ID:
            _trace_id.set(value)
        else:
            super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if key == TRACE_ID:
            if _trace_id.get() is None:
                raise KeyError(key)
            _trace_id.set(None)
        else:
            super().__delitem__(key)


def use_task_local_trace_id() -> None:
    """Make `_X_AMZN_TRACE_ID` in `os.environ` task-local (the process-wide value is dropped)."""
    environ = os.environ
    if environ.__class__ is not TaskLocalTraceId:
        environ.pop(TRACE_ID, None)
        environ.__class__ = TaskLocalTraceId


def begin(invocation: Invocation) -> tuple[Any, LambdaContext]:
    """`steps.begin` for concurrent invocations: the ids and the trace id are set for this Task only."""
    logs.set_request(invocation.request_id, invocation.tenant_id)
    _trace_id.set(invocation.trace_id)
    context = context_of(invocation)
    return decode_event(invocation.body, invocation.content_type), context


def run(address: str, requests: Requests, handler: Callable, in_flight: int) -> int:
    """Serve up to `in_flight` invocations at once on one new uvloop loop; the exit code."""
    logs.use_task_local_ids()
    use_task_local_trace_id()
    loop = uvloop.new_event_loop()
    pollers = [AsyncRuntimeClient(loop, address, requests) for _ in range(max(1, in_flight))]
    try:
        loop.run_until_complete(serve_all(pollers, for_async_loop(handler)))
    except Stop as stop:
        return stop.code
    return 0


async def serve_all(pollers: list[AsyncRuntimeClient], handler: Callable) -> None:
    """Run every poller until one of them must stop the process (its Stop ends them all)."""
    watch_blocking(asyncio.get_running_loop())
    tasks = [asyncio.ensure_future(poll(poller, handler)) for poller in pollers]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()


async def poll(client: AsyncRuntimeClient, handler: Callable) -> None:
    """One poller: next → handler → post, for ever; each iteration in a fresh context (its own ids).

    `fastric.after_response` work goes to this poller's own list and runs after its invocation's post."""
    requests = client.requests
    work = own_work()
    while True:
        invocation = await next_with_retry(client)
        reply = await answer(requests, invocation, handler, begin)
        try:
            await client.post(reply, then_next=not work)
        except Stop:  # logged by the client; the other invocations, and this poller, go on
            pass
        if work:
            await run_after_response_async(work, invocation.request_id)


async def next_with_retry(client: AsyncRuntimeClient) -> Invocation:
    """`client.next()`, tried again after each delay of NEXT_RETRY_DELAYS; the last failure stops the process."""
    for attempt, delay in enumerate(NEXT_RETRY_DELAYS, 1):
        try:
            return await client.next()
        except Stop:
            logs.runtime_log(f"Retrying the next invocation in {delay:g} s (attempt {attempt})")
            await asyncio.sleep(delay)
    return await client.next()


def watch_blocking(loop: asyncio.AbstractEventLoop, period: float = 0.1) -> None:
    """Report, once, a callback that held the loop for more than BLOCKED_LOOP_REPORT seconds."""
    expected = [time.monotonic() + period]

    def beat() -> None:
        now = time.monotonic()
        late = now - expected[0]
        if late > BLOCKED_LOOP_REPORT:
            logs.runtime_log(
                f"The event loop was blocked for {late:.2f} s (a handler called blocking code such as time.sleep, "
                "or ran CPU-bound work): every invocation in flight in this process waited. "
                "Use await asyncio.sleep / async clients, or FASTRIC_WORKERS to spread CPU-bound work"
            )
            return  # reported once: stop watching
        expected[0] = now + period
        loop.call_later(period, beat)

    loop.call_later(period, beat)
