"""fastric's own streaming handlers (`@fastric.streaming`) run by `fastric emulate`, streamed to the invoker."""

from __future__ import annotations

import json

import pytest
from emulator_process import HERE
from test_boto3 import lambda_client

STREAMING_APP = HERE.parent / "fixtures" / "streaming"


def test_items_reach_the_invoker_as_they_are_yielded(emulator, tmp_path):
    """The handler makes item i+1 only once the invoker has item i (it waits for the file ack-i):
    InvokeWithResponseStream relays each item live."""
    emu = emulator("--task-root", str(STREAMING_APP), "stream_app.gated")
    client = lambda_client(emu, read_timeout=5)
    response = client.invoke_with_response_stream(
        FunctionName="function", Payload=json.dumps({"count": 4, "dir": str(tmp_path)})
    )
    assert response["ResponseStreamContentType"] == "application/octet-stream"
    stream = iter(response["EventStream"])
    for i in range(4):
        assert next(stream) == {"PayloadChunk": {"Payload": f"item {i};".encode()}}
        (tmp_path / f"ack-{i}").touch()
    assert list(stream) == [{"InvokeComplete": {}}]


def test_a_failure_after_output_is_a_function_error_on_invoke(emulator):
    emu = emulator("--task-root", str(STREAMING_APP), "stream_app.async_stream")
    response = emu.invoke({"items": ["partial ", "output"], "raise": "late"})
    assert response.status == 200 and response.headers["x-amz-function-error"] == "Unhandled"
    assert (response.json()["errorType"], response.json()["errorMessage"]) == ("ValueError", "late")


@pytest.mark.parametrize("log_type", [None, "Tail", "None"])
def test_boto3_invoke_of_a_failing_stream_reports_the_error_whatever_the_log_type(emulator, log_type):
    """`@fastric.streaming` yields `partial\n` then raises: boto3 `invoke` sees `FunctionError` and the
    error document, with or without `LogType`."""
    emu = emulator("--task-root", str(STREAMING_APP), "stream_app.sync_stream")
    extra = {} if log_type is None else {"LogType": log_type}
    response = lambda_client(emu).invoke(
        FunctionName="function", Payload=json.dumps({"items": ["partial\n"], "raise": "boom"}), **extra
    )
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    document = json.loads(response["Payload"].read())
    assert (document["errorType"], document["errorMessage"]) == ("ValueError", "boom")
    assert ("LogResult" in response) == (log_type == "Tail")


def test_a_failure_before_output_is_an_ordinary_function_error(emulator):
    emu = emulator("--task-root", str(STREAMING_APP), "stream_app.sync_stream")
    response = emu.invoke({"items": [], "raise": "early"})
    assert response.status == 200 and response.headers["x-amz-function-error"] == "Unhandled"
    assert (response.json()["errorType"], response.json()["errorMessage"]) == ("ValueError", "early")
    assert emu.invoke({"items": ["still ", "serving"]}).body == b"still serving"
