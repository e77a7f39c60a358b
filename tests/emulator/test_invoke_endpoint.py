"""The invoke endpoint against real bootstraps: fastric, awslambdaric, a sh + curl script, the probe."""

from __future__ import annotations

import base64
import json
import shutil
import sys
import time

import pytest
from emulator_process import EXAMPLES, INVOKE_PATH, PROBE, clean_env, pid_alive

SEED_EVENT = {"queryStringParameters": {"foo": "bar"}}
BOOTSTRAPS = {
    "fastric": ["app.handler"],
    "awslambdaric": ["--", sys.executable, "-m", "awslambdaric", "app.handler"],
}


@pytest.mark.parametrize("client", sorted(BOOTSTRAPS))
def test_seed_example_as_with_curl(emulator, client):
    emu = emulator(*BOOTSTRAPS[client])
    response = emu.invoke(SEED_EVENT)  # curl -XPOST URL -d '{"queryStringParameters":{"foo":"bar"}}'
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert "x-amz-function-error" not in response.headers
    result = response.json()
    assert result["statusCode"] == 200
    assert result["headers"] == {"Content-Type": "application/json"}
    assert result["body"] == 'queryStringParameters, {"foo":"bar"}'
    request_id = response.headers["x-amzn-requestid"]
    report = emu.report_for(request_id)
    assert report is not None, emu.stderr
    assert f"START RequestId: {request_id} Version: $LATEST" in emu.stderr
    assert f"END RequestId: {request_id}" in emu.stderr
    fields = dict(field.split(": ", 1) for field in report.split("\t")[1:])
    assert float(fields["Duration"].removesuffix(" ms")) >= 0
    assert int(fields["Billed Duration"].removesuffix(" ms")) >= 1
    assert fields["Memory Size"] == "3008 MB"
    assert int(fields["Max Memory Used"].removesuffix(" MB")) > 1  # a Python process: several MB
    assert "Init Duration" in fields


def test_seed_example_without_query_parameters(emulator):
    emu = emulator(*BOOTSTRAPS["awslambdaric"])
    response = emu.invoke(body=b"")  # curl -XPOST URL with no body: the event is {}
    assert response.status == 200
    assert response.json()["body"] == "queryStringParameters, null"


def test_keep_alive_connection_serves_many_invokes(emulator):
    emu = emulator(*BOOTSTRAPS["awslambdaric"])
    conn = emu.connection()
    try:
        bodies = [emu.invoke({"queryStringParameters": {"n": str(n)}}, conn=conn).json()["body"] for n in range(20)]
    finally:
        conn.close()
    assert bodies == [f'queryStringParameters, {{"n":"{n}"}}' for n in range(20)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the sh + curl bootstrap needs the curl program")
def test_shell_script_bootstrap_with_curl(emulator):
    emu = emulator("--", "sh", str(EXAMPLES / "bootstrap-curl.sh"))
    first = emu.invoke({"hello": "world"})
    second = emu.invoke([1, 2, 3])
    assert first.status == second.status == 200
    assert first.json() == {"echo": {"hello": "world"}, "requestId": first.headers["x-amzn-requestid"]}
    assert second.json() == {"echo": [1, 2, 3], "requestId": second.headers["x-amzn-requestid"]}
    assert first.headers["x-amzn-requestid"] != second.headers["x-amzn-requestid"]
    assert emu.report_for(second.headers["x-amzn-requestid"]) is not None


def test_next_headers_and_environment(emulator, tmp_path):
    emu = emulator(
        "--timeout",
        "120",
        "--memory",
        "256",
        "--function-name",
        "probe-fn",
        "--",
        *PROBE,
        cwd=tmp_path,
        env=clean_env(AWS_REGION="eu-west-1"),
    )
    client_context = {"client": {"installation_id": "i-1"}, "custom": {"k": "v"}, "env": {}}
    response = emu.invoke(
        {"x": 1},
        headers={
            "X-Amz-Client-Context": base64.b64encode(json.dumps(client_context).encode()).decode(),
            "X-Amz-Tenant-Id": "tenant-7",
            "X-Amzn-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            "X-Amz-Cognito-Identity": '{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}',
        },
    )
    assert response.status == 200
    seen = response.json()
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["event"] == {"x": 1}
    assert headers["content-type"] == "application/json"
    assert headers["lambda-runtime-aws-request-id"] == response.headers["x-amzn-requestid"]
    assert headers["lambda-runtime-invoked-function-arn"] == "arn:aws:lambda:eu-west-1:012345678912:function:probe-fn"
    assert headers["lambda-runtime-trace-id"].startswith("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700")
    assert json.loads(headers["lambda-runtime-client-context"]) == client_context
    assert json.loads(headers["lambda-runtime-cognito-identity"])["cognitoIdentityPoolId"] == "pool-1"
    assert headers["lambda-runtime-aws-tenant-id"] == "tenant-7"
    assert headers["lambda-runtime-invocation-id"]
    # The deadline is the invoke time plus the 120 s timeout (checked loosely against this clock).
    assert 100_000 < int(headers["lambda-runtime-deadline-ms"]) - time.time() * 1000 <= 120_000
    assert seen["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "probe-fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/probe-fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": seen["env"]["AWS_LAMBDA_LOG_STREAM_NAME"],
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_MAX_CONCURRENCY": None,
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_HANDLER": None,  # no handler given: none guessed from the command's words
        "TZ": ":UTC",
    }
    assert "[$LATEST]" in seen["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert seen["cwd"] == str(tmp_path)
    assert "Memory Size: 256 MB" in emu.report_for(response.headers["x-amzn-requestid"])


def test_trace_id_is_generated_when_the_invoker_sends_none(emulator):
    emu = emulator("--", *PROBE)
    headers = emu.invoke({}).json()["headers"]
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")


def test_runtime_content_type_reaches_the_invoker(emulator):
    emu = emulator("--", *PROBE)
    response = emu.invoke({"action": "content_type"})
    assert response.status == 200
    assert response.headers["content-type"] == "text/html"
    assert response.body == b"<p>hi</p>"


def test_requests_the_invoke_endpoint_refuses(emulator):
    emu = emulator("--", *PROBE)
    not_json = emu.invoke(body=b"hello")
    assert not_json.status == 400
    assert not_json.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert not_json.json()["Type"] == "User"
    bad_context = emu.invoke({}, headers={"X-Amz-Client-Context": "***"})
    assert bad_context.status == 400
    conn = emu.connection()
    try:
        conn.request("GET", INVOKE_PATH)
        assert conn.getresponse().status == 405
    finally:
        conn.close()
    conn = emu.connection()
    try:
        conn.request("POST", "/nowhere", body=b"{}")
        response = conn.getresponse()
        assert response.status == 404
        assert response.getheader("X-Amzn-ErrorType") == "ResourceNotFoundException"
        assert json.loads(response.read())["Type"] == "User"
    finally:
        conn.close()
    assert emu.invoke({"still": "works"}).status == 200


def test_event_and_dry_run_invocation_types(emulator):
    emu = emulator("--", *PROBE)
    assert emu.invoke({}, headers={"X-Amz-Invocation-Type": "DryRun"}).status == 204
    accepted = emu.invoke({"action": "sleep", "seconds": 0}, headers={"X-Amz-Invocation-Type": "Event"})
    assert accepted.status == 202 and accepted.body == b""
    assert emu.report_for(accepted.headers["x-amzn-requestid"]) is not None


def test_sigterm_stops_the_bootstrap_and_exits_zero(emulator):
    emu = emulator("--", *PROBE)
    pid = emu.invoke({}).json()["pid"]
    assert pid_alive(pid)
    assert emu.stop() == 0
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)
