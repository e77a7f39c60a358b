"""fastric/lambda-entrypoint.sh: the container entrypoint and Lambda `bootstrap`.

Its two branches (Runtime API present: the runtime loop; absent: the emulator on 0.0.0.0:8080) and the `_HANDLER`
fallback, first with a recording stand-in for `python3` (exact argv, environment, and that the script `exec`s), then
for real: the fastric runtime against the recording Runtime API, and the emulator in a network namespace of its own.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from namespaces import ContainerProcess, missing_prerequisites, network_namespace_command, post_in_network_of
from runtime_api import RuntimeAPIServer, base_env

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = REPO / "fastric" / "lambda-entrypoint.sh"
EXAMPLES = REPO / "examples"
EVENT = {"queryStringParameters": {"foo": "bar"}}
INVOKE_URL = "http://127.0.0.1:8080/2015-03-31/functions/function/invocations"

RECORDING_PYTHON = """#!/bin/sh
# Stands in for python3: records how the entrypoint ran it.
{ printf '%s\\n' "$$"; printf '%s\\n' "${_HANDLER-<unset>}"; printf '%s\\n' "$@"; } > "$RECORD"
exit 7
"""


def expected_response() -> dict:
    """What examples/app.py returns for EVENT, computed by calling it."""
    namespace: dict = {}
    exec(compile((EXAMPLES / "app.py").read_text(), "app.py", "exec"), namespace)
    return namespace["handler"](EVENT, None)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_LAMBDA_RUNTIME_API", "_HANDLER", "FASTRIC_PYTHON")}
    env.update(extra)
    return env


def run_recorded(tmp_path: Path, args: list[str], *, python_name: str = "python3", **env: str) -> dict:
    """Run the entrypoint with a recording `python_name` first on PATH; return what it recorded."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / python_name
    fake.write_text(RECORDING_PYTHON)
    fake.chmod(0o755)
    record = tmp_path / "record"
    full_env = clean_env(PATH=f"{bin_dir}:/usr/bin:/bin", RECORD=str(record), **env)
    proc = subprocess.Popen([str(ENTRYPOINT), *args], env=full_env, cwd=tmp_path)
    assert proc.wait(timeout=10) == 7  # the stand-in's status comes back unchanged
    pid, handler, *argv = record.read_text().splitlines()
    return {"exec": int(pid) == proc.pid, "_HANDLER": handler, "argv": argv}


# -- dispatch, with a recording python3 ------------------------------------------------------


def test_the_script_is_executable_for_everyone():
    """Lambda runs the bootstrap as a non-root user; the wheel keeps the mode the repository gives the file."""
    mode = ENTRYPOINT.stat().st_mode
    assert mode & stat.S_IXUSR and mode & stat.S_IXGRP and mode & stat.S_IXOTH
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")


def test_with_a_runtime_api_it_execs_the_runtime_loop(tmp_path):
    record = run_recorded(tmp_path, ["app.handler"], AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001")
    assert record == {"exec": True, "_HANDLER": "app.handler", "argv": ["-m", "fastric", "app.handler"]}


def test_without_a_runtime_api_it_execs_the_emulator_on_port_8080(tmp_path):
    record = run_recorded(tmp_path, ["app.handler"])
    assert record == {
        "exec": True,
        "_HANDLER": "app.handler",
        "argv": ["-m", "fastric", "emulate", "--host", "0.0.0.0", "--port", "8080", "app.handler"],
    }


def test_an_empty_runtime_api_counts_as_absent(tmp_path):
    record = run_recorded(tmp_path, ["app.handler"], AWS_LAMBDA_RUNTIME_API="")
    assert record["argv"][:3] == ["-m", "fastric", "emulate"]


def test_with_no_argument_the_runtime_reads_HANDLER(tmp_path):
    """As /var/runtime/bootstrap on provided.al2023: no argument, Lambda sets _HANDLER; fastric falls back to it."""
    record = run_recorded(tmp_path, [], AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001", _HANDLER="app.handler")
    assert record == {"exec": True, "_HANDLER": "app.handler", "argv": ["-m", "fastric"]}


def test_with_no_argument_the_emulator_gets_HANDLER_through_the_environment(tmp_path):
    record = run_recorded(tmp_path, [], _HANDLER="app.handler")
    assert record == {
        "exec": True,
        "_HANDLER": "app.handler",
        "argv": ["-m", "fastric", "emulate", "--host", "0.0.0.0", "--port", "8080"],
    }


def test_emulator_options_pass_through_and_are_not_taken_for_a_handler(tmp_path):
    record = run_recorded(tmp_path, ["--", "./bootstrap", "arg one"])
    assert record["_HANDLER"] == "<unset>"
    assert record["argv"][-3:] == ["--", "./bootstrap", "arg one"]


def test_FASTRIC_PYTHON_names_the_interpreter(tmp_path):
    record = run_recorded(
        tmp_path,
        ["app.handler"],
        python_name="python3.12",
        FASTRIC_PYTHON="python3.12",
        AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001",
    )
    assert record["argv"] == ["-m", "fastric", "app.handler"]


# -- for real --------------------------------------------------------------------------------


def run_lambda_branch(args: list[str], **env: str) -> tuple[subprocess.CompletedProcess, list, str]:
    """Run the entrypoint with the Runtime API set, against the recording server, on one invocation."""
    with RuntimeAPIServer() as server:
        request_id = server.add_invocation(EVENT)
        full_env = base_env(server.address)
        full_env.update(FASTRIC_PYTHON=sys.executable, **env)
        run = subprocess.run([str(ENTRYPOINT), *args], env=full_env, cwd=EXAMPLES, capture_output=True, timeout=30)
    return run, server.requests, request_id


def test_lambda_branch_runs_the_function(tmp_path):
    run, requests, request_id = run_lambda_branch(["app.handler"])
    responses = [r for r in requests if r.path.endswith(f"/invocation/{request_id}/response")]
    assert len(responses) == 1, run.stderr.decode(errors="replace")
    assert responses[0].json() == expected_response()


def test_bootstrap_without_argument_runs_the_HANDLER_function(tmp_path):
    bootstrap = tmp_path / "bootstrap"  # what /var/runtime/bootstrap is in the image
    bootstrap.symlink_to(ENTRYPOINT)
    with RuntimeAPIServer() as server:
        request_id = server.add_invocation(EVENT)
        env = base_env(server.address)
        env.update(FASTRIC_PYTHON=sys.executable, _HANDLER="app.handler")
        run = subprocess.run([str(bootstrap)], env=env, cwd=EXAMPLES, capture_output=True, timeout=30)
    responses = server.requests_to(f"/invocation/{request_id}/response")
    assert len(responses) == 1, run.stderr.decode(errors="replace")
    assert responses[0].json() == expected_response()


def test_emulator_branch_serves_the_rie_invoke_endpoint_on_8080(tmp_path):
    """`docker run -p 9000:8080 IMAGE` then curl: the emulator listens on 0.0.0.0:8080 (in a network namespace
    of its own here, as in a container, so the fixed port collides with nothing)."""
    reason = missing_prerequisites()
    if reason:
        pytest.skip(f"network namespace: {reason}")
    env = clean_env(FASTRIC_PYTHON=sys.executable, PYTHONDONTWRITEBYTECODE="1")
    command = network_namespace_command([str(ENTRYPOINT), "app.handler"])
    with ContainerProcess(command, tmp_path, "emulator", env=env, cwd=EXAMPLES) as emulator:
        answer = post_in_network_of(emulator.init_pid(), INVOKE_URL, json.dumps(EVENT).encode())
        assert answer["status"] == 200, emulator.output()
        assert json.loads(answer["body"]) == expected_response()


# -- AWS_LAMBDA_EXEC_WRAPPER, as on the managed runtimes ------------------------------------

RECORDING_WRAPPER = """#!/bin/sh
# Stands in for a wrapper script: records its arguments, then runs them as a wrapper must.
printf '%s\\n' "$@" > "$RECORD.wrapper"
exec "$@"
"""


def recording_wrapper(tmp_path: Path) -> Path:
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(RECORDING_WRAPPER)
    wrapper.chmod(0o755)
    return wrapper


def test_with_AWS_LAMBDA_EXEC_WRAPPER_the_runtime_starts_through_the_wrapper(tmp_path):
    """As the managed runtimes do: WRAPPER INTERPRETER ARGS..., and the wrapper execs the runtime in place."""
    wrapper = recording_wrapper(tmp_path)
    record = run_recorded(
        tmp_path, ["app.handler"], AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001", AWS_LAMBDA_EXEC_WRAPPER=str(wrapper)
    )
    assert (tmp_path / "record.wrapper").read_text().splitlines() == ["python3", "-m", "fastric", "app.handler"]
    assert record == {"exec": True, "_HANDLER": "app.handler", "argv": ["-m", "fastric", "app.handler"]}


def test_the_wrapper_gets_the_FASTRIC_PYTHON_interpreter(tmp_path):
    wrapper = recording_wrapper(tmp_path)
    env = dict(AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001", AWS_LAMBDA_EXEC_WRAPPER=str(wrapper), _HANDLER="app.handler")
    record = run_recorded(tmp_path, [], python_name="python3.12", FASTRIC_PYTHON="python3.12", **env)
    assert (tmp_path / "record.wrapper").read_text().splitlines() == ["python3.12", "-m", "fastric"]
    assert record["argv"] == ["-m", "fastric"]


def test_an_empty_AWS_LAMBDA_EXEC_WRAPPER_counts_as_unset(tmp_path):
    record = run_recorded(
        tmp_path, ["app.handler"], AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001", AWS_LAMBDA_EXEC_WRAPPER=""
    )
    assert record == {"exec": True, "_HANDLER": "app.handler", "argv": ["-m", "fastric", "app.handler"]}


@pytest.mark.parametrize(
    "exists, status, message", [(False, 127, "does not exist"), (True, 126, "is not an executable")]
)
def test_a_wrapper_that_cannot_run_fails_with_the_managed_runtimes_status(tmp_path, exists, status, message):
    wrapper = tmp_path / "wrapper"
    if exists:
        wrapper.write_text(RECORDING_WRAPPER)
        wrapper.chmod(0o644)
    env = clean_env(AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001", AWS_LAMBDA_EXEC_WRAPPER=str(wrapper))
    run = subprocess.run([str(ENTRYPOINT), "app.handler"], env=env, capture_output=True, timeout=10)
    assert (run.returncode, run.stderr.decode()) == (status, f"{wrapper}: {message}\n")


def test_under_the_emulator_the_wrapper_starts_the_function(tmp_path):
    """`docker run -e AWS_LAMBDA_EXEC_WRAPPER=… IMAGE app.handler`: the emulator's bootstrap is the wrapper."""
    wrapper = recording_wrapper(tmp_path)
    record = run_recorded(tmp_path, ["app.handler"], AWS_LAMBDA_EXEC_WRAPPER=str(wrapper))
    assert record["argv"] == [
        "-m", "fastric", "emulate", "--host", "0.0.0.0", "--port", "8080",
        "--", str(wrapper), "python3", "-m", "fastric", "app.handler",
    ]  # fmt: skip


def test_emulator_options_are_passed_on_without_the_wrapper(tmp_path):
    wrapper = recording_wrapper(tmp_path)
    record = run_recorded(tmp_path, ["--", "./bootstrap"], _HANDLER="app.handler", AWS_LAMBDA_EXEC_WRAPPER=str(wrapper))
    assert record["argv"] == ["-m", "fastric", "emulate", "--host", "0.0.0.0", "--port", "8080", "--", "./bootstrap"]


def test_lambda_branch_runs_the_function_through_the_wrapper(tmp_path):
    wrapper = recording_wrapper(tmp_path)
    run, requests, request_id = run_lambda_branch(
        ["app.handler"], AWS_LAMBDA_EXEC_WRAPPER=str(wrapper), RECORD=str(tmp_path / "record")
    )
    responses = [r for r in requests if r.path.endswith(f"/invocation/{request_id}/response")]
    assert len(responses) == 1, run.stderr.decode(errors="replace")
    assert responses[0].json() == expected_response()
    assert (tmp_path / "record.wrapper").read_text().splitlines() == [sys.executable, "-m", "fastric", "app.handler"]


def test_emulator_branch_runs_the_function_through_the_wrapper(tmp_path):
    reason = missing_prerequisites()
    if reason:
        pytest.skip(f"network namespace: {reason}")
    wrapper = recording_wrapper(tmp_path)
    env = clean_env(
        FASTRIC_PYTHON=sys.executable,
        PYTHONDONTWRITEBYTECODE="1",
        AWS_LAMBDA_EXEC_WRAPPER=str(wrapper),
        RECORD=str(tmp_path / "record"),
    )
    command = network_namespace_command([str(ENTRYPOINT), "app.handler"])
    with ContainerProcess(command, tmp_path, "emulator", env=env, cwd=EXAMPLES) as emulator:
        answer = post_in_network_of(emulator.init_pid(), INVOKE_URL, json.dumps(EVENT).encode())
        assert answer["status"] == 200, emulator.output()
        assert json.loads(answer["body"]) == expected_response()
    assert (tmp_path / "record.wrapper").read_text().splitlines() == [sys.executable, "-m", "fastric", "app.handler"]
