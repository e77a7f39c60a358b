"""Concurrency slots: invocations run at most N at a time, the rest wait in arrival order (never refused)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from .invocation import Invocation


class Scheduler:
    """Runs `run(invocation)` for submitted invocations, `slots` at a time, first come first served."""

    def __init__(self, slots: int, run: Callable[[Invocation], Coroutine[Any, Any, None]]):
        self.free = slots
        self.run = run
        self.waiting: deque[Invocation] = deque()
        self.running: set[asyncio.Task] = set()

    def submit(self, invocation: Invocation) -> None:
        if self.free > 0:
            self.free -= 1
            self._start(invocation)
        else:
            self.waiting.append(invocation)

    def _start(self, invocation: Invocation) -> None:
        task = invocation.done.get_loop().create_task(self.run(invocation))
        self.running.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        """A run is over (or was cancelled): its slot goes to the next invocation waiting."""
        self.running.discard(task)
        self._release()

    def _release(self) -> None:
        while self.waiting:
            invocation = self.waiting.popleft()
            if not invocation.abandoned:
                self._start(invocation)
                return
        self.free += 1
