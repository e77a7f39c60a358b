"""The `fastric` command as a person uses it: every usage error exits 2, a subcommand typo suggests the
subcommand, `--help` works on every subcommand."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def fastric(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("_HANDLER", "AWS_LAMBDA_RUNTIME_API")}
    return subprocess.run([sys.executable, "-m", "fastric", *args], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("run",),
        ("layer",),
        ("layer", "bulid"),
        ("emulat",),
        ("invok", "app.handler"),
        ("--bogus",),
        ("emulate", "--bogus"),
        ("emulate", "a.b", "c.d"),
        ("invoke", "--timeout", "0", "app.handler"),
        ("invoke", "--event", "not json", "app.handler"),
        ("layer", "build", "--python", "2.7"),
    ],
)
def test_usage_errors_exit_2(args):
    result = fastric(*args)
    assert result.returncode == 2, (args, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_a_subcommand_typo_suggests_the_subcommand():
    result = fastric("emulat", "--port", "9001")
    assert "did you mean `fastric emulate --port 9001`?" in result.stderr
    assert "invoke emulat" not in result.stderr  # not taken as a handler
    assert "did you mean `fastric invoke app.handler`?" in fastric("invok", "app.handler").stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("run", "--help"),
        ("emulate", "--help"),
        ("invoke", "--help"),
        ("layer", "--help"),
        ("layer", "build", "--help"),
    ],
)
def test_help_works_on_every_subcommand(args):
    result = fastric(*args)
    assert result.returncode == 0, (args, result.stderr)
    assert result.stdout.startswith("usage: fastric"), result.stdout[:100]
