"""`X-Amz-Log-Type: Tail` → `X-Amz-Log-Result`, over raw HTTP and through real boto3, against `fastric emulate`."""

from __future__ import annotations

import base64

import boto3
from botocore.config import Config
from extensions_kit import BOOTSTRAP, add_extension, environment

TAIL = {"X-Amz-Log-Type": "Tail"}


def log_of(response) -> list[str]:
    return base64.b64decode(response.headers["x-amz-log-result"]).decode().splitlines()


def test_tail_is_the_invocations_log(emulator, tmp_path):
    add_extension(tmp_path / "ext", "recorder")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(tmp_path / "r"))
    plain = emu.invoke({"print": "untold"})
    assert plain.status == 200 and "x-amz-log-result" not in plain.headers

    response = emu.invoke({"print": "hello tail"}, headers=TAIL)
    assert response.status == 200 and response.json()["event"] == {"print": "hello tail"}
    request_id = response.headers["x-amzn-requestid"]
    lines = log_of(response)
    assert f"recorder: INVOKE {request_id}" in lines  # the extensions' output is in the log too
    lines = [line for line in lines if not line.startswith("recorder: ")]
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[1:3] == [f"function saw {request_id}", "hello tail"]
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "untold" not in lines  # another invocation's output


def test_tail_keeps_the_last_4_kb(emulator, tmp_path):
    emu = emulator("--", *BOOTSTRAP, env=environment(tmp_path / "r"))
    response = emu.invoke({"print": "x" * 99, "repeat": 100}, headers=TAIL)
    raw = base64.b64decode(response.headers["x-amz-log-result"])
    assert len(raw) == 4096
    assert raw.endswith(b"\n") and raw.splitlines()[-1].startswith(b"REPORT RequestId: ")
    assert raw.splitlines()[-3] == b"x" * 99


def test_tail_with_a_function_error(emulator, tmp_path):
    emu = emulator("--", *BOOTSTRAP, env=environment(tmp_path / "r"))
    response = emu.invoke({"fail": True}, headers=TAIL)
    assert response.status == 200 and response.headers["x-amz-function-error"] == "Unhandled"
    assert response.json() == {"errorMessage": "asked to fail", "errorType": "ProbeError"}
    assert log_of(response)[-1].startswith(f"REPORT RequestId: {response.headers['x-amzn-requestid']}")


def test_boto3_invoke_with_log_type_tail(emulator, tmp_path):
    emu = emulator("--", *BOOTSTRAP, env=environment(tmp_path / "r"))
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{emu.port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )
    result = client.invoke(FunctionName="function", LogType="Tail", Payload=b'{"print": "hello boto3"}')
    request_id = result["ResponseMetadata"]["RequestId"]
    assert result["StatusCode"] == 200 and result["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in result
    log = base64.b64decode(result["LogResult"]).decode()
    assert f"function saw {request_id}\nhello boto3\n" in log
    assert log.splitlines()[-1].startswith(f"REPORT RequestId: {request_id}\t")
    assert b'"hello boto3"' in result["Payload"].read()
