"""Error paths on both sides: RAPID's answers to the runtime, and what the invoker gets for each failure."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from emulator_process import PROBE, clean_env, function_error, pid_alive, report_fields

LIMIT = 6_291_556
INVALID_REQUEST_ID = {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
TOO_LARGE = {
    "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
    "errorType": "RequestEntityTooLarge",
}


def notes(fn):
    return fn.invoke({"action": "notes"}).payload["notes"]


def assert_function_error(response, error_type, status=200):
    """For the tests that speak HTTP to the invoke endpoint themselves."""
    assert response.status == status, response
    assert response.headers["x-amz-function-error"] == "Unhandled"
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["errorType"] == error_type
    return document


def test_function_error_from_awslambdaric(lambda_function, tmp_path):
    (tmp_path / "fails.py").write_text("def handler(event, context):\n    raise ValueError('bad ' + event['x'])\n")
    fn = lambda_function("fails.handler", runtime="awslambdaric", task_root=tmp_path)
    document = function_error(fn.invoke({"x": "input"}), "ValueError")
    assert document["errorMessage"] == "bad input"
    assert document["requestId"]
    assert isinstance(document["stackTrace"], list)


def test_function_error_posted_to_error(probe):
    fn = probe()
    result = fn.invoke({"action": "error"})
    assert function_error(result, "ProbeError") == {"errorMessage": "boom", "errorType": "ProbeError"}
    assert fn.invoke({"ok": 1}).status_code == 200  # the runtime lives on


def test_unknown_request_id_gets_400(probe):
    fn = probe()
    assert fn.invoke({"action": "unknown_id"}).payload == {"ok": True}
    assert notes(fn) == [[400, INVALID_REQUEST_ID]]


def test_posts_after_the_response_get_403(probe):
    fn = probe()
    result = fn.invoke({"action": "double_post"})
    assert result.status_code == 200 and result.payload == {"first": True}
    (first, second, late_error) = notes(fn)
    assert first == [202, {"status": "OK"}]
    assert second[0] == 403 and second[1]["errorType"] == "InvalidStateTransition"
    assert late_error[0] == 403 and late_error[1]["errorType"] == "InvalidStateTransition"


def test_mismatched_invocation_id_is_refused(probe):
    fn = probe()
    assert fn.invoke({"action": "wrong_invocation_id"}).payload == {"ok": True}
    assert notes(fn) == [[400, {"errorMessage": "Invalid invocation ID", "errorType": "InvalidInvocationID"}]]


def test_init_error_after_init_gets_403(probe):
    fn = probe()
    assert fn.invoke({"action": "init_error_late"}).payload == {"ok": True}
    ((status, document),) = notes(fn)
    assert status == 403 and document["errorType"] == "InvalidStateTransition"


def test_invalid_response_mode(probe):
    fn = probe()
    function_error(fn.invoke({"action": "bad_mode"}), "Runtime.InvalidResponseModeHeader")
    assert notes(fn) == [
        [400, {"errorMessage": "Invalid function response mode", "errorType": "InvalidFunctionResponseMode"}]
    ]


def test_response_at_the_limit_passes_and_one_byte_more_is_413(probe):
    fn = probe()
    at_limit = fn.invoke({"action": "big_response", "size": LIMIT})
    assert at_limit.status_code == 200 and len(at_limit.raw) == LIMIT
    over = fn.invoke({"action": "big_response", "size": LIMIT + 1})
    document = function_error(over, "Function.ResponseSizeTooLarge")
    assert "(6291557 bytes)" in document["errorMessage"]
    assert notes(fn) == [[202, {"status": "OK"}], [413, TOO_LARGE], [403, notes_403_body()]]


def notes_403_body():
    return {
        "errorMessage": "State transition from RuntimeResponseSentState to InvocationErrorResponse failed for "
        "runtime. Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }


def test_request_over_the_limit_is_413_and_never_truncated(probe):
    fn = probe()
    wrapper = len(b'{"action":"size","data":""}')
    exact = b'{"action":"size","data":"' + b"a" * (LIMIT - wrapper) + b'"}'
    assert len(exact) == LIMIT
    result = fn.invoke(payload=exact)
    assert result.status_code == 200 and result.payload == {"size": LIMIT - wrapper}
    over = fn.invoke(payload=exact[:-2] + b'a"}')
    assert over.status_code == 413
    assert over.payload == TOO_LARGE
    assert fn.invoke({"action": "size", "data": "ok"}).payload == {"size": 2}


def test_oversized_request_with_expect_continue_is_refused_before_the_body(probe):
    fn = probe()
    with socket.create_connection(("127.0.0.1", fn.invoke_port), timeout=10) as sock:
        sock.sendall(
            b"POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 7000000\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_timeout_kills_the_bootstrap_and_the_next_invoke_reinits(probe):
    fn = probe(timeout=1)
    first_pid = fn.invoke({}).payload["pid"]
    result = fn.invoke({"action": "sleep", "seconds": 30})
    document = function_error(result, "Sandbox.Timedout")
    assert document["errorMessage"] == f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds"
    assert report_fields(result)["Status"] == "timeout"
    after = fn.invoke({})
    assert after.status_code == 200
    assert after.payload["pid"] != first_pid
    assert not pid_alive(first_pid)


def test_crash_is_502_exit_error_and_the_next_invoke_reinits(probe):
    fn = probe()
    first_pid = fn.invoke({}).payload["pid"]
    result = fn.invoke({"action": "exit", "code": 3})
    document = function_error(result, "Runtime.ExitError", status=502)
    request_id = result.request_id
    assert document["errorMessage"] == f"RequestId: {request_id} Error: Runtime exited with error: exit status 3"
    assert "Status: error\tError Type: Runtime.ExitError" in result.logs.splitlines()[-1]
    after = fn.invoke({})
    assert after.status_code == 200 and after.payload["pid"] != first_pid


def test_init_error_document_is_502_on_every_invoke(lambda_function, tmp_path):
    fn = lambda_function("missing_module.handler", runtime="awslambdaric", task_root=tmp_path)
    for _ in range(2):  # the eager start's failure, then a fresh init that fails again
        document = function_error(fn.invoke({}), "Runtime.ImportModuleError", status=502)
        assert "missing_module" in document["errorMessage"]


def test_probe_init_error_with_header(probe):
    fn = probe(env={"PROBE_INIT": "error"})
    document = function_error(fn.invoke({}), "Runtime.ProbeInit", status=502)
    assert document == {"errorMessage": "cannot init", "errorType": "Runtime.ProbeInit"}


def test_exit_during_init_is_502_exit_error(probe):
    fn = probe(env={"PROBE_INIT": "exit"})
    for _ in range(2):
        document = function_error(fn.invoke({}), "Runtime.ExitError", status=502)
        assert document["errorMessage"].endswith("Runtime exited with error: exit status 7")


def test_init_that_never_finishes_times_out(emulator):
    emu = emulator("--timeout", "1", "--init-timeout", "0.5", "--", *PROBE, env=clean_env(PROBE_INIT="hang"))
    assert_function_error(emu.invoke({}), "Sandbox.Timedout")


def test_missing_bootstrap_is_invalid_entrypoint(lambda_function, tmp_path):
    fn = lambda_function(command=[str(tmp_path / "no-such-program")], task_root=tmp_path)
    document = function_error(fn.invoke({}), "Runtime.InvalidEntrypoint", status=502)
    assert "no such file or directory" in document["errorMessage"]


def test_no_bootstrap_at_all_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fastric", "emulate", "--port", "0"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert b"no bootstrap" in result.stderr


def test_task_root_bootstrap_is_found(lambda_function, tmp_path):
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(f"#!/bin/sh\nexec {sys.executable} {PROBE[-1]}\n")
    bootstrap.chmod(0o755)
    fn = lambda_function(task_root=tmp_path)
    assert notes(fn) == []
    assert json.loads(fn.invoke({}).raw)["cwd"] == str(tmp_path)


def test_the_bootstraps_leftover_processes_are_killed_with_it(lambda_function, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "bootstrap.sh"
    script.write_text(f"sleep 300 &\necho $! > {pid_file}\nexit 5\n")
    fn = lambda_function(command=["sh", str(script)], task_root=tmp_path)
    document = function_error(fn.invoke({}), "Runtime.ExitError", status=502)
    assert document["errorMessage"].endswith("exit status 5")
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(child)
