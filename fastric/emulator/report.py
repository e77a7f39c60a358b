"""Lambda's platform log lines (START / END / REPORT) and the bootstrap's peak memory."""

from __future__ import annotations

import math
import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .importprofile import ImportProfile


class PlatformLog:
    """Writes Lambda-style platform lines and the emulator's own notes to a text stream (stderr)."""

    def __init__(self, out: TextIO | None = None, prefix: str = "fastric emulate"):
        self.out = out or sys.stderr
        self.prefix = prefix
        self.muted = False

    def mute(self) -> None:
        """Write nothing more (lines are still returned, for the log tail)."""
        self.muted = True

    def _write(self, line: str) -> str:
        if self.muted:
            return line
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass
        return line

    def note(self, message: str) -> None:
        self._write(f"{self.prefix}: {message}")

    def start(self, request_id: str) -> str:
        """Write the START line; return it (for the invocation's log tail)."""
        return self._write(f"START RequestId: {request_id} Version: $LATEST")

    def end(self, request_id: str) -> str:
        return self._write(f"END RequestId: {request_id}")

    def report(
        self,
        request_id: str,
        duration_ms: float,
        memory_mb: int,
        max_memory_used_mb: int,
        init_duration_ms: float | None = None,
        status: str | None = None,
        error_type: str | None = None,
    ) -> str:
        return self._write(
            format_report(request_id, duration_ms, memory_mb, max_memory_used_mb, init_duration_ms, status, error_type)
        )

    def import_profile(self, request_id: str, profile: ImportProfile) -> None:
        """`--import-profile`: where the init's import time went, after the REPORT line with Init Duration."""
        head, *rows = profile.lines()
        self.note(head)
        for row in rows:
            self._write(row)


def format_report(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """A REPORT line, fields tab-separated as Lambda prints them."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status:
        fields.append(f"Status: {status}")
    if error_type:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)


def _read_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as children:
                found.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            pass
    return found


def peak_rss_kb(pid: int) -> int:
    """Sum of VmHWM (peak resident set) over the process and its live descendants; 0 if unknown."""
    total, pending, seen = 0, [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _read_hwm_kb(current)
        pending.extend(_children(current))
    return total


def kb_to_mb(kilobytes: int) -> int:
    return math.ceil(kilobytes / 1024)
