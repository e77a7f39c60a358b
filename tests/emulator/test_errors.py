"""Error paths on both sides: RAPID's answers to the runtime, and what the invoker gets for each failure."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from emulator_process import PROBE, clean_env, pid_alive

LIMIT = 6_291_556
INVALID_REQUEST_ID = {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
TOO_LARGE = {
    "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
    "errorType": "RequestEntityTooLarge",
}


def notes(emu):
    return emu.invoke({"action": "notes"}).json()["notes"]


def assert_function_error(response, error_type, status=200):
    assert response.status == status, response
    assert response.headers["x-amz-function-error"] == "Unhandled"
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["errorType"] == error_type
    return document


def test_function_error_from_awslambdaric(emulator, tmp_path):
    (tmp_path / "fails.py").write_text("def handler(event, context):\n    raise ValueError('bad ' + event['x'])\n")
    emu = emulator("--", sys.executable, "-m", "awslambdaric", "fails.handler", cwd=tmp_path)
    document = assert_function_error(emu.invoke({"x": "input"}), "ValueError")
    assert document["errorMessage"] == "bad input"
    assert document["requestId"]
    assert isinstance(document["stackTrace"], list)


def test_function_error_posted_to_error(emulator):
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "error"})
    assert assert_function_error(response, "ProbeError") == {"errorMessage": "boom", "errorType": "ProbeError"}
    assert emu.invoke({"ok": 1}).status == 200  # the runtime lives on


def test_unknown_request_id_gets_400(emulator):
    emu = emulator("--", *PROBE)
    assert emu.invoke({"action": "unknown_id"}).json() == {"ok": True}
    assert notes(emu) == [[400, INVALID_REQUEST_ID]]


def test_posts_after_the_response_get_403(emulator):
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "double_post"})
    assert response.status == 200 and response.json() == {"first": True}
    (first, second, late_error) = notes(emu)
    assert first == [202, {"status": "OK"}]
    assert second[0] == 403 and second[1]["errorType"] == "InvalidStateTransition"
    assert late_error[0] == 403 and late_error[1]["errorType"] == "InvalidStateTransition"


def test_mismatched_invocation_id_is_refused(emulator):
    emu = emulator("--", *PROBE)
    assert emu.invoke({"action": "wrong_invocation_id"}).json() == {"ok": True}
    assert notes(emu) == [[400, {"errorMessage": "Invalid invocation ID", "errorType": "InvalidInvocationID"}]]


def test_init_error_after_init_gets_403(emulator):
    emu = emulator("--", *PROBE)
    assert emu.invoke({"action": "init_error_late"}).json() == {"ok": True}
    ((status, document),) = notes(emu)
    assert status == 403 and document["errorType"] == "InvalidStateTransition"


def test_invalid_response_mode(emulator):
    emu = emulator("--", *PROBE)
    assert_function_error(emu.invoke({"action": "bad_mode"}), "Runtime.InvalidResponseModeHeader")
    assert notes(emu) == [
        [400, {"errorMessage": "Invalid function response mode", "errorType": "InvalidFunctionResponseMode"}]
    ]


def test_response_at_the_limit_passes_and_one_byte_more_is_413(emulator):
    emu = emulator("--", *PROBE)
    at_limit = emu.invoke({"action": "big_response", "size": LIMIT})
    assert at_limit.status == 200 and len(at_limit.body) == LIMIT
    over = emu.invoke({"action": "big_response", "size": LIMIT + 1})
    document = assert_function_error(over, "Function.ResponseSizeTooLarge")
    assert "(6291557 bytes)" in document["errorMessage"]
    assert notes(emu) == [[202, {"status": "OK"}], [413, TOO_LARGE], [403, notes_403_body()]]


def notes_403_body():
    return {
        "errorMessage": "State transition from RuntimeResponseSentState to InvocationErrorResponse failed for "
        "runtime. Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }


def test_request_over_the_limit_is_413_and_never_truncated(emulator):
    emu = emulator("--", *PROBE)
    wrapper = len(b'{"action":"size","data":""}')
    exact = b'{"action":"size","data":"' + b"a" * (LIMIT - wrapper) + b'"}'
    assert len(exact) == LIMIT
    response = emu.invoke(body=exact)
    assert response.status == 200 and response.json() == {"size": LIMIT - wrapper}
    over = emu.invoke(body=exact[:-2] + b'a"}')
    assert over.status == 413
    assert over.json() == TOO_LARGE
    assert emu.invoke({"action": "size", "data": "ok"}).json() == {"size": 2}


def test_oversized_request_with_expect_continue_is_refused_before_the_body(emulator):
    emu = emulator("--", *PROBE)
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(
            b"POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 7000000\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_timeout_kills_the_bootstrap_and_the_next_invoke_reinits(emulator):
    emu = emulator("--timeout", "1", "--", *PROBE)
    first_pid = emu.invoke({}).json()["pid"]
    response = emu.invoke({"action": "sleep", "seconds": 30})
    document = assert_function_error(response, "Sandbox.Timedout")
    request_id = response.headers["x-amzn-requestid"]
    assert document["errorMessage"] == f"RequestId: {request_id} Error: Task timed out after 1.00 seconds"
    assert "Status: timeout" in emu.report_for(request_id)
    after = emu.invoke({})
    assert after.status == 200
    assert after.json()["pid"] != first_pid
    assert not pid_alive(first_pid)


def test_crash_is_502_exit_error_and_the_next_invoke_reinits(emulator):
    emu = emulator("--", *PROBE)
    first_pid = emu.invoke({}).json()["pid"]
    response = emu.invoke({"action": "exit", "code": 3})
    document = assert_function_error(response, "Runtime.ExitError", status=502)
    request_id = response.headers["x-amzn-requestid"]
    assert document["errorMessage"] == f"RequestId: {request_id} Error: Runtime exited with error: exit status 3"
    assert "Status: error\tError Type: Runtime.ExitError" in emu.report_for(request_id)
    after = emu.invoke({})
    assert after.status == 200 and after.json()["pid"] != first_pid


def test_init_error_document_is_502_on_every_invoke(emulator, tmp_path):
    emu = emulator("--", sys.executable, "-m", "awslambdaric", "missing_module.handler", cwd=tmp_path)
    for _ in range(2):  # the eager start's failure, then a fresh init that fails again
        document = assert_function_error(emu.invoke({}), "Runtime.ImportModuleError", status=502)
        assert "missing_module" in document["errorMessage"]


def test_probe_init_error_with_header(emulator):
    emu = emulator("--", *PROBE, env=clean_env(PROBE_INIT="error"))
    document = assert_function_error(emu.invoke({}), "Runtime.ProbeInit", status=502)
    assert document == {"errorMessage": "cannot init", "errorType": "Runtime.ProbeInit"}


def test_exit_during_init_is_502_exit_error(emulator):
    emu = emulator("--", *PROBE, env=clean_env(PROBE_INIT="exit"))
    for _ in range(2):
        response = emu.invoke({})
        document = assert_function_error(response, "Runtime.ExitError", status=502)
        assert document["errorMessage"].endswith("Runtime exited with error: exit status 7")


def test_init_that_never_finishes_times_out(emulator):
    emu = emulator("--timeout", "1", "--init-timeout", "0.5", "--", *PROBE, env=clean_env(PROBE_INIT="hang"))
    assert_function_error(emu.invoke({}), "Sandbox.Timedout")


def test_missing_bootstrap_is_invalid_entrypoint(emulator, tmp_path):
    emu = emulator("--", str(tmp_path / "no-such-program"), cwd=tmp_path)
    document = assert_function_error(emu.invoke({}), "Runtime.InvalidEntrypoint", status=502)
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


def test_task_root_bootstrap_is_found(emulator, tmp_path):
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(f"#!/bin/sh\nexec {sys.executable} {PROBE[-1]}\n")
    bootstrap.chmod(0o755)
    emu = emulator(cwd=tmp_path)
    assert emu.invoke({"action": "notes"}).json()["notes"] == []
    assert json.loads(emu.invoke({}).body)["cwd"] == str(tmp_path)


def test_the_bootstraps_leftover_processes_are_killed_with_it(emulator, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "bootstrap.sh"
    script.write_text(f"sleep 300 &\necho $! > {pid_file}\nexit 5\n")
    emu = emulator("--", "sh", str(script), cwd=tmp_path)
    document = assert_function_error(emu.invoke({}), "Runtime.ExitError", status=502)
    assert document["errorMessage"].endswith("exit status 5")
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(child)
