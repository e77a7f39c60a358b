"""fastric's own streaming handlers (`@fastric.streaming`) run by `fastric emulate`, streamed to the invoker."""

from __future__ import annotations

import base64
import json

from emulator_process import HERE
from test_streaming import post

STREAMING_APP = HERE.parent / "fixtures" / "streaming"


def test_items_reach_the_invoker_as_they_are_yielded(emulator, tmp_path):
    """The handler makes item i+1 only once the invoker has item i (it waits for the file ack-i)."""
    emu = emulator("--task-root", str(STREAMING_APP), "stream_app.gated")
    sock, response = post(emu, {"count": 4, "dir": str(tmp_path)})
    with sock:
        status, headers = response.head()
        assert status == 200 and headers["content-type"] == "application/octet-stream"
        for i in range(4):
            assert response.chunk() == f"item {i};".encode()
            (tmp_path / f"ack-{i}").touch()
        assert response.chunk() is None
        assert response.trailers() == {}


def test_a_failure_after_output_reaches_the_invoker_as_trailers(emulator):
    emu = emulator("--task-root", str(STREAMING_APP), "stream_app.async_stream")
    sock, response = post(emu, {"items": ["partial ", "output"], "raise": "late"})
    with sock:
        status, _ = response.head()
        body = b""
        while (chunk := response.chunk()) is not None:
            body += chunk
        trailers = response.trailers()
    assert status == 200 and body == b"partial output"
    assert trailers["x-amz-function-error"] == "Unhandled"
    assert trailers["lambda-runtime-function-error-type"] == "ValueError"
    document = json.loads(base64.b64decode(trailers["lambda-runtime-function-error-body"]))
    assert (document["errorType"], document["errorMessage"]) == ("ValueError", "late")


def test_a_failure_before_output_is_an_ordinary_function_error(emulator):
    emu = emulator("--task-root", str(STREAMING_APP), "stream_app.sync_stream")
    response = emu.invoke({"items": [], "raise": "early"})
    assert response.status == 200 and response.headers["x-amz-function-error"] == "Unhandled"
    assert (response.json()["errorType"], response.json()["errorMessage"]) == ("ValueError", "early")
    assert emu.invoke({"items": ["still ", "serving"]}).body == b"still serving"
