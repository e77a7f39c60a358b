"""What the sandbox reports about an environment and its invocations: log lines, tail and telemetry records.

The sandbox decides; this module says it. `Reporter` writes the START / END / REPORT lines (to the emulator's
stderr and the invocation's log tail) and the platform records of the Telemetry and Logs APIs (init done,
runtimeDone, report), from the facts the sandbox hands it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import telemetry
from .config import FunctionConfig
from .invocation import Invocation
from .report import PlatformLog, Report

if TYPE_CHECKING:
    from .sandbox import Instance


def outcome(invocation: Invocation) -> tuple[str, str | None]:
    """The Telemetry API's status of an invocation and its error type."""
    if invocation.report_status == "timeout":
        return "timeout", invocation.report_error_type or "Sandbox.Timedout"
    if invocation.report_status == "error":
        return "failure", invocation.report_error_type
    if invocation.function_error:
        return "error", invocation.report_error_type
    return "success", None


class Reporter:
    """Reports an environment's init and its invocations (see the module docstring)."""

    def __init__(self, config: FunctionConfig, log: PlatformLog, initialization_type: str):
        self.config = config
        self.log = log
        self.initialization_type = initialization_type

    @staticmethod
    def tail(invocation: Invocation, line: str) -> None:
        if invocation.tail is not None:
            invocation.tail.add(line)

    def start(self, invocation: Invocation) -> None:
        self.tail(invocation, self.log.start(invocation.request_id))

    def init_finished(self, instance: Instance, status: str, error_type: str | None) -> None:
        """The init records (once): the extensions' states, initRuntimeDone, initReport."""
        if instance.telemetry.open:
            duration_ms = ((instance.initialized_at or time.monotonic()) - instance.spawned_at) * 1000
            states = [(extension.name, sorted(extension.events)) for extension in instance.extensions.registered]
            instance.telemetry.init_done(self.initialization_type, states, status, error_type, duration_ms)

    def runtime_done(self, invocation: Invocation, instance: Instance) -> None:
        if instance.telemetry.active:
            duration_ms = (time.monotonic() - invocation.dispatched_at) * 1000
            instance.telemetry.runtime_done(
                invocation.request_id, invocation.trace_id, *outcome(invocation), duration_ms
            )

    def finished(self, invocation: Invocation, instance: Instance | None, runtime_done: bool) -> None:
        """END and REPORT (log, tail, telemetry) of an invocation that is over."""
        request_id = invocation.request_id
        began = invocation.clock_started_at or invocation.started_at
        ended = time.monotonic() if runtime_done else (invocation.finished_at or time.monotonic())
        duration_ms = max(0.0, ended - began) * 1000
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
        end, report = self.log.end_report(
            Report(
                request_id,
                duration_ms,
                self.config.memory_mb,
                memory,
                init_ms,
                invocation.report_status,
                invocation.report_error_type,
            )
        )
        if invocation.tail is not None:
            invocation.tail.add(end)
            invocation.tail.add(report)
        if init_ms is not None and instance is not None and instance.import_times is not None:
            profile = instance.import_times.profile(self.config.command, self.config.handler, init_ms)
            self.log.import_profile(request_id, profile)
        if instance is not None and invocation.dispatched_at and instance.telemetry.active:
            if not runtime_done:
                self.runtime_done(invocation, instance)
            metrics = telemetry.report_metrics(duration_ms, self.config.memory_mb, memory, init_ms)
            instance.telemetry.report(request_id, invocation.trace_id, *outcome(invocation), metrics)
