"""The extensions of one execution environment: external extension processes, registrations and their events.

External extensions are the executable files of the extensions directory (`/opt/extensions` on Lambda, or
`--extensions DIR`). They start before the runtime, each in its own session, with the runtime's environment
minus the variables Lambda keeps to the runtime (`_HANDLER`, `LAMBDA_TASK_ROOT`, the log group and stream
names, ...). The runtime starts once every one of them has registered (`Lambda-Extension-Name` equal to its
file name); an extension that exits first, posts `init/error`, or does not register within 10 seconds fails
the init. Any other name registering is an internal extension (a thread of the runtime process): it may
subscribe to `INVOKE` only, and only until the runtime's first `/next`, after which registration is closed.

Events: an extension's `event/next` is its "done" signal. Init ends when the runtime and every registered
extension have called next; an invocation's `INVOKE` event goes to every extension subscribed to it when the
runtime gets the invocation, and the invocation is over when the runtime and each of them have called next
again. On shutdown, the extensions subscribed to `SHUTDOWN` get it (`shutdownReason`: `spindown`, `timeout` or
`failure`; `deadlineMs`) and the time left to exit; the others, and the late, are killed (SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable

import orjson

from . import documents
from .config import FunctionConfig
from .logcapture import LineCapture
from .report import PlatformLog
from .telemetry import Telemetry

INVOKE = "INVOKE"
SHUTDOWN = "SHUTDOWN"
MAX_EXTENSIONS = 10
REGISTRATION_TIMEOUT = 10.0  # seconds the external extensions get to register (Lambda's init limit)
RUNTIME_ONLY_VARIABLES = (
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
    "_AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_PORT",
    "_HANDLER",
)
KILL_WAIT = 5.0  # seconds to wait for a killed process to be reaped
LOG_DRAIN = 0.5  # seconds to wait for an exited process's last output

LineSink = Callable[[str, float], None]
FailureSink = Callable[[str, str], None]


class Refusal(Exception):
    """An Extensions API call refused: its status and error document."""

    def __init__(self, error_type: str, message: str, status: int = 403):
        super().__init__(message)
        self.status = status
        self.document = documents.error_document(error_type, message)


def find_extensions(directory: str | None, on_skip: Callable[[str, str], None] | None = None) -> list[str]:
    """The executable regular files of `directory`, by name (none if it is None or missing); every other
    entry is skipped, as Lambda skips it, and told to `on_skip(path, reason)`."""
    if not directory or not os.path.isdir(directory):
        return []
    found = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            reason = "a directory" if os.path.isdir(path) else "not a regular file"
        elif not os.access(path, os.X_OK):
            reason = "not executable (chmod +x it to run it as an extension)"
        else:
            found.append(path)
            continue
        if on_skip is not None:
            on_skip(path, reason)
    return found


def extension_environment(runtime_environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in runtime_environment.items() if name not in RUNTIME_ONLY_VARIABLES}


class Extension:
    """One extension (external: a process we started; internal: a name registered by the runtime)."""

    def __init__(self, name: str, external: bool):
        self.id = str(uuid.uuid4())
        self.name = name
        self.external = external
        self.events: frozenset[str] = frozenset()
        self.registered = False
        self.initialized = False  # called event/next at least once
        self.busy = True  # has an event (or its init) it has not answered with event/next yet
        self.error: str | None = None  # the error type it posted to init/error or exit/error
        self.process: asyncio.subprocess.Process | None = None
        self.capture: LineCapture | None = None
        self.returncode: int | None = None
        self._pending: deque[bytes] = deque()
        self._poll: asyncio.Future | None = None

    @property
    def gone(self) -> bool:
        """Out of the protocol: it posted an error or its process exited."""
        return self.error is not None or self.returncode is not None

    @property
    def running(self) -> bool:
        return self.process is not None and self.returncode is None

    def deliver(self, event: bytes) -> None:
        self.busy = True
        if self._poll is not None and not self._poll.done():
            self._poll.set_result(event)
        else:
            self._pending.append(event)

    def take_back(self, event: bytes) -> None:
        """An event whose delivery failed (the poller went away): first in line for the next poll."""
        self._pending.appendleft(event)
        self.busy = True

    def kill(self) -> None:
        if self.running and self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Extensions:
    """The Extensions API state of one execution environment (see the module docstring)."""

    def __init__(
        self,
        config: FunctionConfig,
        log: PlatformLog,
        on_line: LineSink,
        on_failure: FailureSink,
    ):
        self.config = config
        self.log = log
        self.on_line = on_line
        self.on_failure = on_failure
        self.telemetry = Telemetry(log, multi_concurrency=config.concurrency is not None)
        self.external: dict[str, Extension] = {}  # by file name, launched or not
        self.internal: dict[str, Extension] = {}
        self.by_id: dict[str, Extension] = {}
        self.registration_open = True
        self.closing = False
        self.failure: tuple[str, str] | None = None  # (error type, message) of a failed extension init
        self._waiters: list[asyncio.Future] = []
        self._shutdown: asyncio.Task | None = None

    # -- queries -----------------------------------------------------------------------------
    @property
    def registered(self) -> list[Extension]:
        return [extension for extension in self.by_id.values() if extension.registered]

    @property
    def has_external(self) -> bool:
        return any(extension.external for extension in self.registered)

    @property
    def has_internal(self) -> bool:
        return any(not extension.external for extension in self.registered)

    @property
    def captures(self) -> list[LineCapture]:
        return [extension.capture for extension in self.external.values() if extension.capture is not None]

    def find(self, extension_id: str) -> Extension | None:
        return self.by_id.get(extension_id)

    def busy_with_invoke(self) -> list[str]:
        """Names of the extensions that have not answered the current INVOKE event with event/next yet."""
        return [e.name for e in self.registered if INVOKE in e.events and e.busy and not e.gone]

    # -- waiting -----------------------------------------------------------------------------
    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not (self.closing or condition()):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def wait_initialized(self) -> None:
        """Until every registered extension has called event/next once (or is gone)."""
        await self._until(lambda: all(e.initialized or e.gone for e in self.registered))

    async def wait_invoke_done(self) -> None:
        """Until every extension subscribed to INVOKE has answered its event with event/next (or is gone)."""
        await self._until(lambda: not self.busy_with_invoke())

    # -- launching ---------------------------------------------------------------------------
    async def launch(self, paths: Iterable[str], environment: dict[str, str], cwd: str) -> tuple[str, str] | None:
        """Start the external extensions and wait for them to register; a failure's (error type, message)."""
        paths = list(paths)
        if len(paths) > MAX_EXTENSIONS:
            return "Extension.LaunchError", f"{len(paths)} extensions: the limit is {MAX_EXTENSIONS}"
        for path in paths:
            failure = await self._start(path, environment, cwd)
            if failure is not None:
                return failure
        if not paths:
            return None
        try:
            await asyncio.wait_for(
                self._until(lambda: self.failure is not None or all(e.registered for e in self.external.values())),
                REGISTRATION_TIMEOUT,
            )
        except asyncio.TimeoutError:
            late = ", ".join(e.name for e in self.external.values() if not e.registered)
            return "Extension.InitError", f"extension(s) {late} did not register within {REGISTRATION_TIMEOUT:g} s"
        return self.failure

    async def _start(self, path: str, environment: dict[str, str], cwd: str) -> tuple[str, str] | None:
        name = os.path.basename(path)
        extension = Extension(name, external=True)
        self.external[name] = extension
        try:
            extension.process, extension.capture = await LineCapture.spawn([path], cwd, environment, self.on_line)
        except OSError as error:
            reason = f"fork/exec {path}: {(error.strerror or str(error)).lower()}"
            self.log.note(f"cannot start extension {name}: {reason}")
            return "Extension.LaunchError", reason
        self.log.note(f"extension {name} started (pid {extension.process.pid})")
        asyncio.get_running_loop().create_task(self._watch(extension))
        return None

    async def _watch(self, extension: Extension) -> None:
        assert extension.process is not None
        extension.returncode = await extension.process.wait()
        extension.kill()  # what it left behind in its session
        if not self.closing:
            reason = documents.exit_reason(extension.returncode)
            if extension.initialized:
                self.log.note(f"extension {extension.name} (pid {extension.process.pid}) exited: {reason}")
            else:
                self.fail("Extension.Crash", f"extension {extension.name} exited during init: {reason}")
        self._changed()

    def fail(self, error_type: str, message: str) -> None:
        """An extension failed the init: remember it (first one wins) and tell the sandbox."""
        if self.failure is None:
            self.failure = (error_type, message)
            self.log.note(message)
            self.on_failure(error_type, message)
        self._changed()

    # -- the API calls -----------------------------------------------------------------------
    def register(self, name: str, events: list[str]) -> Extension:
        """`POST /extension/register`; raises Refusal as RAPID refuses."""
        multi_concurrency = self.config.concurrency is not None
        extension = self.external.get(name)
        if extension is not None:
            allowed: tuple[str, ...] = (SHUTDOWN,) if multi_concurrency else (INVOKE, SHUTDOWN)
        else:  # internal: never SHUTDOWN (the runtime stops it); no INVOKE events under multi-concurrency
            allowed = () if multi_concurrency else (INVOKE,)
        for event in events:
            if event not in allowed:
                reason = (
                    "ShutdownEventNotSupportedForInternalExtension"
                    if event == SHUTDOWN and extension is None
                    else "ErrorInvalidEventType"
                )
                raise Refusal("Extension.InvalidEventType", f"{event}: {reason}")
        if extension is not None:
            if extension.registered or extension.gone:
                raise Refusal(
                    "Extension.InvalidExtensionState",
                    f"State transition from Registered to Registered failed for extension {name}. "
                    "Error: State transition is not allowed",
                )
        else:
            if not self.registration_open:
                raise Refusal("Extension.RegistrationClosed", "Extension registration closed already")
            if name in self.internal:
                raise Refusal("Extension.InvalidExtensionState", "Extension with this name already registered")
            if len(self.external) + len(self.internal) >= MAX_EXTENSIONS:
                raise Refusal("Extension.TooManyExtensions", f"Extension limit ({MAX_EXTENSIONS}) reached")
            extension = self.internal[name] = Extension(name, external=False)
        extension.events = frozenset(events)
        extension.registered = True
        self.by_id[extension.id] = extension
        kind = "external" if extension.external else "internal"
        self.log.note(f"{kind} extension {name} registered for {sorted(extension.events) or 'no events'}")
        self._changed()
        return extension

    async def next_event(self, extension: Extension) -> bytes:
        """`GET /extension/event/next`: the extension is done with its last event; wait for the next one."""
        if extension.error is not None:
            raise Refusal(
                "Extension.InvalidExtensionState",
                f"State transition from {_state(extension)} to Ready failed for extension {extension.name}. "
                "Error: State transition is not allowed",
            )
        extension.initialized = True
        if extension._pending:
            extension.busy = True
            return extension._pending.popleft()
        extension.busy = False
        self._changed()
        poll = extension._poll = asyncio.get_running_loop().create_future()
        try:
            return await poll
        finally:
            if extension._poll is poll:
                extension._poll = None

    def report_error(self, extension: Extension, error_type: str, during_init: bool) -> None:
        """`POST /extension/init/error` (during_init) or `/extension/exit/error`."""
        if extension.error is not None or (during_init and extension.initialized):
            target = "InitError" if during_init else "Exited"
            raise Refusal(
                "Extension.InvalidExtensionState",
                f"State transition from {_state(extension)} to {target} failed for extension {extension.name}. "
                "Error: State transition is not allowed",
            )
        extension.error = error_type
        if during_init:
            self.fail("Extension.InitError", f"extension {extension.name} failed to initialize: {error_type}")
        else:
            self.log.note(f"extension {extension.name} is exiting with an error: {error_type}")
        self._changed()

    # -- lifecycle events --------------------------------------------------------------------
    def close_registration(self) -> None:
        self.registration_open = False

    def release_invoke(self, request_id: str, deadline_ms: int, function_arn: str, trace_id: str) -> None:
        """Send the INVOKE event of an invocation the runtime just received."""
        if not self.by_id:  # no extension at all (every invocation passes here)
            return
        subscribers = [e for e in self.registered if INVOKE in e.events and not e.gone]
        if not subscribers:
            return
        event = orjson.dumps(
            {
                "eventType": INVOKE,
                "deadlineMs": deadline_ms,
                "requestId": request_id,
                "invokedFunctionArn": function_arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
            }
        )
        for extension in subscribers:
            extension.deliver(event)

    def shutdown(self, reason: str, budget: float) -> asyncio.Task:
        """Shut the extensions down (once; later calls get the same task): see `_shut_down`."""
        if self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_task(self._shut_down(reason, budget))
        return self._shutdown

    async def _shut_down(self, reason: str, budget: float) -> None:
        """Flush telemetry, send SHUTDOWN, wait up to `budget` seconds for the processes to exit, kill the rest."""
        deadline = time.monotonic() + budget
        self.closing = True
        self.registration_open = False
        self._changed()
        running = [extension for extension in self.external.values() if extension.running]
        if running:
            await self.telemetry.flush(min(budget / 4, deadline - time.monotonic()))
            event = orjson.dumps(
                {"eventType": SHUTDOWN, "shutdownReason": reason, "deadlineMs": int((time.time() + budget) * 1000)}
            )
            for extension in running:
                if not extension.registered or SHUTDOWN not in extension.events:
                    extension.kill()
                elif extension.error is None:
                    extension.deliver(event)
                # one that posted an error is on its way out: it gets the time, not the event
            exits = [extension.process.wait() for extension in running if extension.process is not None]
            _, late = await asyncio.wait(
                [asyncio.ensure_future(wait) for wait in exits], timeout=max(0.0, deadline - time.monotonic())
            )
            for extension in running:
                if extension.running:
                    self.log.note(f"extension {extension.name} did not exit in time: killing it")
                    extension.kill()
            if late:
                await asyncio.wait(late, timeout=KILL_WAIT)
        for capture in self.captures:
            await capture.wait_closed(LOG_DRAIN)
        self.telemetry.close()


def _state(extension: Extension) -> str:
    if extension.error is not None:
        return "InitError" if not extension.initialized else "ExitError"
    return "Ready" if extension.initialized else "Registered"
