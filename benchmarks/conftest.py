"""pytest-benchmark wiring: which clients to run, a probe that skips a client that cannot run here, and a
closing per-invocation summary (the console table of pytest-benchmark shows only per-round values)."""

from __future__ import annotations

import functools

import pytest

from benchmarks import harness
from benchmarks.scenarios import CLIENTS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-clients", default=",".join(CLIENTS), help="comma-separated clients to benchmark (default: %(default)s)"
    )


@functools.cache
def _unavailable(client: str) -> str | None:
    return harness.probe(client)


@pytest.fixture
def client(request: pytest.FixtureRequest) -> str:
    """The client under test (parametrized by the test), skipped when not selected or not working here."""
    name = request.param
    if name not in request.config.getoption("--bench-clients").split(","):
        pytest.skip(f"{name} not selected (--bench-clients)")
    problem = _unavailable(name)
    if problem:
        pytest.skip(f"{name} cannot run here: {problem}")
    return name


_SUMMARY: list[tuple[str, str, dict]] = []


def record(group: str, name: str, values: dict) -> None:
    """Add one row to the closing summary."""
    _SUMMARY.append((group, name, values))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _SUMMARY:
        return
    write = terminalreporter.write_line
    write("")
    write("per-invocation summary (medians over rounds; ratios in benchmarks/compare.py):")
    last_group = None
    for group, name, values in _SUMMARY:
        if group != last_group:
            write(f"  {group}")
            last_group = group
        write(f"    {name:<14} " + "  ".join(f"{key}={value}" for key, value in values.items()))
