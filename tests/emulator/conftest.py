"""Fixtures for the emulator tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator_process import EXAMPLES, EmulatorProcess


@pytest.fixture
def emulator():
    """A factory: `emulator(*args, cwd=..., env=...)` starts an emulator; all are stopped at teardown."""
    started: list[EmulatorProcess] = []

    def start(*args: str, cwd: Path = EXAMPLES, env: dict[str, str] | None = None) -> EmulatorProcess:
        process = EmulatorProcess(list(args), cwd, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
