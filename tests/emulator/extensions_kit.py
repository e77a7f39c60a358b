"""Helpers for the extension tests: extension directories, the extension bootstrap, the probes' records."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

from emulator_process import clean_env

HERE = Path(__file__).resolve().parent
BOOTSTRAP = [sys.executable, str(HERE / "extension_bootstrap.py")]
PROBE = HERE / "extension_probe.py"


def add_extension(directory: Path, name: str, **env: str) -> Path:
    """An executable `directory/name` that runs the probe extension as NAME, with `env` set."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    settings = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())
    path.write_text(f'#!/bin/sh\n{settings}exec {shlex.quote(sys.executable)} {shlex.quote(str(PROBE))} "{name}"\n')
    os.chmod(path, 0o755)
    return path


def records(path: Path, kind: str | None = None, name: str | None = None) -> list[dict]:
    """The probe extensions' records, optionally of one kind and one extension."""
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in found if (kind is None or r["kind"] == kind) and (name is None or r["name"] == name)]


def wait_records(path: Path, kind: str, name: str | None = None, count: int = 1, timeout: float = 10) -> list[dict]:
    """The records of `kind` once there are at least `count` of them (or whatever there is after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        found = records(path, kind, name)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def environment(record_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(EXT_RECORD=str(record_path), **extra)


def index_of(lines: list[str], predicate) -> int:
    """The index of the first line matching `predicate`; -1 if none."""
    return next((i for i, line in enumerate(lines) if predicate(line)), -1)
