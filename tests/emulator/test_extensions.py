"""The Extensions API: external extensions (probe scripts in an --extensions directory) and internal ones
(registered by the bootstrap), against the real `fastric emulate` on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from emulator_process import pid_alive
from extensions_kit import BOOTSTRAP, add_extension, environment, index_of, records, wait_records

from fastric.emulator import cli as emulator_cli


def test_external_extension_lifecycle(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder")
    emu = emulator(
        "--extensions",
        str(tmp_path / "ext"),
        "--function-name",
        "fn",
        "--",
        *BOOTSTRAP,
        env=environment(record, BOOT_SIGTERM="exit", _HANDLER="my.handler"),
    )
    first, second = emu.invoke({"n": 1}), emu.invoke({"n": 2})
    assert first.status == second.status == 200
    request_ids = [first.headers["x-amzn-requestid"], second.headers["x-amzn-requestid"]]
    assert emu.report_for(request_ids[1]) is not None
    lines = emu.stderr.splitlines()
    assert index_of(lines, lambda line: "extension recorder started" in line) < index_of(
        lines, lambda line: "bootstrap started" in line
    )
    assert emu.stop() == 0

    env = records(record, "env")[0]["env"]
    assert env["AWS_LAMBDA_RUNTIME_API"] and env["AWS_LAMBDA_FUNCTION_NAME"] == "fn" and env["AWS_REGION"]
    assert env["_HANDLER"] is None and env["LAMBDA_TASK_ROOT"] is None  # kept to the runtime, as on Lambda

    registration = records(record, "register")[0]
    assert registration["status"] == 200
    assert uuid.UUID(registration["headers"]["lambda-extension-identifier"])
    assert registration["headers"]["content-type"] == "application/json"
    assert registration["answer"] == {
        "functionName": "fn",
        "functionVersion": "$LATEST",
        "handler": "my.handler",
        "accountId": "012345678912",
    }

    answers = records(record, "event")
    assert [a["status"] for a in answers] == [200, 200, 200]
    invokes, shutdown = [a["event"] for a in answers[:2]], answers[2]["event"]
    assert [event["requestId"] for event in invokes] == request_ids
    for event in invokes:
        assert event["eventType"] == "INVOKE"
        assert event["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:012345678912:function:fn"
        assert event["tracing"]["type"] == "X-Amzn-Trace-Id" and event["tracing"]["value"].startswith("Root=1-")
        assert isinstance(event["deadlineMs"], int) and event["deadlineMs"] > time.time() * 1000 - 60_000
    assert all(uuid.UUID(a["headers"]["lambda-extension-event-identifier"]) for a in answers)
    assert shutdown["eventType"] == "SHUTDOWN" and shutdown["shutdownReason"] == "spindown"
    assert isinstance(shutdown["deadlineMs"], int)

    log = emu.stderr
    assert "bootstrap got SIGTERM" in log  # an extension is registered: the runtime gets SIGTERM
    assert "recorder: SHUTDOWN spindown" in log  # the extension's own output reaches the log too
    assert log.index("bootstrap got SIGTERM") < log.index("recorder: SHUTDOWN spindown")


def test_an_invocation_ends_when_every_extension_has_called_next(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "fast")
    add_extension(tmp_path / "ext", "slow", EXT_DELAY="0.8")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    first = emu.invoke({})
    answered = time.time()
    request_id = first.headers["x-amzn-requestid"]
    second = emu.invoke({})
    assert first.status == second.status == 200
    report = emu.report_for(request_id)
    assert report is not None
    lines = emu.stderr.splitlines()
    # The REPORT line waits for the slow extension's next, and so does the next invocation.
    assert index_of(lines, lambda line: line == f"slow: done with {request_id}") < index_of(
        lines, lambda line: line == report
    )
    done = next(r["at"] for r in records(record, "done", "slow") if r["requestId"] == request_id)
    assert second.json()["received"] >= done
    assert answered < done  # the response itself is not held: it went out while "slow" was still busy
    assert emu.report_for(second.headers["x-amzn-requestid"]) is not None
    assert [r["event"]["requestId"] for r in records(record, "event", "fast")] == [
        request_id,
        second.headers["x-amzn-requestid"],
    ]


def test_an_extension_that_never_calls_next_times_the_invocation_out(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "stuck", EXT_STUCK=str(tmp_path / "stuck-once"))
    emu = emulator("--timeout", "1", "--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    first = emu.invoke({})
    assert first.status == 200 and "x-amz-function-error" not in first.headers  # the function did answer
    report = emu.report_for(first.headers["x-amzn-requestid"])
    assert "Status: timeout" in report
    assert "stuck did not call next within the function timeout" in emu.stderr
    second = emu.invoke({})  # a fresh environment: new bootstrap, new extension
    assert second.status == 200, (second.body, emu.stderr) and second.json()["pid"] != first.json()["pid"]
    assert len(records(record, "register", "stuck")) == 2
    assert "extension stuck did not exit in time: killing it" in emu.stderr
    assert all(not pid_alive(r["pid"]) for r in records(record, "env")[:1])


def test_internal_extension_and_refused_calls(emulator, tmp_path):
    emu = emulator("--", *BOOTSTRAP, env=environment(tmp_path / "r", BOOT_INTERNAL="probe-internal", BOOT_PROBES="1"))
    first = emu.invoke({})
    second = emu.invoke({"register": "too-late"})
    answers = second.json()["answers"]
    assert answers["internal"][0] == 200 and answers["internal"][1]["functionName"] == "test_function"
    # The invocation ended only after the internal extension answered its INVOKE event: the second
    # invocation's answer lists it.
    assert [event["requestId"] for event in second.json()["internal"]][:1] == [first.headers["x-amzn-requestid"]]
    assert second.json()["internal"][0]["eventType"] == "INVOKE"

    def refused(name):
        status, body = answers[name]
        return status, body["errorType"]

    assert refused("no name") == (403, "Extension.InvalidExtensionName")
    assert refused("internal shutdown") == (403, "Extension.InvalidEventType")
    assert answers["internal shutdown"][1]["errorMessage"] == "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension"
    assert refused("bad event") == (403, "Extension.InvalidEventType")
    assert refused("bad body") == (403, "InvalidRequestFormat")
    assert refused("next without id") == (403, "Extension.MissingExtensionIdentifier")
    assert refused("next bad id") == (403, "Extension.InvalidExtensionIdentifier")
    assert refused("next unknown id") == (403, "Extension.UnknownExtensionIdentifier")
    assert refused("telemetry unknown id") == (403, "Extension.UnknownExtensionIdentifier")
    assert refused("init error without type") == (403, "Extension.MissingHeader")
    assert refused("register twice") == (403, "Extension.InvalidExtensionState")
    assert refused("late") == (403, "Extension.RegistrationClosed")


def test_shutdown_with_an_internal_extension_sends_sigterm_then_sigkill(emulator, tmp_path):
    env = environment(tmp_path / "r", BOOT_INTERNAL="probe-internal", BOOT_SIGTERM="hang")
    emu = emulator("--", *BOOTSTRAP, env=env)
    pid = emu.invoke({}).json()["pid"]
    assert emu.stop() == 0, emu.stderr
    assert "bootstrap got SIGTERM" in emu.stderr, emu.stderr  # its output during shutdown reaches the log
    assert not pid_alive(pid)  # it ignored SIGTERM: killed after the grace


def test_shutdown_without_extensions_kills_the_runtime(emulator, tmp_path):
    emu = emulator("--", *BOOTSTRAP, env=environment(tmp_path / "r", BOOT_SIGTERM="exit"))
    pid = emu.invoke({}).json()["pid"]
    assert emu.stop() == 0
    assert "bootstrap got SIGTERM" not in emu.stderr  # no extension asked for SIGTERM: SIGKILL, as on Lambda
    assert not pid_alive(pid)


def test_extension_init_failures_fail_the_invoke(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "crash", "crasher", EXT_CRASH="1")
    emu = emulator("--extensions", str(tmp_path / "crash"), "--", *BOOTSTRAP, env=environment(record))
    crashed = emu.invoke({})
    assert crashed.status == 502 and crashed.headers["x-amz-function-error"] == "Unhandled"
    assert crashed.json()["errorType"] == "Extension.Crash"
    assert "extension crasher exited during init: exit status 3" in crashed.json()["errorMessage"]

    add_extension(tmp_path / "init", "failer", EXT_INIT_ERROR="1")
    emu = emulator("--extensions", str(tmp_path / "init"), "--", *BOOTSTRAP, env=environment(record))
    failed = emu.invoke({})
    assert failed.status == 502 and failed.json()["errorType"] == "Extension.InitError"
    assert "Extension.ProbeFailed" in failed.json()["errorMessage"]
    posted = wait_records(record, "error", "failer")[0]
    assert (posted["status"], posted["answer"]) == (202, {"status": "OK"})


def test_exit_error_takes_the_extension_out(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "quitter", EXT_EXIT_ERROR="1")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    first = emu.invoke({})
    assert emu.report_for(first.headers["x-amzn-requestid"]) is not None
    assert emu.invoke({}).status == 200  # the extension is gone; invocations go on without it
    exit_error, next_after = wait_records(record, "error", "quitter", count=2)
    assert (exit_error["status"], exit_error["answer"]) == (202, {"status": "OK"})
    assert (next_after["status"], next_after["answer"]["errorType"]) == (403, "Extension.InvalidExtensionState")


def test_fastric_invoke_runs_the_extensions_and_shuts_them_down(tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder")
    command = [sys.executable, "-m", "fastric", "invoke", "--extensions", str(tmp_path / "ext"), "--event", "{}"]
    result = subprocess.run([*command, "--", *BOOTSTRAP], env=environment(record), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["event"] == {}  # stdout is the response alone
    assert b"recorder: INVOKE" in result.stderr
    events = [r["event"]["eventType"] for r in records(record, "event")]
    assert events == ["INVOKE", "SHUTDOWN"]

    missing = subprocess.run([*command[:5], str(tmp_path / "nope"), "app.handler"], capture_output=True, timeout=60)
    assert missing.returncode == 2 and b"is not a directory" in missing.stderr


def test_opt_extensions_is_the_default_directory(tmp_path, monkeypatch):
    parser = emulator_cli._parser("emulate")
    monkeypatch.setattr(emulator_cli, "SYSTEM_EXTENSIONS", str(tmp_path))
    config = emulator_cli._function_config(parser.parse_args(["--task-root", str(tmp_path)]), "app.handler", [])
    assert config.extensions_dir == str(tmp_path)
    monkeypatch.setattr(emulator_cli, "SYSTEM_EXTENSIONS", str(tmp_path / "missing"))
    config = emulator_cli._function_config(parser.parse_args(["--task-root", str(tmp_path)]), "app.handler", [])
    assert config.extensions_dir is None


def test_multi_concurrency_extensions_may_not_subscribe_to_invoke(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "invoker")
    add_extension(tmp_path / "ext2", "watcher", EXT_EVENTS="SHUTDOWN")
    emu = emulator(
        "--concurrency", "2", "--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record)
    )
    refused = emu.invoke({})
    assert refused.status == 502 and refused.json()["errorType"] == "Extension.Crash"
    registration = records(record, "register", "invoker")[0]
    assert (registration["status"], registration["answer"]["errorType"]) == (403, "Extension.InvalidEventType")

    emu = emulator(
        "--concurrency", "2", "--extensions", str(tmp_path / "ext2"), "--", *BOOTSTRAP, env=environment(record)
    )
    assert emu.invoke({}).status == 200
    assert emu.stop() == 0
    assert [r["event"]["eventType"] for r in records(record, "event", "watcher")] == ["SHUTDOWN"]


def test_a_skipped_extension_file_is_named_with_the_reason(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder")
    (tmp_path / "ext" / "notes.txt").write_text("not an extension\n")
    (tmp_path / "ext" / "forgot-chmod").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "ext" / "subdir").mkdir()
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    assert emu.invoke({}).status == 200
    assert emu.stop() == 0
    log = emu.stderr
    assert f"extension file {tmp_path / 'ext' / 'forgot-chmod'} skipped: not executable" in log
    assert f"extension file {tmp_path / 'ext' / 'notes.txt'} skipped: not executable" in log
    assert f"extension file {tmp_path / 'ext' / 'subdir'} skipped: a directory" in log
    assert log.count("forgot-chmod skipped") == 1
    assert records(record, "register")[0]["status"] == 200  # the executable one runs
