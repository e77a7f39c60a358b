"""Real boto3 against `fastric emulate`: `invoke` and `invoke_with_response_stream` with `endpoint_url`."""

from __future__ import annotations

import base64
import json
import socket

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError
from emulator_process import EXAMPLES

ERROR = {"errorMessage": "stream broke", "errorType": "StreamError"}
CONTEXT_HANDLER = """\
def handler(event, context):
    client_context = context.client_context
    return {
        "custom": client_context.custom,
        "env": client_context.env,
        "installation_id": client_context.client.installation_id,
    }
"""
CLIENT_CONTEXT = {
    "client": {"installation_id": "install-1", "app_title": "app"},
    "custom": {"user": "Zoë", "price": "€5", "nested": {"list": [1, 2, 3]}},
    "env": {"platform": "linux"},
}
STREAM_PATH = "/2021-11-15/functions/function/response-streaming-invocations"


def lambda_client(emu, read_timeout: float = 30):
    """A boto3 Lambda client for an emulator: a plugin `LocalFunction` or an `EmulatorProcess`."""
    return boto3.client(
        "lambda",
        endpoint_url=getattr(emu, "endpoint_url", None) or f"http://127.0.0.1:{emu.port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 0}, read_timeout=read_timeout, connect_timeout=5),
    )


def events(response) -> list[dict]:
    return list(response["EventStream"])


def encoded(value, **dumps) -> str:
    return base64.b64encode(json.dumps(value, **dumps).encode()).decode()


# -- invoke ---------------------------------------------------------------------------------------
def test_invoke_returns_the_payload(lambda_function):
    response = lambda_client(lambda_function("app.handler", task_root=EXAMPLES)).invoke(
        FunctionName="function", Payload=json.dumps({"queryStringParameters": {"foo": "bar"}})
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read())["body"] == 'queryStringParameters, {"foo":"bar"}'


def test_invoke_function_error_is_unhandled_with_the_error_document(probe):
    response = lambda_client(probe()).invoke(FunctionName="function", Payload=b'{"action": "error"}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {"errorMessage": "boom", "errorType": "ProbeError"}


@pytest.mark.parametrize("layout", [{}, {"indent": 2}], ids=["compact", "pretty-printed"])
def test_client_context_reaches_the_handler(lambda_function, tmp_path, layout):
    (tmp_path / "ctx.py").write_text(CONTEXT_HANDLER)
    client = lambda_client(lambda_function("ctx.handler", task_root=tmp_path), read_timeout=10)
    response = client.invoke(FunctionName="function", Payload=b"{}", ClientContext=encoded(CLIENT_CONTEXT, **layout))
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {
        "custom": CLIENT_CONTEXT["custom"],
        "env": CLIENT_CONTEXT["env"],
        "installation_id": "install-1",
    }


def test_client_context_reaches_the_runtime_as_one_line(probe):
    client = lambda_client(probe(), read_timeout=10)
    response = client.invoke(FunctionName="function", Payload=b"{}", ClientContext=encoded(CLIENT_CONTEXT, indent=4))
    header = json.loads(response["Payload"].read())["headers"]["Lambda-Runtime-Client-Context"]
    assert "\n" not in header and header.isascii()
    assert json.loads(header) == CLIENT_CONTEXT


@pytest.mark.parametrize(
    "client_context",
    ["***", base64.b64encode(b"not json").decode(), encoded([1, 2]), encoded("text"), encoded(None)],
    ids=["not-base64", "not-json", "array", "string", "null"],
)
def test_a_bad_client_context_is_a_client_error(probe, client_context):
    emu = probe()
    client = lambda_client(emu)
    for call in (client.invoke, client.invoke_with_response_stream):
        with pytest.raises(ClientError) as raised:
            call(FunctionName="function", Payload=b"{}", ClientContext=client_context)
        error = raised.value.response
        assert error["Error"]["Code"] == "InvalidRequestContentException"
        assert error["Error"]["Message"] == "Client context must be a valid Base64-encoded JSON object."
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert json.loads(client.invoke(FunctionName="function", Payload=b"{}")["Payload"].read())["event"] == {}


def test_a_payload_that_is_not_json_is_a_client_error(probe):
    client = lambda_client(probe())
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="function", Payload=b"not json")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert raised.value.response["Error"]["Message"].startswith("Could not parse request body into json")


# -- invoke_with_response_stream ------------------------------------------------------------------
def test_a_buffered_response_is_one_payload_chunk(lambda_function):
    response = lambda_client(lambda_function("app.handler", task_root=EXAMPLES)).invoke_with_response_stream(
        FunctionName="function", Payload=json.dumps({"queryStringParameters": {"foo": "bar"}})
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/json"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    (chunk, complete) = events(response)
    assert json.loads(chunk["PayloadChunk"]["Payload"])["body"] == 'queryStringParameters, {"foo":"bar"}'
    assert complete == {"InvokeComplete": {}}


def test_chunks_arrive_before_the_function_finishes(probe, tmp_path):
    gate = tmp_path / "gate"
    # The probe sends its first chunk, then holds the rest until the gate exists (giving up after 10 s):
    # the first event must reach boto3 well before that (read timeout 5 s).
    client = lambda_client(probe(), read_timeout=5)
    event = {"action": "stream", "chunks": ["first ", "second ", "third"], "gate": str(gate)}
    response = client.invoke_with_response_stream(FunctionName="function", Payload=json.dumps(event))
    assert response["ResponseStreamContentType"] == "text/plain"
    stream = iter(response["EventStream"])
    assert next(stream) == {"PayloadChunk": {"Payload": b"first "}}
    assert not gate.exists()
    gate.touch()
    rest = list(stream)
    assert b"".join(item["PayloadChunk"]["Payload"] for item in rest[:-1]) == b"second third"
    assert rest[-1] == {"InvokeComplete": {}}


def test_a_mid_stream_error_ends_with_invoke_complete_error(probe):
    client = lambda_client(probe())
    event = {"action": "stream", "chunks": ["partial ", "output"], "error": ERROR}
    received = events(client.invoke_with_response_stream(FunctionName="function", Payload=json.dumps(event)))
    assert b"".join(item["PayloadChunk"]["Payload"] for item in received[:-1]) == b"partial output"
    assert received[-1] == {"InvokeComplete": {"ErrorCode": "StreamError", "ErrorDetails": "stream broke"}}


def test_an_error_before_any_output_is_invoke_complete_alone(probe):
    client = lambda_client(probe())
    response = client.invoke_with_response_stream(FunctionName="function", Payload=b'{"action": "error"}')
    assert response["StatusCode"] == 200
    assert events(response) == [{"InvokeComplete": {"ErrorCode": "ProbeError", "ErrorDetails": "boom"}}]
    streamed_error = {"action": "stream", "chunks": [], "error": ERROR}
    response = client.invoke_with_response_stream(FunctionName="function", Payload=json.dumps(streamed_error))
    assert events(response) == [{"InvokeComplete": {"ErrorCode": "StreamError", "ErrorDetails": "stream broke"}}]


def test_a_timeout_and_a_crash_end_the_stream_with_their_error_codes(probe):
    client = lambda_client(probe(timeout=1))
    timed_out = client.invoke_with_response_stream(
        FunctionName="function", Payload=b'{"action": "sleep", "seconds": 30}'
    )
    ((complete,),) = [[item["InvokeComplete"] for item in events(timed_out)]]
    request_id = timed_out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert complete == {
        "ErrorCode": "Sandbox.Timedout",
        "ErrorDetails": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    crashed = client.invoke_with_response_stream(FunctionName="function", Payload=b'{"action": "exit", "code": 3}')
    assert crashed["StatusCode"] == 200
    (item,) = events(crashed)
    assert item["InvokeComplete"]["ErrorCode"] == "Runtime.ExitError"
    assert item["InvokeComplete"]["ErrorDetails"].endswith("Runtime exited with error: exit status 3")


def test_dry_run_and_event_invocation_types(probe):
    client = lambda_client(probe())
    assert client.invoke_with_response_stream(FunctionName="function", InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as raised:
        client.invoke_with_response_stream(FunctionName="function", InvocationType="Event")
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_an_http_1_0_invoker_gets_the_whole_event_stream(probe):
    emu = probe()
    body = json.dumps({"action": "stream", "chunks": ["a", "b"]}).encode()
    with socket.create_connection(("127.0.0.1", emu.invoke_port), timeout=20) as sock:
        sock.sendall(f"POST {STREAM_PATH} HTTP/1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"Content-Length: {len(payload)}".encode() in head
    buffer = EventStreamBuffer()
    buffer.add_data(payload)
    *chunks, last = [(message.headers[":event-type"], message.payload) for message in buffer]
    assert {event_type for event_type, _ in chunks} == {"PayloadChunk"}
    assert b"".join(payload for _, payload in chunks) == b"ab"  # one chunk or two, as the reads fell
    assert last == ("InvokeComplete", b"{}")
