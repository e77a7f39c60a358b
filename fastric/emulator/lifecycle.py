"""The life of one execution environment (an `Instance`), as explicit states and the transitions between them.

```
INITIALIZING ──► READY ──► DRAINING ──► RESETTING ──► EXITED ──► STOPPED
      │            │          │            ▲  ▲          ▲
      │            └──────────┼────────────┘  │          │
      └──► INIT_FAILED ───────┴───────────────┘          │
      (every state but STOPPED ──► EXITED: the process died)
```

- INITIALIZING: spawned (extensions first); invocations wait for the runtime's first `/next`.
- READY: init is over (the runtime and every extension called next); takes invocations.
- DRAINING: being replaced (`--watch`): finishes its invocations in flight, takes no new ones, then stops.
- INIT_FAILED: the runtime posted `/init/error` (or an extension failed the init): takes nothing more, and is
  killed after a grace period if it does not exit by itself.
- RESETTING: the emulator is stopping it (a timeout, an extension that did not finish, or the emulator's own
  shutdown): the shutdown sequence runs (SIGTERM or SIGKILL, then SHUTDOWN for the extensions).
- EXITED: the runtime process is gone; its extensions may still be shutting down.
- STOPPED: the runtime and its extensions are all gone.

Each `Sandbox` decision (init done, init failed, reset, reload, shutdown, process exit) is one `enter()` call; a
transition the table does not allow is a bug and raises `IllegalTransition`.
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    INITIALIZING = "initializing"
    READY = "ready"
    DRAINING = "draining"
    INIT_FAILED = "init failed"
    RESETTING = "resetting"
    EXITED = "exited"
    STOPPED = "stopped"


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.INITIALIZING: frozenset({Phase.READY, Phase.DRAINING, Phase.INIT_FAILED, Phase.RESETTING, Phase.EXITED}),
    Phase.READY: frozenset({Phase.DRAINING, Phase.RESETTING, Phase.EXITED}),
    Phase.DRAINING: frozenset({Phase.RESETTING, Phase.EXITED}),
    Phase.INIT_FAILED: frozenset({Phase.RESETTING, Phase.EXITED}),
    Phase.RESETTING: frozenset({Phase.EXITED}),
    Phase.EXITED: frozenset({Phase.STOPPED}),
    Phase.STOPPED: frozenset(),
}

TAKES_WORK = frozenset({Phase.INITIALIZING, Phase.READY})
# A runtime polling `/next` in these states is told to exit (500 Runtime.Unavailable), as RAPID does.
REFUSES_NEXT = frozenset({Phase.INIT_FAILED, Phase.RESETTING, Phase.EXITED, Phase.STOPPED})
# States the emulator put it in: its death is not an init failure to keep for the next invocation.
ENDED_BY_EMULATOR = frozenset({Phase.DRAINING, Phase.INIT_FAILED, Phase.RESETTING})


class IllegalTransition(RuntimeError):
    """A transition the table does not allow."""


class Lifecycle:
    """The current phase of one environment and its transitions."""

    def __init__(self) -> None:
        self.phase = Phase.INITIALIZING
        self.ended_by_emulator = False  # set when it leaves for EXITED from one of ENDED_BY_EMULATOR

    def can_enter(self, phase: Phase) -> bool:
        return phase in TRANSITIONS[self.phase]

    def enter(self, phase: Phase) -> bool:
        """Move to `phase`; False (and no change) if already there; IllegalTransition if not allowed."""
        if phase is self.phase:
            return False
        if phase not in TRANSITIONS[self.phase]:
            raise IllegalTransition(f"{self.phase.value} -> {phase.value}")
        if phase is Phase.EXITED:
            self.ended_by_emulator = self.phase in ENDED_BY_EMULATOR
        self.phase = phase
        return True

    def enter_if_allowed(self, phase: Phase) -> bool:
        """Move to `phase` when the table allows it (a later, stronger decision already taken wins)."""
        return self.can_enter(phase) and self.enter(phase)

    @property
    def takes_work(self) -> bool:
        return self.phase in TAKES_WORK

    @property
    def refuses_next(self) -> bool:
        return self.phase in REFUSES_NEXT
