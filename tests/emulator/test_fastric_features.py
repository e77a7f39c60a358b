"""fastric's features beyond awslambdaric, end to end: the runtime under `fastric emulate`, driven by real clients
(boto3's `invoke_with_response_stream`, an HTTP client on the Function URL front), and the shutdown sequence."""

from __future__ import annotations

from pathlib import Path

from emulator_process import clean_env
from test_boto3 import lambda_client

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "e2e"


def start(emulator, handler, *options):
    return emulator(*options, "--task-root", str(FIXTURES), handler, cwd=FIXTURES, env=clean_env())


def test_boto3_streams_a_fastric_generator_as_it_yields(lambda_function, tmp_path):
    emu = lambda_function("features.stream", task_root=FIXTURES, timeout=300)
    gate = tmp_path / "seen-first-chunk"
    response = lambda_client(emu).invoke_with_response_stream(
        FunctionName="function", Payload=f'{{"gate": "{gate}"}}'.encode()
    )
    assert response["ResponseStreamContentType"] == "text/plain"
    stream = iter(response["EventStream"])
    first = next(stream)
    # The handler is still parked after its first item (it waits for `gate`): that chunk came out live.
    assert first == {"PayloadChunk": {"Payload": b"chunk0;"}}
    gate.touch()
    rest = list(stream)
    payload = b"".join(e["PayloadChunk"]["Payload"] for e in rest if "PayloadChunk" in e)
    assert payload == b"chunk1;chunk2;"
    assert rest[-1] == {"InvokeComplete": {}}


def test_boto3_sees_a_mid_stream_error_of_a_fastric_generator(lambda_function):
    emu = lambda_function("features.stream", task_root=FIXTURES, timeout=300)
    response = lambda_client(emu).invoke_with_response_stream(FunctionName="function", Payload=b'{"fail_at": 1}')
    events = list(response["EventStream"])
    assert events[0] == {"PayloadChunk": {"Payload": b"chunk0;"}}
    assert events[-1]["InvokeComplete"]["ErrorCode"] == "RuntimeError"
    assert events[-1]["InvokeComplete"]["ErrorDetails"] == "mid-stream boom"


def test_function_url_serves_a_fastric_http_prelude(lambda_function):
    response = lambda_function("features.page", task_root=FIXTURES).http("GET", "/some/path?q=1")
    assert response.status == 201
    assert response.headers["Content-Type"] == "text/html"
    assert response.headers["X-A"] == "b"
    assert response.headers.get_all("Set-Cookie") == ["a=b"]
    assert response.body == b"<p>q=1</p>"


def test_emulator_shutdown_runs_the_functions_on_shutdown_hooks(emulator):
    emu = start(emulator, "features.stream")
    assert emu.invoke({"n": 1}).body == b"chunk0;"
    assert emu.stop() == 0
    assert "on_shutdown hook ran" in emu.stderr
