"""`fastric.on_shutdown` and `fastric.after_response`: the registries user code fills, and the after-response runs.

`on_shutdown` hooks run on SIGTERM (`shutdown.py`). Work given to `after_response` during an invocation runs
after that invocation's response (or error) is posted and before the next `/next`: the loops test `pending`
once per invocation, a list that stays empty for everyone who never calls `after_response`. With several
invocations in flight in one process (`concurrent.py`), each poller task drains a list of its own (`own_work`).

Kept light: `fastric/__init__.py` imports it on first use of either name.
"""

from __future__ import annotations

from fastric.runtime import logs

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextvars import ContextVar
    from typing import Any, TypeVar

    Hook = TypeVar("Hook", bound=Callable[[], Any])


class Phase:
    """Where the runtime is in its life, as `on_shutdown` and `after_response` need to know: an enumeration
    (plain ints: the `enum` module costs milliseconds at start-up). `state` below is the one place it is kept;
    only `advance` moves it, forward (start-up: IMPORTING, then UNARMED; `shutdown.prepare`: ARMED)."""

    OUTSIDE = 0  # not run by fastric (a unit test calling the handler, another runtime): work runs at once
    IMPORTING = 1  # the handler's module is being imported
    UNARMED = 2  # init is over and fastric handles no SIGTERM (nothing asked for it at import)
    ARMED = 3  # init is over and fastric's SIGTERM handler runs the hooks


OUTSIDE, IMPORTING, UNARMED, ARMED = Phase.OUTSIDE, Phase.IMPORTING, Phase.UNARMED, Phase.ARMED
state = OUTSIDE


def advance(phase: int) -> None:
    """Move the runtime's life on to `phase` (never back)."""
    global state
    if phase < state:
        raise ValueError(f"lifecycle cannot go back from {state} to {phase}")
    state = phase


shutdown_hooks: list[Callable[[], Any]] = []
registers_extension = True  # False in the AWS_LAMBDA_MAX_CONCURRENCY workers after the first (workers.py)

# After-response work of the invocation in progress, as (work, args, kwargs); args is None for an awaitable.
# The one-invocation-at-a-time loops drain `pending`. Where several invocations are in flight at once, each task
# serving them takes a list of its own (`own_work`), held by a context variable, so no work runs for another.
pending: list[tuple[Any, tuple | None, dict | None]] = []
invocation_work: ContextVar[list] | None = None


def on_shutdown(hook: Hook) -> Hook:
    """Run `hook()` when Lambda shuts the execution environment down (SIGTERM); usable as a decorator.

    Plain functions run in registration order, then `async def` ones together on the event loop, all within
    Lambda's shutdown budget (about half a second); then the process exits 0. Register at import time: that is
    what makes fastric register the internal extension Lambda requires before it sends SIGTERM at all."""
    if not callable(hook):
        raise TypeError(f"on_shutdown() takes a callable, not {type(hook).__name__}")
    shutdown_hooks.append(hook)
    if state == UNARMED:
        logs.runtime_log(
            f"on_shutdown({describe(hook)}) after init: it will not run, as Lambda sends SIGTERM only to a runtime "
            "that registered for it during init (register shutdown hooks at import time)"
        )
    return hook


def after_response(work: Callable[..., Any] | Awaitable[Any], /, *args: Any, **kwargs: Any) -> None:
    """Run `work(*args, **kwargs)`, or await `work` if it is an awaitable, after the response is posted.

    It runs before the runtime asks for the next invocation, so the caller does not wait for it (Lambda bills
    it). A coroutine it returns is awaited too. An exception is logged with the request id and changes nothing
    else. Called at import time, the work runs after the first invocation; called where fastric does not run
    the function (a unit test calling the handler), it runs at once."""
    if hasattr(work, "__await__"):
        if args or kwargs:
            raise TypeError("after_response() takes arguments only with a callable, not with an awaitable")
        item: tuple[Any, tuple | None, dict | None] = (work, None, None)
    elif callable(work):
        item = (work, args, kwargs)
    else:
        raise TypeError(f"after_response() takes a callable or an awaitable, not {type(work).__name__}")
    if state == OUTSIDE:
        _run_at_once(item)
    elif invocation_work is None:
        pending.append(item)
    else:
        invocation_work.get(pending).append(item)


def own_work() -> list:
    """A list of its own for the current task (its context), which `after_response` fills from now on."""
    global invocation_work
    if invocation_work is None:
        from contextvars import ContextVar

        invocation_work = ContextVar("fastric_after_response")
    work = pending[:]  # work given at import time goes to the first task that takes a list
    pending.clear()
    invocation_work.set(work)
    return work


def run_after_response(work: list, request_id: str, run_coroutine: Callable[[Any], Any]) -> None:
    """The blocking loop, after the post: run the `work` list in order (awaitables with `run_coroutine`)."""
    while work:
        item = work.pop(0)
        try:
            result = call_work(item)
            if hasattr(result, "__await__"):
                run_coroutine(result)
        except Exception as exc:
            log_failure(f"after_response work {describe(item[0])}", exc, request_id)


async def run_after_response_async(work: list, request_id: str) -> None:
    """The asyncio loops, after the post: run the `work` list in order, awaiting awaitables on the loop."""
    while work:
        item = work.pop(0)
        try:
            result = call_work(item)
            if hasattr(result, "__await__"):
                await result
        except Exception as exc:
            log_failure(f"after_response work {describe(item[0])}", exc, request_id)


def call_work(item: tuple[Any, tuple | None, dict | None]) -> Any:
    """Call the work (an awaitable is returned as it is, to be awaited)."""
    work, args, kwargs = item
    return work if args is None else work(*args, **(kwargs or {}))


_scheduled: set = set()  # tasks of work run at once on a running loop, kept until done


def _run_at_once(item: tuple[Any, tuple | None, dict | None]) -> None:
    """Outside fastric's runtime: run the work now (an awaitable on the running loop, else with asyncio.run)."""
    what = f"after_response work {describe(item[0])}"
    try:
        result = call_work(item)
    except Exception as exc:
        log_failure(what, exc)
        return
    if not hasattr(result, "__await__"):
        return
    import asyncio

    async def awaited() -> None:
        try:
            await result
        except Exception as exc:
            log_failure(what, exc)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(awaited())
        return
    task = loop.create_task(awaited())
    _scheduled.add(task)
    task.add_done_callback(_scheduled.discard)


def describe(work: Any) -> str:
    """A short name for a hook or a piece of work, for log lines."""
    name = getattr(work, "__qualname__", None) or getattr(work, "__name__", None)
    return name if isinstance(name, str) else type(work).__name__


def log_failure(what: str, exc: BaseException, request_id: str = "") -> None:
    """Log an exception from a hook or after-response work as an error block that names it and the request."""
    from fastric.runtime.faults import describe_exception

    document, _ = describe_exception(exc, request_id)
    where = f" (request {request_id})" if request_id else ""
    document["errorMessage"] = f"{what} failed{where}: {document['errorMessage']}"
    logs.log_error(document)
