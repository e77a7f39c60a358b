"""The Logs API (`PUT /2020-08-15/logs`): a probe extension subscribes a listener on 127.0.0.1 (HTTP or TCP)
and records what `fastric emulate` delivers to it, in the Logs API's own record format."""

from __future__ import annotations

import json
import shlex
import sys

from emulator_process import HERE
from extensions_kit import BOOTSTRAP, add_extension, environment, records
from test_telemetry import TIME, delivered


def _position(events, kind, request_id=None, text=None):
    for index, event in enumerate(events):
        record = event["record"]
        if event["type"] != kind:
            continue
        if request_id is not None and (not isinstance(record, dict) or record.get("requestId") != request_id):
            continue
        if text is not None and record != text:
            continue
        return index
    raise AssertionError(f"no {kind} {request_id or ''} {text or ''} in {[e['type'] for e in events]}")


def test_logs_api_http_delivers_platform_function_and_extension_records(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(
        tmp_path / "ext",
        "recorder",
        EXT_LOGS="platform,function,extension",
        EXT_BAD_SUBSCRIPTIONS="1",
        EXT_LOGS_AGAIN="1",
    )
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    ok = emu.invoke({"print": "hello logs"})
    failed = emu.invoke({"fail": True})
    ok_id, failed_id = ok.headers["x-amzn-requestid"], failed.headers["x-amzn-requestid"]
    assert ok.status == 200 and failed.headers.get("x-amz-function-error") == "Unhandled"
    assert emu.report_for(failed_id) is not None
    assert emu.stop() == 0, emu.stderr

    *refused, subscribed = records(record, "subscribe")
    assert [(r["status"], r["answer"]["errorType"]) for r in refused] == [(400, "ValidationError")] * 6
    assert (subscribed["status"], subscribed["answer"]) == (200, "OK")
    again = records(record, "again")[0]
    assert (again["status"], again["answer"]) == (200, "OK")  # idempotent
    conflict = records(record, "conflict")[0]
    assert (conflict["status"], conflict["answer"]["errorType"]) == (403, "Telemetry.SubscriptionConflict")
    late = records(record, "late")[0]
    assert (late["status"], late["answer"]["errorType"]) == (403, "Logs.SubscriptionClosed")

    events = delivered(record)
    assert all(TIME.fullmatch(event["time"]) for event in events)
    types = [event["type"] for event in events]
    assert not any(kind.startswith("platform.init") for kind in types)  # the Telemetry API's, not the Logs API's
    assert types.count("platform.logsSubscription") == 1  # the repeated subscription added nothing
    subscription = events[_position(events, "platform.logsSubscription")]["record"]
    assert subscription == {"name": "recorder", "state": "Subscribed", "types": ["extension", "function", "platform"]}
    extension = events[_position(events, "platform.extension")]["record"]
    assert extension == {"name": "recorder", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}
    assert _position(events, "extension", text="recorder: ready") < _position(events, "platform.start", ok_id)

    start = _position(events, "platform.start", ok_id)
    assert events[start]["record"] == {"requestId": ok_id, "version": "$LATEST"}
    printed = _position(events, "function", text="hello logs")
    done = _position(events, "platform.runtimeDone", ok_id)
    end = _position(events, "platform.end", ok_id)
    report = _position(events, "platform.report", ok_id)
    assert start < printed < done < end < report
    assert events[done]["record"] == {"requestId": ok_id, "status": "success"}
    assert events[end]["record"] == {"requestId": ok_id}
    assert set(events[report]["record"]) == {"requestId", "metrics"}
    metrics = events[report]["record"]["metrics"]
    assert set(metrics) == {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}
    assert _position(events, "extension", text=f"recorder: INVOKE {ok_id}") < report
    failed_done = events[_position(events, "platform.runtimeDone", failed_id)]["record"]
    assert failed_done == {"requestId": failed_id, "status": "failure"}
    assert "initDurationMs" not in events[_position(events, "platform.report", failed_id)]["record"]["metrics"]


def test_logs_api_tcp_destination(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder", EXT_LOGS="platform,function", EXT_TCP="1")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    request_id = emu.invoke({"print": "over tcp"}).headers["x-amzn-requestid"]
    assert emu.report_for(request_id) is not None
    assert emu.stop() == 0
    assert records(record, "subscribe")[0]["status"] == 200
    batches = records(record, "telemetry")
    assert batches and all(batch["path"] == "tcp" for batch in batches)
    events = delivered(record)
    assert {"platform.start", "platform.end", "platform.report", "function"} <= {e["type"] for e in events}
    assert "over tcp" in [e["record"] for e in events if e["type"] == "function"]
    assert not [e for e in events if e["type"] == "extension"]  # only the types subscribed to


def test_logs_api_is_refused_under_managed_instances(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder", EXT_LOGS="platform", EXT_EVENTS="SHUTDOWN")
    emu = emulator(
        "--concurrency", "2", "--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record)
    )
    assert emu.invoke({}).status == 200
    assert emu.stop() == 0
    refused = records(record, "subscribe")[0]
    assert (refused["status"], refused["answer"]["errorType"]) == (403, "Logs.NotSupported")


def test_a_crash_is_a_platform_fault(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder", EXT_LOGS="platform")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    crashed = emu.invoke({"crash": True})
    assert crashed.status == 502
    request_id = crashed.headers["x-amzn-requestid"]
    assert emu.report_for(request_id) is not None
    assert emu.stop() == 0
    faults = [e["record"] for e in delivered(record) if e["type"] == "platform.fault"]
    assert faults == [f"RequestId: {request_id} Process exited before completing request"]


def test_an_extension_shaped_like_aws_sample_gets_its_records(emulator, tmp_path):
    """urllib, an HTTP/1.0 listener that answers 200 with no Content-Length, no schemaVersion, `http://sandbox:PORT`,
    the default buffering: every record reaches it, the last batch flushed before SHUTDOWN."""
    sample = HERE / "sample_logs_extension.py"
    (tmp_path / "ext").mkdir()
    wrapper = tmp_path / "ext" / "logs-sample"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(sample))} logs-sample\n")
    wrapper.chmod(0o755)
    record = tmp_path / "batches.jsonl"
    env = environment(tmp_path / "unused", SAMPLE_RECORD=str(record))
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=env)
    response = emu.invoke({"print": "from the function"})
    request_id = response.headers["x-amzn-requestid"]
    assert emu.report_for(request_id) is not None
    assert emu.stop() == 0, emu.stderr
    assert "subscribed: 200" in emu.stderr
    events = [event for line in record.read_text().splitlines() for event in json.loads(line)]
    types = [event["type"] for event in events]
    assert {"platform.logsSubscription", "platform.start", "platform.end", "platform.report"} <= set(types)
    assert "from the function" in [event["record"] for event in events if event["type"] == "function"]
