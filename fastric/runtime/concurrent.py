"""Many invocations in flight in one process, for `async def` handlers on Lambda Managed Instances.

With `AWS_LAMBDA_MAX_CONCURRENCY=N`, a process serving an `async def` handler runs M pollers (M = N, or its
share of N when `FASTRIC_WORKERS=K` splits N over K processes; see `workers.py`) on one uvloop loop. Each
poller is `aioloop`'s loop — its own keep-alive connection, `next` → handler → `post` — running as its own
asyncio Task, so the M invocations interleave at every `await` and share one copy of the function's module,
clients and caches.

Per-invocation state is per Task: the request and tenant ids on log records (`logs.use_task_local_ids`), the
context object, and `_X_AMZN_TRACE_ID`, which code such as the X-Ray SDK and OpenTelemetry's propagators read
from `os.environ` — here a task-local view of that one variable (`TaskLocalEnviron`), which every Python-level
read of `os.environ` agrees on (`[]`, `get`, `in`, `os.getenv`, iteration, `items()`, `copy()`, `dict(...)`).
C code calling `getenv(3)`, `os.environb` and child processes started without `env=` do not see it: the
process-wide variable is unset.

Robustness, as AWS's own clients behave under concurrency (the session's `core.POLLER` policy): a failed
`/next` is retried with backoff; a POST that fails is logged and the poller goes on; one invocation's failure
never touches the others; a handler that blocks the loop (`time.sleep`, CPU-bound work) is reported once,
since it stalls every invocation in flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time

import uvloop

from fastric.runtime import logs
from fastric.runtime.aioloop import serve
from fastric.runtime.core import POLLER, Session
from fastric.runtime.lifecycle import own_work
from fastric.runtime.wire.aioconnection import AsyncConnection

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastric.runtime.aioloop import AsyncAnswer
    from fastric.runtime.wire.protocol import Requests

TRACE_ID = "_X_AMZN_TRACE_ID"
BLOCKED_LOOP_REPORT = 0.5  # seconds the loop may be held by one callback before that is reported (once)

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastric_trace_id", default=None)


class TaskLocalEnviron(os._Environ):
    """`os.environ` whose `_X_AMZN_TRACE_ID` is the current Task's invocation's trace id (the class of the one
    `os.environ` object is swapped, so every reference to it, `os.getenv` included, sees the view). Every read
    agrees: item access, membership, iteration, `len`, `items()`, `copy()`, `dict(os.environ)`, `repr`."""

    def __getitem__(self, key: str) -> str:
        if key == TRACE_ID:
            value = _trace_id.get()
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: str) -> None:
        if key == TRACE_ID:
            if not isinstance(value, str):
                raise TypeError(f"str expected, not {type(value).__name__}")
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

    def __iter__(self) -> Iterator[str]:
        yield from super().__iter__()
        if _trace_id.get() is not None:
            yield TRACE_ID

    def __len__(self) -> int:
        return super().__len__() + (_trace_id.get() is not None)

    def __repr__(self) -> str:
        return f"environ({dict(self)!r})"


def use_task_local_environ() -> None:
    """Make `_X_AMZN_TRACE_ID` in `os.environ` task-local (the process-wide value is dropped)."""
    environ = os.environ
    if environ.__class__ is not TaskLocalEnviron:
        environ.pop(TRACE_ID, None)
        environ.__class__ = TaskLocalEnviron


def run(address: str, requests: Requests, answer: AsyncAnswer, in_flight: int) -> int:
    """Serve up to `in_flight` invocations at once on one new uvloop loop; the exit code."""
    logs.use_task_local_ids()
    use_task_local_environ()
    loop = uvloop.new_event_loop()
    connections = [AsyncConnection(loop, address) for _ in range(max(1, in_flight))]
    return loop.run_until_complete(serve_all(connections, requests, answer))


async def serve_all(connections: list[AsyncConnection], requests: Requests, answer: AsyncAnswer) -> int:
    """Run a poller on each connection until one of them ends the process; its exit code."""
    watch_blocking(asyncio.get_running_loop())
    tasks = [asyncio.ensure_future(poll(connection, requests, answer)) for connection in connections]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()


async def poll(connection: AsyncConnection, requests: Requests, answer: AsyncAnswer) -> int:
    """One poller: `aioloop.serve` with a session of its own under the `POLLER` policy, and a list of its own for
    `fastric.after_response` work (run after its invocation's post). Runs in its own Task, so its ids are its own."""
    return await serve(connection, Session(requests, policy=POLLER), answer, own_work())


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
