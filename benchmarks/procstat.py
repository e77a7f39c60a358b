"""Read a process's CPU time and peak memory from /proc (Linux)."""

from __future__ import annotations

import os

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


# (pid, start time) -> {thread id: CPU ns at its last reading}: a thread that exits keeps its last reading.
_last_reading: dict[tuple[int, int], dict[str, int]] = {}


def cpu_ns(pid: int) -> int:
    """User+system CPU of `pid`'s threads so far, in nanoseconds; never less than an earlier reading.

    Summed from each thread's `schedstat` (nanosecond resolution). The kernel drops a thread's entry when it
    exits, so a thread read earlier and gone now counts with its last reading: a window between two readings
    cannot go negative (it misses the CPU an exiting thread used after the first one). Falls back to the 10 ms
    ticks of `/proc/<pid>/stat` where schedstat is missing. Returns -1 once the process is gone.
    """
    started = _start_time(pid)
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return -1
    if started is None:
        return -1
    readings = _last_reading.setdefault((pid, started), {})
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                readings[tid] = int(f.read().split(None, 1)[0])
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{tid}"):
                return _stat_cpu_ns(pid)  # a kernel without schedstat
            # the thread exited since listdir: its last reading (if any) stands
        except OSError:
            return -1
    return sum(readings.values())


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def runqueue_wait_ns(pid: int) -> int:
    """Time every live thread of `pid` has spent runnable but waiting for a CPU (schedstat's second field), in
    nanoseconds; -1 if unknown. On a busy machine this is the time other processes took from it."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
        total = 0
        for tid in tids:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return -1
    return total


def _stat_cpu_ns(pid: int) -> int:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) * _TICK_NS if fields else -1  # utime, stime


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, comes first)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set size (VmHWM) in KiB, or -1 if unknown."""
    return _status_kb(pid, b"VmHWM:")


def anon_rss_kb(pid: int) -> int:
    """The process's resident anonymous memory now (RssAnon) in KiB, or -1 if unknown.

    Unlike VmHWM it leaves out file-backed pages (shared libraries), whose residency also depends on how
    much of each file the page cache holds (the kernel maps cached neighbours of a faulting page)."""
    return _status_kb(pid, b"RssAnon:")


def _status_kb(pid: int, key: bytes) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def pss_kb(pid: int) -> int:
    """The process's proportional set size now (`Pss:` of smaps_rollup) in KiB, or -1 if unknown.

    Each page shared by k processes counts 1/k in each, so the PSS of a set of processes adds up to the memory
    they use together (forked workers sharing the interpreter's pages are not counted k times)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children, their children, ...), found through each process's parent id."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, frontier = [], [pid]
    while frontier:
        kids = children.get(frontier.pop(), [])
        found.extend(kids)
        frontier.extend(kids)
    return found
