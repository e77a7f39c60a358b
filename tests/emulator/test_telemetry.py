"""The Telemetry API: a probe extension subscribes a listener on 127.0.0.1 and records what `fastric emulate`
delivers to it."""

from __future__ import annotations

import re

from extensions_kit import BOOTSTRAP, add_extension, environment, records

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def delivered(record_path, name="recorder"):
    """Every event the extension's listener received, in order of arrival."""
    return [event for batch in records(record_path, "telemetry", name) for event in batch["events"]]


def test_subscription_gets_platform_function_and_extension_events(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder", EXT_TELEMETRY="platform,function,extension", EXT_BAD_SUBSCRIPTIONS="1")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    ok = emu.invoke({"print": "hello telemetry"})
    failed = emu.invoke({"fail": True})
    ok_id, failed_id = ok.headers["x-amzn-requestid"], failed.headers["x-amzn-requestid"]
    assert emu.report_for(failed_id) is not None
    assert emu.stop() == 0

    *refused, subscribed = records(record, "subscribe")
    assert [(r["status"], r["answer"]["errorType"]) for r in refused] == [(400, "ValidationError")] * 6
    assert (subscribed["status"], subscribed["answer"], subscribed["content_type"]) == (200, "OK", "application/json")
    late = records(record, "late")[0]
    assert (late["status"], late["answer"]["errorType"]) == (403, "Telemetry.SubscriptionClosed")

    batches = records(record, "telemetry")
    assert all(b["path"] == "/telemetry" and b["content_type"] == "application/json" for b in batches)
    assert len(batches[0]["events"]) > 1  # init's events so far, replayed to the new subscriber in one batch
    events = delivered(record)
    assert all(TIME.fullmatch(event["time"]) for event in events)
    kinds = [event["type"] for event in events]

    def position(kind, request_id=None, text=None):
        for index, event in enumerate(events):
            record_ = event["record"]
            if event["type"] != kind:
                continue
            if request_id is not None and (not isinstance(record_, dict) or record_.get("requestId") != request_id):
                continue
            if text is not None and record_ != text:
                continue
            return index
        raise AssertionError(f"no {kind} {request_id or ''} {text or ''} in {kinds}")

    assert kinds[0] == "platform.initStart"
    assert events[0]["record"]["initializationType"] == "on-demand" and events[0]["record"]["phase"] == "init"
    assert position("platform.telemetrySubscription") < position("platform.initRuntimeDone")
    subscription = events[position("platform.telemetrySubscription")]["record"]
    assert subscription == {"name": "recorder", "state": "Subscribed", "types": ["extension", "function", "platform"]}
    extension = events[position("platform.extension")]["record"]
    assert extension == {"name": "recorder", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}
    init_done = events[position("platform.initRuntimeDone")]["record"]
    assert init_done == {"initializationType": "on-demand", "phase": "init", "status": "success"}
    assert events[position("platform.initReport")]["record"]["metrics"]["durationMs"] > 0
    assert position("extension", text="recorder: ready") < position("platform.initRuntimeDone")

    start = position("platform.start", ok_id)
    assert events[start]["record"]["version"] == "$LATEST"
    assert events[start]["record"]["tracing"]["type"] == "X-Amzn-Trace-Id"
    printed = position("function", text="hello telemetry")
    runtime_done = position("platform.runtimeDone", ok_id)
    report = position("platform.report", ok_id)
    assert position("platform.initReport") < start < position("function", text=f"function saw {ok_id}")
    assert printed < runtime_done < report
    assert position("extension", text=f"recorder: INVOKE {ok_id}") < report
    assert events[runtime_done]["record"]["status"] == "success"
    assert events[runtime_done]["record"]["metrics"]["durationMs"] >= 0
    metrics = events[report]["record"]["metrics"]
    assert set(metrics) == {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}
    assert metrics["memorySizeMB"] == 3008 and metrics["billedDurationMs"] >= 1
    assert events[report]["record"]["status"] == "success"

    failed_done = events[position("platform.runtimeDone", failed_id)]["record"]
    assert failed_done["status"] == "error"
    failed_report = events[position("platform.report", failed_id)]["record"]
    assert failed_report["status"] == "error" and "initDurationMs" not in failed_report["metrics"]


def test_tcp_destination_gets_newline_delimited_json(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "recorder", EXT_TELEMETRY="platform", EXT_TCP="1")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    request_id = emu.invoke({"print": "not subscribed"}).headers["x-amzn-requestid"]
    assert emu.report_for(request_id) is not None
    assert emu.stop() == 0
    assert records(record, "subscribe")[0]["status"] == 200
    events = delivered(record)
    assert {event["type"] for event in events} >= {"platform.initStart", "platform.start", "platform.report"}
    assert all(event["type"].startswith("platform.") for event in events)  # only the types subscribed to
    assert [e["record"]["requestId"] for e in events if e["type"] == "platform.report"] == [request_id]
