"""SIGTERM at shutdown: the internal extension that makes Lambda send it, and the `on_shutdown` hooks it runs.

`prepare` runs once at init, after the handler's import and before the first `/next`, and only when the function
has `on_shutdown` hooks or a SIGTERM handler of its own (start-up checks): it registers fastric's internal
extension (`wire/extension.py`) and, for hooks, installs `Shutdown` as the SIGTERM handler.

On SIGTERM, while waiting for an invocation or in the middle of one, `Shutdown`:
1. runs the plain hooks in registration order, in the main thread (where Python runs signal handlers);
2. awaits what `async def` hooks return, together: on the running event loop when there is one (the `async def`
   handlers' loop; the invocation in flight is abandoned, as Lambda abandons it), else on the loop kept for
   coroutines of plain handlers;
3. calls the SIGTERM handler the function had installed itself, if any (its `sys.exit` code is kept);
4. exits (`os._exit`, after flushing stdout and stderr) with code 0.
All of it within `BUDGET_S`: Lambda sends SIGKILL about 500 ms after SIGTERM. A watchdog thread logs which step
overran and exits at the deadline, so that a hook stuck in a call, or a loop blocked by the invocation, is
abandoned with a log line rather than killed silently.
"""

from __future__ import annotations

import _signal
import os
import sys
import threading
import time

from fastric.runtime import lifecycle, logs

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

BUDGET_S = 0.45  # of the ~500 ms Lambda gives a runtime with an internal extension; the rest is for exiting
BUDGET_MS = round(BUDGET_S * 1000)
WATCHDOG_GRACE_S = 0.03  # the watchdog fires this much later, so that an awaited hook's timeout is reported first


def prepare(address: str) -> None:
    """At init, after the handler's import, for a function with `on_shutdown` hooks or a SIGTERM handler of its own:
    install `Shutdown` for the hooks (keeping the function's handler, to call after them) and register the internal
    extension, unless another worker registered it (`workers.py`)."""
    own = _signal.getsignal(_signal.SIGTERM)
    own = own if callable(own) else None
    if lifecycle.shutdown_hooks:
        try:
            _signal.signal(_signal.SIGTERM, Shutdown(lifecycle.shutdown_hooks, own))
            lifecycle.advance(lifecycle.Phase.ARMED)
        except ValueError as exc:  # not the main thread: Python installs signal handlers only there
            logs.runtime_log(f"on_shutdown hooks will not run: {exc}")
    if lifecycle.registers_extension:
        register_extension(address)


def register_extension(address: str) -> None:
    """Register fastric's internal extension and park it on `event/next`; one log line if Lambda refuses."""
    from fastric.runtime.wire.connection import Connection
    from fastric.runtime.wire.extension import NAME, ExtensionError, park_in_background, register

    connection = Connection(address)
    try:
        identifier = register(connection, address)
    except ExtensionError as exc:
        connection.close()
        logs.runtime_log(f"Extension {NAME} not registered, so Lambda will not send SIGTERM: {exc}")
        return
    park_in_background(connection, address, identifier)


class Shutdown:
    """The SIGTERM handler fastric installs for `on_shutdown` hooks (see the module docstring for the steps)."""

    def __init__(self, hooks: list[Callable[[], Any]], own_handler: Callable[[int, FrameType | None], Any] | None):
        self.hooks = hooks  # the registry itself: hooks registered after init run too
        self.own_handler = own_handler
        self.watchdog: Watchdog | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.watchdog is not None:  # a second SIGTERM while the first one's hooks run
            return
        watchdog = self.watchdog = Watchdog(time.monotonic() + BUDGET_S)
        awaitables = self.run_plain_hooks(watchdog)
        if awaitables:
            watchdog.step = "async on_shutdown hooks " + ", ".join(name for name, _ in awaitables)
            loop = running_loop()
            if loop is not None:  # this handler interrupted the loop: let it run the hooks, then finish
                loop.create_task(self.finish_on_loop(awaitables, watchdog, signum, frame))
                return
            from fastric.runtime.loop import run_coroutine

            run_coroutine(await_hooks(awaitables, watchdog))
        self.finish(watchdog, signum, frame)

    def run_plain_hooks(self, watchdog: Watchdog) -> list[tuple[str, Any]]:
        """Call every hook in order; what `async def` hooks returned, to await."""
        awaitables = []
        for hook in list(self.hooks):
            name = lifecycle.describe(hook)
            watchdog.step = f"on_shutdown hook {name}"
            try:
                result = hook()
            except Exception as exc:
                lifecycle.log_failure(watchdog.step, exc)
                continue
            if hasattr(result, "__await__"):
                awaitables.append((name, result))
        return awaitables

    async def finish_on_loop(
        self, awaitables: list[tuple[str, Any]], watchdog: Watchdog, signum: int, frame: FrameType | None
    ) -> None:
        await await_hooks(awaitables, watchdog)
        self.finish(watchdog, signum, frame)

    def finish(self, watchdog: Watchdog, signum: int, frame: FrameType | None) -> None:
        """Call the function's own SIGTERM handler, if any, then exit."""
        code = 0
        if self.own_handler is not None:
            watchdog.step = "the function's own SIGTERM handler"
            try:
                self.own_handler(signum, frame)
            except SystemExit as exc:
                code = exit_status(exc)
            except Exception as exc:
                lifecycle.log_failure(watchdog.step, exc)
        flush_output()
        os._exit(code)


async def await_hooks(awaitables: list[tuple[str, Any]], watchdog: Watchdog) -> None:
    """Await the hooks' awaitables together until the deadline; failures and overruns are logged."""
    import asyncio

    tasks = {asyncio.ensure_future(awaitable): name for name, awaitable in awaitables}
    done, late = await asyncio.wait(tasks, timeout=max(0.0, watchdog.deadline - time.monotonic()))
    for task in done:
        exc = task.exception()
        if exc is not None:
            lifecycle.log_failure(f"on_shutdown hook {tasks[task]}", exc)
    for task in late:
        logs.runtime_log(f"on_shutdown hook {tasks[task]} did not finish within {BUDGET_MS} ms: abandoned")


def running_loop() -> Any:
    """The event loop running in this thread, if any (asyncio is not imported to find out)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio._get_running_loop() if asyncio is not None else None


class Watchdog:
    """A daemon thread that exits the process at `deadline` unless it exited before, naming the step that overran."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.step = "on_shutdown hooks"
        thread = threading.Thread(target=self._watch, name="fastric-shutdown-watchdog", daemon=True)
        thread.start()

    def _watch(self) -> None:
        time.sleep(max(0.0, self.deadline + WATCHDOG_GRACE_S - time.monotonic()))
        logs.runtime_log(f"{self.step} did not finish within {BUDGET_MS} ms of SIGTERM: abandoned, exiting")
        os._exit(0)


def flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed stream, or one the interrupted main thread was writing to
            pass


def exit_status(exc: SystemExit) -> int:
    """The process exit status `sys.exit(code)` asks for (None is 0; a message is 1)."""
    code = exc.code
    if isinstance(code, int):
        return code
    return 0 if code is None else 1
