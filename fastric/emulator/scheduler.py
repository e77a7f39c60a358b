"""Concurrency slots: invocations run at most N at a time, the rest wait in arrival order (never refused)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from .invocation import Invocation


class Scheduler:
    """Runs `run(invocation)` for submitted invocations, `slots` at a time, first come first served."""

    def __init__(self, slots: int, run: Callable[[Invocation], Awaitable[None]]):
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
        task = asyncio.get_running_loop().create_task(self._run(invocation))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(self, invocation: Invocation) -> None:
        try:
            await self.run(invocation)
        finally:
            self._release()

    def _release(self) -> None:
        while self.waiting:
            invocation = self.waiting.popleft()
            if not invocation.abandoned:
                self._start(invocation)
                return
        self.free += 1
