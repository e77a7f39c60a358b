"""`fastric emulate` / `fastric invoke` options: validation, environment defaults, usage text, output layout."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time

import pytest
from emulator_process import EXAMPLES, INVOKE_PATH, PROBE, clean_env
from test_cli_invoke import fastric_invoke


def fastric(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastric", *args], env=env or clean_env(), capture_output=True, timeout=60
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "0", "-1", "soon"])
@pytest.mark.parametrize("command", ["emulate", "invoke"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_a_usage_error(command, value):
    where = ["--port", "0"] if command == "emulate" else ["--event", "{}"]
    result = fastric(command, *where, f"--timeout={value}", "--", *PROBE)
    assert result.returncode == 2, result.stderr
    assert b"--timeout" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "0", "x"])
def test_a_bad_timeout_in_the_environment_is_a_usage_error(value):
    result = fastric("invoke", "--", *PROBE, env=clean_env(AWS_LAMBDA_FUNCTION_TIMEOUT=value))
    assert result.returncode == 2
    assert b"$AWS_LAMBDA_FUNCTION_TIMEOUT" in result.stderr


def test_a_bad_init_timeout_is_a_usage_error():
    assert fastric("invoke", "--init-timeout", "nan", "--", *PROBE).returncode == 2


def test_a_malformed_memory_size_in_the_environment():
    env = clean_env(AWS_LAMBDA_FUNCTION_MEMORY_SIZE="lots", AWS_LAMBDA_FUNCTION_TIMEOUT="nan")
    for command in ("emulate", "invoke"):
        shown = fastric(command, "--help", env=env)
        assert shown.returncode == 0 and b"usage: fastric " + command.encode() in shown.stdout
    # Given on the command line, the variables are never read.
    given = fastric_invoke("--memory", "256", "--timeout", "30", "--", *PROBE, env=env)
    assert given.returncode == 0, given.stderr
    assert json.loads(given.stdout)["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    # Used as the default, it is refused as a usage error.
    used = fastric_invoke("--timeout", "30", "--", *PROBE, env=env)
    assert used.returncode == 2
    assert b"$AWS_LAMBDA_FUNCTION_MEMORY_SIZE" in used.stderr


def test_numbers_from_the_environment_are_used():
    env = clean_env(AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512", AWS_LAMBDA_FUNCTION_TIMEOUT="0.5")
    result = fastric_invoke("--event", '{"action": "sleep", "seconds": 30}', "--", *PROBE, env=env)
    assert result.returncode == 1
    assert json.loads(result.stdout)["errorMessage"].endswith("Task timed out after 0.50 seconds")
    assert b"Memory Size: 512 MB" in result.stderr


@pytest.mark.parametrize("option", [["--host", "0.0.0.0"], ["--port", "9001"], ["--port=0"]])
def test_invoke_refuses_host_and_port(option):
    result = fastric_invoke(*option, "--", *PROBE)
    assert result.returncode == 2
    assert b"--host and --port are `fastric emulate` options" in result.stderr


def test_usage_lines_show_the_command_form():
    emulate = fastric("emulate", "--help").stdout.decode()
    assert emulate.startswith("usage: fastric emulate [options] [HANDLER | -- COMMAND ...]\n")
    invoke = fastric("invoke", "--help").stdout.decode()
    assert invoke.startswith("usage: fastric invoke [options] [HANDLER] [--event JSON | --event-file PATH | -]")
    assert "[-- COMMAND ...]" in invoke
    assert "--host" not in invoke.replace("--host and --port are", "")
    assert "--init-timeout" in emulate and "--init-timeout" in invoke


def test_head_gets_headers_only(emulator):
    emu = emulator("--", *PROBE)
    with socket.create_connection(("127.0.0.1", emu.port), timeout=20) as sock:
        # A HEAD, then an invoke on the same connection: any body bytes after the HEAD's headers
        # would come before the second response.
        body = b'{"n": 1}'
        sock.sendall(
            f"HEAD {INVOKE_PATH} HTTP/1.1\r\nHost: x\r\n\r\n"
            f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        answer = b""
        while answer.count(b"HTTP/1.1 ") < 2 or not answer.endswith(b"}"):
            data = sock.recv(65536)
            assert data, answer
            answer += data
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert b"\r\nContent-Length: " in head and b"Content-Length: 0\r\n" not in head + b"\r\n"
    assert rest.startswith(b"HTTP/1.1 200 ")
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["event"] == {"n": 1}


def run_on_a_terminal(*args: str) -> bytes:
    """`fastric invoke ARGS` with stdout and stderr on one pseudo-terminal, as in an interactive shell."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "fastric", "invoke", *args],
        cwd=EXAMPLES,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output, deadline = b"", time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if not ready:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            output += data
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
        process.wait()
    return output.replace(b"\r\n", b"\n")


@pytest.mark.parametrize(
    "event, shown",
    [
        ('{"action": "stream", "chunks": ["one ", "two"]}', b"one two"),
        ('{"action": "error"}', b'{"errorMessage": "boom", "errorType": "ProbeError"}'),
    ],
    ids=["response", "function-error"],
)
def test_on_a_terminal_the_body_ends_its_line_before_the_platform_lines(event, shown):
    output = run_on_a_terminal("--event", event, "--", *PROBE)
    assert shown + b"\nEND RequestId: " in output, output


def test_off_a_terminal_stdout_is_the_body_byte_for_byte():
    result = fastric_invoke("--event", '{"action": "error"}', "--", *PROBE)
    assert result.stdout == b'{"errorMessage": "boom", "errorType": "ProbeError"}'
