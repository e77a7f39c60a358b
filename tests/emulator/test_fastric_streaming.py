"""fastric's own streaming handlers (`@fastric.streaming`) run by `fastric emulate`, streamed to the invoker."""

from __future__ import annotations

import json

import pytest
from emulator_process import HERE
from test_boto3 import lambda_client

STREAMING_APP = HERE.parent / "fixtures" / "streaming"


def test_items_reach_the_invoker_as_they_are_yielded(lambda_function, tmp_path):
    """The handler makes item i+1 only once the invoker has item i (it waits for the file ack-i):
    InvokeWithResponseStream relays each item live."""
    fn = lambda_function("stream_app.gated", task_root=STREAMING_APP, timeout=300)
    client = lambda_client(fn, read_timeout=5)
    response = client.invoke_with_response_stream(
        FunctionName="function", Payload=json.dumps({"count": 4, "dir": str(tmp_path)})
    )
    assert response["ResponseStreamContentType"] == "application/octet-stream"
    stream = iter(response["EventStream"])
    for i in range(4):
        assert next(stream) == {"PayloadChunk": {"Payload": f"item {i};".encode()}}
        (tmp_path / f"ack-{i}").touch()
    assert list(stream) == [{"InvokeComplete": {}}]


def test_the_plugin_streams_items_as_they_are_yielded(lambda_function, tmp_path):
    """`fn.stream` too: item i+1 exists only once the test has item i."""
    fn = lambda_function("stream_app.gated", task_root=STREAMING_APP, timeout=30)
    stream = fn.stream({"count": 3, "dir": str(tmp_path)})
    for i in range(3):
        assert next(stream) == f"item {i};".encode()
        (tmp_path / f"ack-{i}").touch()
    assert list(stream) == [] and stream.function_error is None and stream.error is None
    assert stream.logs.startswith(f"START RequestId: {stream.request_id}")


def test_the_plugin_gives_a_mid_stream_error_as_invoke_does(lambda_function):
    fn = lambda_function("stream_app.async_stream", task_root=STREAMING_APP)
    event = {"items": ["partial ", "output"], "raise": "late"}
    stream = fn.stream(event)
    assert b"".join(stream) == b"partial output"
    invoked = fn.invoke(event)
    assert stream.function_error == invoked.function_error == "Unhandled"
    assert stream.error["errorType"] == invoked.error["errorType"] == "ValueError"
    assert stream.error.keys() == invoked.error.keys()


def test_a_failure_after_output_is_a_function_error_on_invoke(lambda_function):
    fn = lambda_function("stream_app.async_stream", task_root=STREAMING_APP)
    result = fn.invoke({"items": ["partial ", "output"], "raise": "late"})
    assert result.status_code == 200 and result.function_error == "Unhandled"
    assert (result.error["errorType"], result.error["errorMessage"]) == ("ValueError", "late")


@pytest.mark.parametrize("log_type", [None, "Tail", "None"])
def test_boto3_invoke_of_a_failing_stream_reports_the_error_whatever_the_log_type(lambda_function, log_type):
    """`@fastric.streaming` yields `partial\n` then raises: boto3 `invoke` sees `FunctionError` and the
    error document, with or without `LogType`."""
    emu = lambda_function("stream_app.sync_stream", task_root=STREAMING_APP)
    extra = {} if log_type is None else {"LogType": log_type}
    response = lambda_client(emu).invoke(
        FunctionName="function", Payload=json.dumps({"items": ["partial\n"], "raise": "boom"}), **extra
    )
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    document = json.loads(response["Payload"].read())
    assert (document["errorType"], document["errorMessage"]) == ("ValueError", "boom")
    assert ("LogResult" in response) == (log_type == "Tail")


def test_a_failure_before_output_is_an_ordinary_function_error(lambda_function):
    fn = lambda_function("stream_app.sync_stream", task_root=STREAMING_APP)
    result = fn.invoke({"items": [], "raise": "early"})
    assert result.status_code == 200 and result.function_error == "Unhandled"
    assert (result.error["errorType"], result.error["errorMessage"]) == ("ValueError", "early")
    assert fn.invoke({"items": ["still ", "serving"]}).raw == b"still serving"
