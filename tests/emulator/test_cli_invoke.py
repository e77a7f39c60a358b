"""`fastric invoke`: run once, the response body on stdout, exit status 0 / 1 / 2."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from emulator_process import EXAMPLES, PROBE, clean_env

SEED = '{"queryStringParameters":{"foo":"bar"}}'
EXPECTED_SEED_BODY = 'queryStringParameters, {"foo":"bar"}'
# The README's first command prints exactly these bytes (compact JSON inside and out, as the seed article shows).
EXPECTED_SEED_OUTPUT = (
    b'{"statusCode":200,"headers":{"Content-Type":"application/json"},'
    b'"body":"queryStringParameters, {\\"foo\\":\\"bar\\"}"}'
)


def fastric_invoke(*args: str, stdin: bytes | None = None, cwd=EXAMPLES, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastric", "invoke", *args],
        cwd=cwd,
        input=stdin,
        env=env or clean_env(),
        capture_output=True,
        timeout=60,
    )


README_LINES = (EXAMPLES.parent / "README.md").read_text().splitlines()


def test_readme_first_command_prints_the_example_response():
    """The README's quick-start command, as written there, prints what the README says it prints."""
    command = next(line for line in README_LINES if line.startswith("python3 -m venv") and "fastric invoke" in line)
    args = shlex.split(command.split("fastric invoke", 1)[1])
    assert args == ["--task-root", "examples", "app.handler", "--event", SEED]
    result = fastric_invoke(*args, cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED_SEED_OUTPUT  # the body byte for byte (no newline: stdout is not a terminal)
    assert EXPECTED_SEED_OUTPUT.decode() in README_LINES
    assert b"REPORT RequestId: " in result.stderr


def test_awslambdaric_bootstrap_event_from_stdin():
    result = fastric_invoke("-", "--", sys.executable, "-m", "awslambdaric", "app.handler", stdin=SEED.encode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["body"] == EXPECTED_SEED_BODY


def test_event_file_and_default_event(tmp_path):
    event_file = tmp_path / "event.json"
    event_file.write_text('{"k": "v"}')
    from_file = fastric_invoke("--event-file", str(event_file), "--", *PROBE)
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout)["event"] == {"k": "v"}
    default = fastric_invoke("--", *PROBE)
    assert json.loads(default.stdout)["event"] == {}


def test_function_error_exits_1_with_the_error_document():
    result = fastric_invoke("--event", '{"action": "error"}', "--", *PROBE)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"errorMessage": "boom", "errorType": "ProbeError"}


def test_crash_exits_1_with_exit_error():
    result = fastric_invoke("--event", '{"action": "exit", "code": 4}', "--", *PROBE)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["errorType"] == "Runtime.ExitError"
    assert document["errorMessage"].endswith("exit status 4")


def test_timeout_exits_1():
    result = fastric_invoke("--timeout", "0.5", "--event", '{"action": "sleep", "seconds": 30}', "--", *PROBE)
    assert result.returncode == 1
    assert json.loads(result.stdout)["errorMessage"].endswith("Task timed out after 0.50 seconds")


def test_streamed_response_is_printed():
    result = fastric_invoke("--event", '{"action": "stream", "chunks": ["one ", "two"]}', "--", *PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"one two"


def test_usage_errors_exit_2():
    assert fastric_invoke("--event", "not json", "--", *PROBE).returncode == 2
    assert fastric_invoke("--event", "{}", "-", "--", *PROBE).returncode == 2
    assert fastric_invoke("a.b", "c.d").returncode == 2
    assert fastric_invoke("--timeout", "0", "app.handler").returncode == 2
