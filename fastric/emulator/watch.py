"""`--watch`: notice edits under the task root by polling file sizes and modification times.

A scan walks the task root (skipping caches, VCS and dependency directories) in a worker thread, so the
event loop keeps serving invocations. A scan of 3 000 files costs ~13 ms of CPU (~3% of a core at one scan
every 0.4 s); larger trees are scanned less often, so that scanning never takes more than ~4% of a core.
Polling needs no dependency and works the same on every file system (network mounts, containers).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

SCAN_INTERVAL = 0.4  # seconds between two scans, at least
IDLE_FACTOR = 25  # and at least 25 times as long as the last scan took: big trees cost at most ~4% of a core
SKIPPED_DIRS = frozenset(
    {"__pycache__", ".git", ".hg", ".svn", ".venv", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
SKIPPED_SUFFIXES = (".pyc", ".swp", ".swx", "~")  # bytecode, editors' swap and backup files

Snapshot = dict[str, tuple[int, int]]  # relative path -> (mtime_ns, size)


def scan(root: str) -> Snapshot:
    """The size and modification time of every watched file under `root` (symlinked directories not followed)."""
    found: Snapshot = {}
    prefix = len(os.path.join(root, ""))  # entry paths start with root + separator
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:  # removed or unreadable meanwhile
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        pending.append(entry.path)
                elif not entry.name.endswith(SKIPPED_SUFFIXES):
                    stat = entry.stat()
                    found[entry.path[prefix:]] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue
    return found


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    """Paths added, removed or modified between two snapshots, sorted."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def describe(paths: list[str], shown: int = 3) -> str:
    """`a.py`, `a.py, b.py` or `a.py, b.py, c.py and 4 more`."""
    text = ", ".join(paths[:shown])
    return f"{text} and {len(paths) - shown} more" if len(paths) > shown else text


class TaskRootWatcher:
    """Calls `on_change(paths)` when files under `root` change; the next scan starts after it returns."""

    def __init__(self, root: str, on_change: Callable[[list[str]], Awaitable[None]], interval: float = SCAN_INTERVAL):
        self.root = root
        self.on_change = on_change
        self.interval = interval
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        snapshot, took = await self._scan()
        while True:
            await asyncio.sleep(max(self.interval, IDLE_FACTOR * took))
            current, took = await self._scan()
            changes = changed_files(snapshot, current)
            if not changes:
                continue
            await self.on_change(changes)
            # What changed while `on_change` ran (a reload waiting for an invocation in flight) was seen by it.
            snapshot, took = await self._scan()

    async def _scan(self) -> tuple[Snapshot, float]:
        began = time.monotonic()
        snapshot = await asyncio.to_thread(scan, self.root)
        return snapshot, time.monotonic() - began
