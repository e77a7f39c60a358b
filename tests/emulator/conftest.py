"""Fixtures for the emulator tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator_process import EXAMPLES, PROBE, EmulatorProcess


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


@pytest.fixture
def probe(lambda_function):
    """`probe(**options)`: the scripted probe bootstrap under the `lambda_function` plugin fixture.

    The options are the fixture's; the timeout defaults to 300 s (the CLI's default) and the task root to the
    examples folder, as for the `emulator` fixture.
    """

    def start(**options):
        options.setdefault("timeout", 300.0)
        options.setdefault("task_root", EXAMPLES)
        return lambda_function(command=PROBE, **options)

    return start
