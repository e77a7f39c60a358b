"""The execution environment: the bootstrap process, its lifecycle, and invocations handed to it.

An `Instance` is one bootstrap process from spawn to exit, with the Runtime API state that belongs to it
(waiting `/next` polls, invocations queued for it, invocations in flight). The `Sandbox` owns the current
instance: it spawns one (eagerly at start-up, then lazily after a reset), hands it invocations, applies
the timeout, and reports what happened when an instance dies:

- exit before the first `/next` (init failure): the invocations waiting for it get 502 with the posted
  `/init/error` document, or `Runtime.ExitError`; with nobody waiting (the eager start), the failure is
  kept and given to the next invocation, which is what the RIE does for a lazy start;
- exit after init: invocations in flight get 502 `Runtime.ExitError`; queued ones move to a fresh
  instance;
- timeout: the invocation gets `Sandbox.Timedout`, the process group is killed, the next invocation
  starts a fresh instance; under `--concurrency` (Managed Instances' independent timeouts) only the
  invocation is failed, and the environment and the other invocations in flight go on.

The function timeout covers the invoke phase, as on Lambda: it starts when `/next` hands the invocation
out. Init has its own limit (`--init-timeout`, Lambda's 10 s for on-demand functions): an instance's first
init counts against no invocation unless it runs past that limit, and then the rest of it counts against
the invocation waiting for it (Lambda would re-run it inside the invoke). An instance started lazily after a
crash, timeout or init failure is a "suppressed init": it runs inside the invoke, so the timeout covers it.

With extensions (see `extensions.py`), an instance is a whole execution environment: the external
extensions start first, init ends when the runtime and every extension have called next, and (one
invocation at a time, with an extension registered) an invocation ends, with its REPORT line, when the
runtime has called `/next` again and every extension has answered its INVOKE event, within the function
timeout; without extensions, it ends with the runtime's response, as in the RIE. Stopping an environment
(emulator shutdown, or a reset after a timeout or crash): with no extension registered the runtime is
killed (SIGKILL), as on Lambda; with one, it gets SIGTERM and 500 ms (300 ms if there are external
extensions but no internal one), then SIGKILL; then the external extensions get SHUTDOWN and the rest of
2 seconds. The runtime's and extensions' output is captured (`logcapture.py`), copied to stderr, and fed to
the Telemetry API and the invocation's log tail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from . import documents
from .config import FunctionConfig
from .extensions import Extensions, extension_environment, find_extensions
from .importprofile import ImportTimes
from .invocation import Invocation, State
from .lifecycle import Lifecycle, Phase
from .logcapture import LineCapture
from .report import MemoryProbe, PlatformLog, kb_to_mb
from .reporting import Reporter

FINISHED_IDS_KEPT = 4096
INIT_ERROR_GRACE = 2.0  # seconds a runtime gets to exit by itself after posting /init/error
SHUTDOWN_LIMIT = 2.0  # seconds for the runtime and external extensions to stop, once SIGTERM is sent
RUNTIME_SHUTDOWN_INTERNAL = 0.5  # the runtime's share with an internal extension registered
RUNTIME_SHUTDOWN_EXTERNAL = 0.3  # the runtime's share with external extensions only
KILL_WAIT = 5.0  # seconds to wait for a killed process to be reaped
LOG_DRAIN = 0.5  # seconds to wait for an exited process's last output


async def first_of(one: asyncio.Future, other: asyncio.Future) -> None:
    """Until either future is done (neither is cancelled): `asyncio.wait(..., FIRST_COMPLETED)` without its
    set, task wrapping and result sets."""
    if one.done() or other.done():
        return
    waiter = one.get_loop().create_future()

    def wake(_: asyncio.Future) -> None:
        if not waiter.done():
            waiter.set_result(None)

    one.add_done_callback(wake)
    other.add_done_callback(wake)
    try:
        await waiter
    finally:
        one.remove_done_callback(wake)
        other.remove_done_callback(wake)


class Poll:
    """A `/next` waiting for an invocation, answered by calling `hand_out` with it at once: as a future would be,
    without the turn of the event loop its callbacks take."""

    __slots__ = ("hand_out", "_done")

    def __init__(self, hand_out: Callable[[Invocation], None]):
        self.hand_out = hand_out
        self._done = False

    def done(self) -> bool:
        return self._done

    def cancel(self) -> bool:
        if self._done:
            return False
        self._done = True
        return True

    def set_result(self, invocation: Invocation) -> None:
        self._done = True
        try:
            self.hand_out(invocation)
        except Exception as error:  # as an error in a future's callback: logged, the submitter goes on
            asyncio.get_running_loop().call_exception_handler(
                {"message": "error answering a /next poll", "exception": error}
            )


class Failure:
    """A platform failure to report to an invocation (502 and an error document)."""

    def __init__(self, error_type: str, build: Callable[[str], bytes], status: int = 502):
        self.error_type = error_type
        self.build = build
        self.status = status

    def apply(self, invocation: Invocation) -> None:
        invocation.fail(
            self.build(invocation.request_id), status=self.status, report_status="error", error_type=self.error_type
        )


class Instance:
    """One bootstrap process, its extensions, and its share of the Runtime API state."""

    def __init__(self, process: asyncio.subprocess.Process, extensions: Extensions, capture: LineCapture):
        loop = self.loop = asyncio.get_running_loop()
        self.process = process
        self.extensions = extensions
        self.telemetry = extensions.telemetry
        self.capture = capture
        self.pid = process.pid
        self.spawned_at = time.monotonic()
        self.initialized_at: float | None = None
        self.init_error: bytes | None = None
        self.init_error_type = "Runtime.Unknown"
        self.lifecycle = Lifecycle()  # its phase: see lifecycle.py
        self.returncode: int | None = None
        self.exited: asyncio.Future = loop.create_future()
        self.polls: deque[asyncio.Future | Poll] = deque()  # `/next` calls waiting, oldest first
        self.queued: deque[Invocation] = deque()
        self.inflight: dict[str, Invocation] = {}
        self.init_reported = False
        self.suppressed_init = False  # started for a waiting invocation: its init counts against that invoke
        self.peak_kb = 0
        self.memory = MemoryProbe(process.pid)
        self.reset_reason = "failure"  # the SHUTDOWN reason if the environment stops without the emulator stopping
        self.stopping: asyncio.Task | None = None
        self.stopped: asyncio.Future = loop.create_future()  # the process and its extensions are all gone
        self.polls_received = 0  # /next calls so far: the runtime's "done" signal
        self.next_marks: dict[str, int] = {}  # request id -> polls_received when it was dispatched
        self._poll_waiters: list[asyncio.Future] = []
        self.import_times: ImportTimes | None = None  # --import-profile: the bootstrap's import timing

    @property
    def alive(self) -> bool:
        return self.returncode is None

    @property
    def phase(self) -> Phase:
        return self.lifecycle.phase

    @property
    def takes_work(self) -> bool:
        """Whether new invocations may be handed to it."""
        return self.alive and self.lifecycle.takes_work

    @property
    def refuses_next(self) -> bool:
        """Whether a `/next` from its runtime is answered 500 (told to exit)."""
        return not self.alive or self.lifecycle.refuses_next

    @property
    def may_post_init_error(self) -> bool:
        return not self.polls_received and self.init_error is None

    def requeue(self, invocation: Invocation) -> None:
        """An invocation a poller went away with: first in line for the next `/next`."""
        self.queued.appendleft(invocation)

    def submit(self, invocation: Invocation) -> None:
        while self.polls:
            poll = self.polls.popleft()
            if not poll.done():
                poll.set_result(invocation)
                return
        self.queued.append(invocation)

    def take_queued(self) -> Invocation | None:
        while self.queued:
            invocation = self.queued.popleft()
            if not invocation.finished:
                return invocation
        return None

    def add_poll(self) -> asyncio.Future:
        """A future that the next submitted invocation resolves."""
        poll = self.loop.create_future()
        self.polls.append(poll)
        return poll

    def add_poll_callback(self, hand_out: Callable[[Invocation], None]) -> Poll:
        """A poll that the next submitted invocation is handed to, by a call of `hand_out`."""
        poll = Poll(hand_out)
        self.polls.append(poll)
        return poll

    def polled(self) -> None:
        """The runtime called /next."""
        self.polls_received += 1
        waiters, self._poll_waiters = self._poll_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_polled_after(self, mark: int) -> None:
        """Until the runtime has called /next more than `mark` times, or has exited."""
        while self.polls_received <= mark and self.alive:
            waiter = asyncio.get_running_loop().create_future()
            self._poll_waiters.append(waiter)
            await first_of(waiter, self.exited)

    def drain_logs(self, flush_partial: bool) -> None:
        """Take in the output the runtime and extensions have written so far (with `flush_partial`, a partial
        line as a line: one invocation at a time, the invocation's output is over)."""
        self.capture.drain(flush_partial)
        for capture in self.extensions.captures:
            capture.drain(flush_partial)

    def signal(self, signum: int) -> None:
        if self.alive:
            try:
                os.killpg(self.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def measure_memory(self) -> int:
        if self.alive:
            self.peak_kb = max(self.peak_kb, self.memory.peak_kb())
        return kb_to_mb(self.peak_kb)


class Sandbox:
    """Runs invocations on a bootstrap process, re-creating it after crashes and timeouts."""

    def __init__(self, config: FunctionConfig, log: PlatformLog):
        self.config = config
        self.log = log
        self.runtime_api = ""  # host:port of the Runtime API, set before the first spawn
        self.current: Instance | None = None
        self.pending_failure: Failure | None = None
        self.inflight: dict[str, Invocation] = {}
        self.finished_ids: OrderedDict[str, None] = OrderedDict()
        self.environments: list[Extensions] = []  # the extensions of environments not fully stopped, newest last
        self._running: dict[str, Invocation] = {}  # between their START and REPORT lines
        self._spawn_lock = asyncio.Lock()
        self._closing = False
        self.reporter = Reporter(config, log, self.initialization_type)
        self._skipped: set[tuple[str, str]] = set()  # extension files already said to be skipped

    @property
    def initialization_type(self) -> str:
        return "on-demand" if self.config.concurrency is None else "lambda-managed-instances"

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Spawn the bootstrap eagerly; a failure to start is kept for the first invocation."""
        async with self._spawn_lock:
            failure = await self._spawn()
            if failure is not None:
                self.pending_failure = failure

    async def close(self) -> None:
        """Stop the bootstrap and its extensions (see the module docstring)."""
        self._closing = True
        if self.current is not None:
            self.current.lifecycle.enter_if_allowed(Phase.RESETTING)
            await self._stop(self.current, "spindown")
        for environment in list(self.environments):  # one whose runtime never started
            await environment.shutdown("spindown", SHUTDOWN_LIMIT)

    def _stop(self, instance: Instance, reason: str) -> asyncio.Task:
        """Stop an instance's environment (once; later calls get the same task)."""
        if instance.stopping is None:
            instance.stopping = asyncio.get_running_loop().create_task(self._stop_environment(instance, reason))
        return instance.stopping

    async def _stop_environment(self, instance: Instance, reason: str) -> None:
        began = time.monotonic()
        extensions = instance.extensions
        if instance.alive:
            if not extensions.registered:
                instance.signal(signal.SIGKILL)  # nothing asked for SIGTERM: Lambda just kills the runtime
            else:
                instance.signal(signal.SIGTERM)
                external_only = extensions.has_external and not extensions.has_internal
                grace = RUNTIME_SHUTDOWN_EXTERNAL if external_only else RUNTIME_SHUTDOWN_INTERNAL
                try:
                    await asyncio.wait_for(asyncio.shield(instance.exited), grace)
                except asyncio.TimeoutError:
                    instance.signal(signal.SIGKILL)
            try:
                await asyncio.wait_for(asyncio.shield(instance.exited), KILL_WAIT)
            except asyncio.TimeoutError:
                pass
        await instance.capture.wait_closed(LOG_DRAIN)
        await extensions.shutdown(reason, SHUTDOWN_LIMIT - (time.monotonic() - began))
        self._forget(extensions)
        instance.lifecycle.enter_if_allowed(Phase.STOPPED)
        if not instance.stopped.done():
            instance.stopped.set_result(None)

    def mute_output(self) -> None:
        """Copy no more of the processes' output to stderr (an interrupted `fastric invoke` says one line)."""
        captures = [capture for extensions in self.environments for capture in extensions.captures]
        if self.current is not None:
            captures.append(self.current.capture)
        for capture in captures:
            capture.forward_to = None

    def _skipped_extension(self, path: str, reason: str) -> None:
        """A file of the extensions directory that is not run (said once per file and reason)."""
        if (path, reason) not in self._skipped:
            self._skipped.add((path, reason))
            self.log.note(f"extension file {path} skipped: {reason}")

    def _forget(self, extensions: Extensions) -> None:
        if extensions in self.environments:
            self.environments.remove(extensions)

    async def reload(self) -> None:
        """Replace the bootstrap with a fresh one (--watch): invocations in flight finish on the old one first.

        New invocations wait for the fresh bootstrap; the old one's `/next` polls are left unanswered (a runtime
        told to exit could take its other invocations in flight with it) and it gets SIGTERM once idle.
        """
        async with self._spawn_lock:
            self.pending_failure = None  # a kept init failure is stale once the code changed
            instance = self.current
            if instance is not None and instance.alive:
                if instance.lifecycle.enter_if_allowed(Phase.DRAINING):
                    instance.queued.clear()  # their `run` loops move them to the fresh instance
                    await asyncio.sleep(0)  # an invocation just handed to a `/next` poll gets dispatched first
                    self._stop_if_drained(instance)
                else:  # it failed its init, or is being reset: it takes no work, stop it now
                    self._stop(instance, "spindown")
                await asyncio.shield(instance.exited)
            if not self._closing:
                await asyncio.shield(self._respawn())

    async def _respawn(self) -> None:
        failure = await self._spawn()
        if failure is not None:
            self.pending_failure = failure
        elif self._closing and self.current is not None:  # the emulator stopped while this one was starting
            self.current.signal(signal.SIGKILL)

    def _stop_if_drained(self, instance: Instance) -> None:
        if instance.phase is Phase.DRAINING and instance.alive and not instance.inflight:
            self._stop(instance, "spindown")  # the environment's shutdown sequence (extensions included)

    async def _spawn(self) -> Failure | None:
        config = self.config
        environment = config.environment(self.runtime_api)
        extensions: Extensions = Extensions(
            config,
            self.log,
            on_line=lambda line, at: self._log_line(extensions, "extension", line, at),
            on_failure=lambda error_type, message: self._extension_failed(extensions, error_type, message),
        )
        self.environments.append(extensions)
        init_started = time.monotonic()
        extensions.telemetry.init_start(self.initialization_type, config.function_name)
        failure = await extensions.launch(
            find_extensions(config.extensions_dir, self._skipped_extension),
            extension_environment(environment),
            config.task_root,
        )
        if failure is None and self._closing:
            failure = ("Sandbox.Reset", "emulator stopped")
        if failure is not None:
            error_type, message = failure
            await extensions.shutdown("failure", SHUTDOWN_LIMIT)
            self._forget(extensions)
            return Failure(
                error_type,
                lambda request_id: documents.error_document(error_type, f"RequestId: {request_id} Error: {message}"),
            )
        import_times = ImportTimes() if config.import_profile else None
        try:
            process, capture = await LineCapture.spawn(
                config.command,
                config.task_root,
                environment,
                lambda line, at: self._log_line(extensions, "function", line, at),
                divert=import_times.take if import_times is not None else None,
            )
        except OSError as error:
            reason = f"fork/exec {config.command[0]}: {(error.strerror or str(error)).lower()}"
            self.log.note(f"cannot start the bootstrap: {reason}")
            await extensions.shutdown("failure", SHUTDOWN_LIMIT)
            self._forget(extensions)
            return Failure(
                "Runtime.InvalidEntrypoint", lambda request_id: documents.invalid_entrypoint(request_id, reason)
            )
        instance = Instance(process, extensions, capture)
        instance.import_times = import_times
        instance.spawned_at = init_started  # Init Duration covers the extensions' init too
        self.current = instance
        self.log.note(f"bootstrap started (pid {instance.pid}): {' '.join(config.command)}")
        asyncio.get_running_loop().create_task(self._watch(instance))
        if extensions.failure is not None:  # an extension failed while the bootstrap was being spawned
            self._extension_failed(extensions, *extensions.failure)
        return None

    async def _instance_for(self, invocation: Invocation) -> Instance | None:
        """The instance to run `invocation` on, spawning one if needed; None if the invocation was failed."""
        instance = self.current
        if instance is not None and instance.takes_work and not self._spawn_lock.locked():
            return instance  # the usual case, without taking the lock
        async with self._spawn_lock:
            instance = self.current
            if instance is not None and instance.takes_work:
                return instance
            pending, self.pending_failure = self.pending_failure, None
            if pending is not None:
                pending.apply(invocation)
                return None
            if instance is not None and not instance.stopped.done():  # on its way out: let it go first
                await asyncio.shield(instance.stopped)
            if self._closing:
                return None
            failure = await self._spawn()
            if failure is not None:
                failure.apply(invocation)
                return None
            if self.current is not None:
                self.current.suppressed_init = True
            return self.current

    async def _watch(self, instance: Instance) -> None:
        returncode = await instance.process.wait()
        instance.returncode = returncode
        instance.memory.close()
        instance.lifecycle.enter(Phase.EXITED)
        try:  # leftovers of the bootstrap (a shell's curl) must not poll the next instance's Runtime API
            os.killpg(instance.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for poll in instance.polls:
            poll.cancel()
        instance.polls.clear()
        if not self._closing:
            self.log.note(f"bootstrap (pid {instance.pid}) exited: {documents.exit_reason(returncode)}")
        for invocation in list(instance.inflight.values()):
            if not invocation.finished:
                instance.telemetry.fault(invocation.request_id)
            Failure("Runtime.ExitError", lambda request_id: documents.runtime_exit(request_id, returncode)).apply(
                invocation
            )
        queued = [invocation for invocation in instance.queued if not invocation.finished]
        instance.queued.clear()
        if instance.initialized_at is None and instance.init_error is None:
            failure = Failure("Runtime.ExitError", lambda request_id: documents.runtime_exit(request_id, returncode))
            for invocation in queued:
                failure.apply(invocation)
            ended_by_emulator = instance.lifecycle.ended_by_emulator
            if not queued and not self._closing and not ended_by_emulator and instance is self.current:
                self.pending_failure = failure
            self.reporter.init_finished(instance, "error", "Runtime.ExitError")
        # Invocations still queued after a post-init death are picked up again by `run` on a fresh instance.
        instance.exited.set_result(returncode)
        if not self._closing:
            await self._stop(instance, instance.reset_reason)

    # -- init ------------------------------------------------------------------------------
    async def complete_init(self, instance: Instance) -> None:
        """The runtime called /next before init ended: close registration, wait for every extension's next."""
        if instance.import_times is not None:  # what the runtime imported before this /next was its init
            instance.capture.drain()
            instance.import_times.end_init()
        instance.extensions.close_registration()
        await instance.extensions.wait_initialized()
        if instance.initialized_at is None and instance.init_error is None and not instance.refuses_next:
            instance.initialized_at = time.monotonic()
            instance.lifecycle.enter_if_allowed(Phase.READY)
            instance.measure_memory()  # the init peak, in case the process dies before its first report
            self.reporter.init_finished(instance, "success", None)

    def _extension_failed(self, extensions: Extensions, error_type: str, message: str) -> None:
        """An extension failed during init (crash, init/error): the instance fails its init."""
        instance = self.current
        if instance is None or instance.extensions is not extensions:
            return  # still launching the extensions: `launch` reports it
        if instance.alive and instance.initialized_at is None and instance.init_error is None:
            self.init_failed(instance, documents.error_document(error_type, message), error_type)

    # -- logs ------------------------------------------------------------------------------
    def _log_line(self, extensions: Extensions, kind: str, line: str, at: float) -> None:
        """A line of the runtime's (`function`) or an extension's (`extension`) output."""
        extensions.telemetry.emit(kind, line, at)
        if len(self._running) == 1:
            invocation = next(iter(self._running.values()))
            if invocation.tail is not None and (
                invocation.instance is None or invocation.instance.extensions is extensions
            ):
                invocation.tail.add(line)

    # -- invocations -----------------------------------------------------------------------
    async def run(self, invocation: Invocation) -> None:
        """Run one invocation to its end (the caller holds a concurrency slot)."""
        previous = self.current
        if previous is not None and previous.refuses_next and self.pending_failure is None and not self._closing:
            await asyncio.shield(previous.stopped)  # a reset in progress: still queued, not yet on the clock
        invocation.started_at = time.monotonic()
        self._running[invocation.request_id] = invocation
        self.reporter.start(invocation)
        instance: Instance | None = None
        try:
            while not invocation.finished:
                instance = self.current
                if instance is None or not instance.takes_work or self._spawn_lock.locked():
                    instance = await self._instance_for(invocation)
                if instance is None:
                    break
                invocation.instance = instance
                self._start_clock_for(invocation, instance)
                instance.submit(invocation)
                await invocation.wait(instance.exited)
        finally:
            for timer in invocation.timers:
                timer.cancel()
        if not invocation.finished:  # the emulator is closing
            Failure("Sandbox.Reset", lambda request_id: documents.sandbox_reset(request_id, "emulator stopped")).apply(
                invocation
            )
        runtime_done = False
        if (
            instance is not None
            and instance.extensions.registered
            and invocation.dispatched_at
            and invocation.report_status is None  # answered by the runtime, not failed by the platform
            and self.config.concurrency is None
        ):
            runtime_done = await self._end_invoke_phase(invocation, instance)
        self._report(invocation, instance, runtime_done)

    async def _end_invoke_phase(self, invocation: Invocation, instance: Instance) -> bool:
        """Wait, within the timeout, for the runtime's next /next and the extensions' next; whether the runtime came."""
        mark = instance.next_marks.get(invocation.request_id, instance.polls_received)
        came_back = False

        async def phase() -> None:
            nonlocal came_back
            await instance.wait_polled_after(mark)
            if instance.polls_received > mark:
                came_back = True
                instance.drain_logs(
                    self.config.concurrency is None
                )  # what the function printed belongs before its runtimeDone
                self.reporter.runtime_done(invocation, instance)
            await instance.extensions.wait_invoke_done()

        try:
            await asyncio.wait_for(phase(), max(0.0, invocation.deadline_ms / 1000 - time.time()))
        except asyncio.TimeoutError:
            waiting = instance.extensions.busy_with_invoke()
            if not came_back:
                waiting.insert(0, "the runtime")
            self.log.note(
                f"{invocation.request_id}: {', '.join(waiting)} did not call next within the function timeout: "
                "resetting the execution environment"
            )
            invocation.report_status, invocation.report_error_type = "timeout", "Sandbox.Timedout"
            self._reset(instance, "timeout")
        return came_back

    def dispatched(self, instance: Instance, invocation: Invocation) -> None:
        """Called when `/next` hands `invocation` to the bootstrap."""
        invocation.state = State.DISPATCHED
        invocation.dispatched_at = time.monotonic()
        self._start_clock(invocation)
        instance.inflight[invocation.request_id] = invocation
        self.inflight[invocation.request_id] = invocation
        instance.next_marks[invocation.request_id] = instance.polls_received
        instance.extensions.release_invoke(
            invocation.request_id, invocation.deadline_ms, self.config.function_arn, invocation.trace_id
        )
        instance.telemetry.start(invocation.request_id, invocation.trace_id)

    def worker_exited(self, invocation: Invocation, document: bytes) -> None:
        """The runtime's parent reported that the worker holding `invocation` died: answered as a crash."""
        message = documents.error_message(document)
        reason = message.split("Error: ", 1)[-1] if message else "Runtime.ExitError"
        reason = reason.removeprefix("Runtime exited with error: ")
        self.log.note(f"{invocation.request_id}: a runtime worker exited during the invocation: {reason}")
        if invocation.instance is not None:
            invocation.instance.telemetry.fault(invocation.request_id)
        Failure("Runtime.ExitError", lambda request_id: document).apply(invocation)

    def lookup(self, request_id: str) -> tuple[Invocation | None, bool]:
        """The invocation in flight with this id; else (None, whether the id was ever seen)."""
        invocation = self.inflight.get(request_id)
        if invocation is not None:
            return invocation, True
        return None, request_id in self.finished_ids

    def _start_clock_for(self, invocation: Invocation, instance: Instance) -> None:
        """Start the timeout now, or (during an on-demand init) at dispatch or when init overruns its limit."""
        if instance.initialized_at is None and not instance.suppressed_init:
            overrun_in = max(0.0, instance.spawned_at + self.config.init_timeout - time.monotonic())
            invocation.timers.append(invocation.done.get_loop().call_later(overrun_in, self._start_clock, invocation))
        else:
            self._start_clock(invocation)

    def _start_clock(self, invocation: Invocation) -> None:
        """Start the invocation's timeout (once) and set its deadline."""
        if invocation.clock_started_at or invocation.finished:
            return
        invocation.clock_started_at = time.monotonic()
        invocation.deadline_ms = int(time.time() * 1000 + self.config.timeout * 1000)
        loop = invocation.done.get_loop()  # (asyncio.get_running_loop() costs a getpid() on Python 3.11)
        invocation.timers.append(loop.call_later(self.config.timeout, self._time_out, invocation))

    def _time_out(self, invocation: Invocation) -> None:
        if invocation.finished:
            return
        invocation.fail(
            documents.timed_out(invocation.request_id, self.config.timeout),
            report_status="timeout",
            error_type="Sandbox.Timedout",
        )
        instance = invocation.instance
        if instance is None or not instance.alive:
            return
        if self.config.concurrency is not None and instance.initialized_at is not None:
            # Managed Instances' independent timeouts: the invocation is failed, the others in flight and the
            # environment go on (the timeout is not enforced on the code, which runs on).
            self.log.note(
                f"{invocation.request_id} timed out after {self.config.timeout:.2f} seconds "
                "(the other invocations and the environment go on, as on Lambda Managed Instances)"
            )
            return
        self.log.note(
            f"{invocation.request_id} timed out after {self.config.timeout:.2f} seconds: "
            f"killing the bootstrap (pid {instance.pid}); the next invoke starts a fresh one"
        )
        self._reset(instance, "timeout")

    def _reset(self, instance: Instance, reason: str) -> None:
        """Stop an instance's whole environment; the next invocation gets a fresh one."""
        if instance.lifecycle.enter_if_allowed(Phase.RESETTING):
            instance.reset_reason = reason
        self._stop(instance, reason)

    def _kill_after_init_error(self, instance: Instance) -> None:
        """The grace after `/init/error` is over: kill what is left of the process."""
        instance.signal(signal.SIGKILL)

    def init_failed(self, instance: Instance, document: bytes, error_type: str) -> None:
        """The bootstrap posted /init/error: fail whoever waits for it, or keep the failure for the next one."""
        instance.init_error, instance.init_error_type = document, error_type
        instance.lifecycle.enter_if_allowed(Phase.INIT_FAILED)
        self.reporter.init_finished(instance, "error", error_type)
        failure = Failure(error_type, lambda request_id: document)
        waiting = [invocation for invocation in instance.queued if not invocation.finished]
        instance.queued.clear()
        for invocation in waiting:
            failure.apply(invocation)
        if not waiting:
            self.pending_failure = failure
        asyncio.get_running_loop().call_later(INIT_ERROR_GRACE, self._kill_after_init_error, instance)

    # -- the end of an invocation ----------------------------------------------------------
    def _report(self, invocation: Invocation, instance: Instance | None, runtime_done: bool) -> None:
        request_id = invocation.request_id
        if instance is not None:
            instance.drain_logs(self.config.concurrency is None)
        self.inflight.pop(request_id, None)
        if instance is not None:
            instance.inflight.pop(request_id, None)
            instance.next_marks.pop(request_id, None)
            self._stop_if_drained(instance)
        self.finished_ids[request_id] = None
        while len(self.finished_ids) > FINISHED_IDS_KEPT:
            self.finished_ids.popitem(last=False)
        self.reporter.finished(invocation, instance, runtime_done)
        self._running.pop(request_id, None)
        if invocation.tail is not None:
            invocation.tail.finish()
