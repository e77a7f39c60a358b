"""Lambda's platform log lines (START / END / REPORT) and the bootstrap's peak memory."""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
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

    def report_line(self, report: Report) -> str:
        """The REPORT line, not written (a subclass may keep its numbers)."""
        return report.line()

    def end_report(self, report: Report) -> tuple[str, str]:
        """Write the END and REPORT lines, in one write; return both (for the invocation's log tail)."""
        end = f"END RequestId: {report.request_id}"
        line = self.report_line(report)
        self._write(f"{end}\n{line}")
        return end, line

    def import_profile(self, request_id: str, profile: ImportProfile) -> None:
        """`--import-profile`: where the init's import time went, after the REPORT line with Init Duration."""
        head, *rows = profile.lines()
        self.note(head)
        for row in rows:
            self._write(row)


@dataclass(frozen=True, slots=True)
class Report:
    """The numbers of one invocation's REPORT line."""

    request_id: str
    duration_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    status: str | None = None
    error_type: str | None = None

    def line(self) -> str:
        return format_report(
            self.request_id,
            self.duration_ms,
            self.memory_mb,
            self.max_memory_used_mb,
            self.init_duration_ms,
            self.status,
            self.error_type,
        )


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


class MemoryProbe:
    """`peak_rss_kb` of one process tree, read again for every REPORT line at a few syscalls a process.

    The `/proc/<pid>/status` of each process of the tree is opened once and read again with `pread` (the kernel
    writes it anew at offset 0); its `Threads:` field says whether the main thread's `children` file (kept open
    too) lists every child, else each thread's is read as `peak_rss_kb` does. A descriptor names the process it
    was opened for, so a reused pid is never read through an old one: a read that fails drops it and, for a pid
    still listed, opens the pid afresh once.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self._status: dict[int, int] = {}  # pid -> fd of /proc/<pid>/status
        self._children: dict[int, int] = {}  # pid -> fd of /proc/<pid>/task/<pid>/children

    def peak_kb(self) -> int:
        """Sum of VmHWM over the process and its live descendants; 0 if unknown (the process is gone)."""
        pid = self.pid
        status = self._read(self._status, pid, f"/proc/{pid}/status")
        if status is None:  # gone, and its descendants are no longer its own
            self.close()
            return 0
        found = _HWM_AND_THREADS.search(status)
        if found is not None and found[2] == b"1" and len(self._status) == 1:  # one thread, no child known
            children = self._read(self._children, pid, f"/proc/{pid}/task/{pid}/children")
            if children is not None and not children.strip():  # still none: the usual runtime, one process
                return int(found[1])
        return self._tree_kb(status)

    def _tree_kb(self, root_status: bytes) -> int:
        total, pending, seen = 0, [self.pid], set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            if current == self.pid:
                status: bytes | None = root_status
            else:
                status = self._read(self._status, current, f"/proc/{current}/status")
            if status is None:
                continue
            total += _field_kb(status, b"VmHWM:")
            if _field_kb(status, b"Threads:") == 1:
                children = self._read(self._children, current, f"/proc/{current}/task/{current}/children")
                if children:
                    try:
                        pending.extend(map(int, children.split()))
                    except ValueError:
                        pass
            else:
                pending.extend(_children(current))
        for gone in [pid for pid in self._status if pid not in seen]:
            self._drop(gone)
        return total

    def _read(self, fds: dict[int, int], pid: int, path: str) -> bytes | None:
        fd = fds.get(pid)
        if fd is not None:
            try:
                return os.pread(fd, 16384, 0)
            except OSError:
                self._drop(pid)
        try:
            fd = fds[pid] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            return os.pread(fd, 16384, 0)
        except OSError:
            self._drop(pid)
            return None

    def _drop(self, pid: int) -> None:
        for fds in (self._status, self._children):
            fd = fds.pop(pid, None)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def close(self) -> None:
        for pid in list(self._status) + list(self._children):
            self._drop(pid)


_HWM_AND_THREADS = re.compile(rb"VmHWM:\s*(\d+).*?Threads:\s*(\d+)", re.DOTALL)


def _field_kb(status: bytes, key: bytes) -> int:
    """The number after `key` in a /proc status text (VmHWM's kB, Threads' count); 0 if it has none."""
    start = status.find(key)
    if start < 0:
        return 0
    end = status.find(b"\n", start)
    try:
        return int(status[start + len(key) : end if end >= 0 else None].split()[0])
    except (ValueError, IndexError):
        return 0


def kb_to_mb(kilobytes: int) -> int:
    return math.ceil(kilobytes / 1024)
