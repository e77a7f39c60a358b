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
  starts a fresh instance (other invocations in flight in the killed instance get `Runtime.ExitError`).

The function timeout covers the invoke phase, as on Lambda: it starts when `/next` hands the invocation
out. Init has its own limit (`--init-timeout`, Lambda's 10 s for on-demand functions): an instance's first
init counts against no invocation unless it runs past that limit, and then the rest of it counts against
the invocation waiting for it (Lambda would re-run it inside the invoke). An instance started lazily after a
crash, timeout or init failure is a "suppressed init": it runs inside the invoke, so the timeout covers it.
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
from .invocation import Invocation, State
from .report import PlatformLog, kb_to_mb, peak_rss_kb

FINISHED_IDS_KEPT = 4096
SHUTDOWN_GRACE = 0.5  # seconds between SIGTERM and SIGKILL when the emulator stops
INIT_ERROR_GRACE = 2.0  # seconds a runtime gets to exit by itself after posting /init/error


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
    """One bootstrap process and its share of the Runtime API state."""

    def __init__(self, process: asyncio.subprocess.Process):
        loop = asyncio.get_running_loop()
        self.process = process
        self.pid = process.pid
        self.spawned_at = time.monotonic()
        self.initialized_at: float | None = None
        self.init_error: bytes | None = None
        self.init_error_type = "Runtime.Unknown"
        self.retiring = False  # takes no new invocations; waiting to exit
        self.returncode: int | None = None
        self.exited: asyncio.Future = loop.create_future()
        self.polls: deque[asyncio.Future] = deque()
        self.queued: deque[Invocation] = deque()
        self.inflight: dict[str, Invocation] = {}
        self.init_reported = False
        self.killed = False  # by the emulator (timeout, init error): not an init failure to report later
        self.draining = False  # being replaced (--watch): takes no new invocations, stops once idle
        self.suppressed_init = False  # started for a waiting invocation: its init counts against that invoke
        self.peak_kb = 0

    @property
    def alive(self) -> bool:
        return self.returncode is None

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
        poll = asyncio.get_running_loop().create_future()
        self.polls.append(poll)
        return poll

    def signal(self, signum: int) -> None:
        if self.alive:
            try:
                os.killpg(self.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def measure_memory(self) -> int:
        if self.alive:
            self.peak_kb = max(self.peak_kb, peak_rss_kb(self.pid))
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
        self._spawn_lock = asyncio.Lock()
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Spawn the bootstrap eagerly; a failure to start is kept for the first invocation."""
        async with self._spawn_lock:
            failure = await self._spawn()
            if failure is not None:
                self.pending_failure = failure

    async def close(self) -> None:
        """Stop the bootstrap: SIGTERM, then SIGKILL after a short grace."""
        self._closing = True
        instance = self.current
        if instance is None or not instance.alive:
            return
        instance.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(instance.exited), SHUTDOWN_GRACE)
        except asyncio.TimeoutError:
            instance.signal(signal.SIGKILL)
            try:
                await asyncio.wait_for(asyncio.shield(instance.exited), 5)
            except asyncio.TimeoutError:
                pass

    async def reload(self) -> None:
        """Replace the bootstrap with a fresh one (--watch): invocations in flight finish on the old one first.

        New invocations wait for the fresh bootstrap; the old one's `/next` polls are left unanswered (a runtime
        told to exit could take its other invocations in flight with it) and it gets SIGTERM once idle.
        """
        async with self._spawn_lock:
            self.pending_failure = None  # a kept init failure is stale once the code changed
            instance = self.current
            if instance is not None and instance.alive:
                instance.draining = instance.killed = True
                instance.queued.clear()  # their `run` loops move them to the fresh instance
                await asyncio.sleep(0)  # an invocation just handed to a `/next` poll gets dispatched first
                self._stop_if_drained(instance)
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
        if instance.draining and instance.alive and not instance.inflight:
            instance.signal(signal.SIGTERM)
            asyncio.get_running_loop().call_later(SHUTDOWN_GRACE, instance.signal, signal.SIGKILL)

    async def _spawn(self) -> Failure | None:
        config = self.config
        try:
            process = await asyncio.create_subprocess_exec(
                *config.command,
                cwd=config.task_root,
                env=config.environment(self.runtime_api),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=2,
                stderr=2,
                start_new_session=True,
            )
        except OSError as error:
            reason = f"fork/exec {config.command[0]}: {(error.strerror or str(error)).lower()}"
            self.log.note(f"cannot start the bootstrap: {reason}")
            return Failure(
                "Runtime.InvalidEntrypoint", lambda request_id: documents.invalid_entrypoint(request_id, reason)
            )
        instance = Instance(process)
        self.current = instance
        self.log.note(f"bootstrap started (pid {instance.pid}): {' '.join(config.command)}")
        asyncio.get_running_loop().create_task(self._watch(instance))
        return None

    async def _instance_for(self, invocation: Invocation) -> Instance | None:
        """The instance to run `invocation` on, spawning one if needed; None if the invocation was failed."""
        async with self._spawn_lock:
            instance = self.current
            if instance is not None and instance.alive and not instance.retiring and not instance.draining:
                return instance
            if self.pending_failure is not None:
                failure, self.pending_failure = self.pending_failure, None
                failure.apply(invocation)
                return None
            if instance is not None and instance.alive:  # retiring: let it go first
                await asyncio.shield(instance.exited)
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
            Failure("Runtime.ExitError", lambda request_id: documents.runtime_exit(request_id, returncode)).apply(
                invocation
            )
        queued = [invocation for invocation in instance.queued if not invocation.finished]
        instance.queued.clear()
        if instance.initialized_at is None and instance.init_error is None:
            failure = Failure("Runtime.ExitError", lambda request_id: documents.runtime_exit(request_id, returncode))
            for invocation in queued:
                failure.apply(invocation)
            if not queued and not self._closing and not instance.killed and instance is self.current:
                self.pending_failure = failure
        # Invocations still queued after a post-init death are picked up again by `run` on a fresh instance.
        if self.current is instance:
            instance.retiring = True
        instance.exited.set_result(returncode)

    # -- invocations -----------------------------------------------------------------------
    async def run(self, invocation: Invocation) -> None:
        """Run one invocation to its end (the caller holds a concurrency slot)."""
        invocation.started_at = time.monotonic()
        self.log.start(invocation.request_id)
        instance: Instance | None = None
        try:
            while not invocation.finished:
                instance = await self._instance_for(invocation)
                if instance is None:
                    break
                invocation.instance = instance
                self._start_clock_for(invocation, instance)
                instance.submit(invocation)
                await asyncio.wait((invocation.done, instance.exited), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for timer in invocation.timers:
                timer.cancel()
        if not invocation.finished:  # the emulator is closing
            Failure("Sandbox.Reset", lambda request_id: documents.sandbox_reset(request_id, "emulator stopped")).apply(
                invocation
            )
        self._report(invocation, instance)

    def dispatched(self, instance: Instance, invocation: Invocation) -> None:
        """Called when `/next` hands `invocation` to the bootstrap."""
        invocation.state = State.DISPATCHED
        invocation.dispatched_at = time.monotonic()
        self._start_clock(invocation)
        instance.inflight[invocation.request_id] = invocation
        self.inflight[invocation.request_id] = invocation

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
            invocation.timers.append(asyncio.get_running_loop().call_later(overrun_in, self._start_clock, invocation))
        else:
            self._start_clock(invocation)

    def _start_clock(self, invocation: Invocation) -> None:
        """Start the invocation's timeout (once) and set its deadline."""
        if invocation.clock_started_at or invocation.finished:
            return
        invocation.clock_started_at = time.monotonic()
        invocation.deadline_ms = int(time.time() * 1000 + self.config.timeout * 1000)
        invocation.timers.append(asyncio.get_running_loop().call_later(self.config.timeout, self._time_out, invocation))

    def _time_out(self, invocation: Invocation) -> None:
        if invocation.finished:
            return
        invocation.fail(
            documents.timed_out(invocation.request_id, self.config.timeout),
            report_status="timeout",
            error_type="Sandbox.Timedout",
        )
        instance = invocation.instance
        if instance is not None and instance.alive:
            self.log.note(
                f"{invocation.request_id} timed out after {self.config.timeout:.2f} seconds: "
                f"killing the bootstrap (pid {instance.pid}); the next invoke starts a fresh one"
            )
            self.retire(instance, signal.SIGKILL)

    def retire(self, instance: Instance, signum: int | None) -> None:
        """Take no more work on `instance`; signal its process group if `signum` is given."""
        instance.retiring = True
        if signum is not None:
            instance.killed = True
            instance.signal(signum)

    def init_failed(self, instance: Instance, document: bytes, error_type: str) -> None:
        """The bootstrap posted /init/error: fail whoever waits for it, or keep the failure for the next one."""
        instance.init_error, instance.init_error_type = document, error_type
        self.retire(instance, None)
        failure = Failure(error_type, lambda request_id: document)
        waiting = [invocation for invocation in instance.queued if not invocation.finished]
        instance.queued.clear()
        for invocation in waiting:
            failure.apply(invocation)
        if not waiting:
            self.pending_failure = failure
        asyncio.get_running_loop().call_later(INIT_ERROR_GRACE, self.retire, instance, signal.SIGKILL)

    def _report(self, invocation: Invocation, instance: Instance | None) -> None:
        request_id = invocation.request_id
        self.inflight.pop(request_id, None)
        if instance is not None:
            instance.inflight.pop(request_id, None)
            self._stop_if_drained(instance)
        self.finished_ids[request_id] = None
        while len(self.finished_ids) > FINISHED_IDS_KEPT:
            self.finished_ids.popitem(last=False)
        began = invocation.clock_started_at or invocation.started_at
        duration_ms = max(0.0, (invocation.finished_at or time.monotonic()) - began) * 1000
        init_ms = None
        if (
            instance is not None
            and invocation.dispatched_at
            and not instance.init_reported
            and instance.initialized_at is not None
        ):
            instance.init_reported = True
            init_ms = (instance.initialized_at - instance.spawned_at) * 1000
        memory = instance.measure_memory() if instance is not None else 0
        self.log.end(request_id)
        self.log.report(
            request_id,
            duration_ms,
            self.config.memory_mb,
            memory,
            init_ms,
            invocation.report_status,
            invocation.report_error_type,
        )
