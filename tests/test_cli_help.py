"""The top-level `fastric` command: its help, and the hint when a subcommand was probably forgotten."""

from __future__ import annotations

import os
import subprocess
import sys

from fastric import __version__


def fastric(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("_HANDLER", "AWS_LAMBDA_RUNTIME_API")}
    return subprocess.run([sys.executable, "-m", "fastric", *args], env=env, capture_output=True, text=True, timeout=30)


def test_help_lists_every_form_and_the_exit_statuses():
    result = fastric("--help")
    assert result.returncode == 0
    usage = result.stdout
    for form in (
        "fastric HANDLER",
        "fastric run [HANDLER]",
        "fastric emulate [options] [HANDLER | -- COMMAND ...]",
        "fastric invoke [options] [HANDLER | -- COMMAND ...]",
        "fastric -V | --version",
        "fastric -h | --help",
    ):
        assert form in usage
    assert "2 bad usage" in usage and "130 interrupted" in usage


def test_version():
    result = fastric("--version")
    assert (result.returncode, result.stdout) == (0, f"fastric {__version__}\n")


def test_a_forgotten_subcommand_is_a_usage_error_with_a_hint():
    result = fastric("--task-root", "examples", "app.handler")
    assert result.returncode == 2
    assert "unknown option --task-root" in result.stderr
    assert "`fastric invoke --task-root examples app.handler`" in result.stderr
    assert "`fastric emulate --task-root examples app.handler`" in result.stderr


def test_a_handler_without_a_runtime_api_points_to_invoke_and_emulate():
    result = fastric("app.handler")
    assert result.returncode == 1
    assert "AWS_LAMBDA_RUNTIME_API is not set" in result.stderr
    assert "`fastric invoke app.handler`" in result.stderr
