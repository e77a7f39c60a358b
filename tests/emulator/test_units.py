"""The emulator's pure pieces: documents, configuration, REPORT lines, and the HTTP layer in-process."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys

import pytest

from fastric.emulator import documents
from fastric.emulator.config import ConfigError, FunctionConfig, resolve_command
from fastric.emulator.httpserver import serve
from fastric.emulator.report import format_report, kb_to_mb, peak_rss_kb


def test_documents_use_rapid_wording():
    assert documents.MAX_PAYLOAD == 6_291_556
    assert json.loads(documents.PAYLOAD_TOO_LARGE) == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }
    assert json.loads(documents.INVALID_REQUEST_ID) == {
        "errorMessage": "Invalid request ID",
        "errorType": "InvalidRequestID",
    }
    assert json.loads(documents.timed_out("rid", 3)) == {
        "errorMessage": "RequestId: rid Error: Task timed out after 3.00 seconds",
        "errorType": "Sandbox.Timedout",
    }


@pytest.mark.parametrize(
    "returncode, reason",
    [(3, "exit status 3"), (-signal.SIGKILL, "signal: killed"), (-signal.SIGSEGV, "signal: segmentation fault")],
)
def test_exit_reasons_read_like_go(returncode, reason):
    assert documents.exit_reason(returncode) == reason
    assert (
        json.loads(documents.runtime_exit("r", returncode))["errorMessage"]
        == f"RequestId: r Error: Runtime exited with error: {reason}"
    )


def test_posted_error_documents():
    assert documents.posted_error(b'{"a":1}', "application/json", None) == b'{"a":1}'
    assert json.loads(documents.posted_error(b"", None, "Runtime.Boom")) == {
        "errorMessage": "",
        "errorType": "Runtime.Boom",
    }
    cause = b'{"errorMessage":"m","errorType":"T","errorCause":{"paths":[]}}'
    assert json.loads(documents.posted_error(cause, "application/vnd.aws.lambda.error.cause+json", None)) == {
        "errorMessage": "m",
        "errorType": "T",
    }
    encoded = base64.b64encode(b'{"errorType":"X"}').decode()
    assert documents.error_from_trailers("X", encoded) == b'{"errorType":"X"}'
    assert json.loads(documents.error_from_trailers("X", "%%%")) == {"errorMessage": "", "errorType": "X"}


def test_resolve_command(tmp_path):
    assert resolve_command("app.handler", [], str(tmp_path)) == (
        [sys.executable, "-m", "fastric", "app.handler"],
        "app.handler",
    )
    assert resolve_command(None, ["php", "index.php"], str(tmp_path)) == (["php", "index.php"], None)
    assert resolve_command("h.f", ["./run"], str(tmp_path)) == (["./run"], "h.f")
    assert resolve_command(None, ["./bootstrap"], str(tmp_path))[1] is None
    if not os.path.exists("/var/runtime/bootstrap"):
        with pytest.raises(ConfigError):
            resolve_command(None, [], str(tmp_path))
    (tmp_path / "bootstrap").write_text("#!/bin/sh\n")
    assert resolve_command(None, [], str(tmp_path)) == ([str(tmp_path / "bootstrap")], None)


def test_environment():
    config = FunctionConfig(
        command=["x"],
        task_root="/code",
        handler="m.f",
        base_env={"TZ": "Europe/Paris", "AWS_LAMBDA_MAX_CONCURRENCY": "9"},
    )
    env = config.environment("127.0.0.1:1234")
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:1234"
    assert env["TZ"] == "Europe/Paris"  # an explicit TZ wins
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in env  # concurrency is the emulator's to pass
    assert env["_HANDLER"] == "m.f" and env["LAMBDA_TASK_ROOT"] == "/code"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "test_function"
    concurrent = FunctionConfig(command=["x"], task_root="/", concurrency=3, base_env={}).environment("a:1")
    assert concurrent["AWS_LAMBDA_MAX_CONCURRENCY"] == "3" and concurrent["TZ"] == ":UTC"
    assert concurrent["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"


def test_report_line():
    assert format_report("r", 0.4, 128, 20) == (
        "REPORT RequestId: r\tDuration: 0.40 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB"
    )
    line = format_report("r", 1001.2, 128, 20, init_duration_ms=50, status="timeout")
    assert line.endswith(
        "Billed Duration: 1002 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t"
        "Init Duration: 50.00 ms\tStatus: timeout"
    )


def test_peak_rss_of_this_process():
    assert kb_to_mb(peak_rss_kb(os.getpid())) > 1
    assert peak_rss_kb(2**22 + 12345) == 0  # no such process


async def _exchange_raw(app, payload: bytes, expect: int) -> bytes:
    server = await serve(app, "127.0.0.1", 0, body_limit=16)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        data = b""
        while data.count(b"HTTP/1.1 ") < expect or not data.endswith(b"}"):
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            data += chunk
        writer.close()
        return data
    finally:
        server.close()


def test_http_layer_pipelining_chunked_trailers_and_limit():
    seen = []

    async def app(exchange):
        body = await exchange.read_body()
        seen.append((exchange.method, exchange.path, body, exchange.trailers, exchange.over_limit))
        exchange.respond(200, [("Content-Type", "application/json")], json.dumps({"n": len(seen)}).encode())

    payload = (
        b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: v\r\n\r\n"
        b"POST /b HTTP/1.1\r\nContent-Length: 20\r\n\r\n" + b"z" * 20 + b"GET /c?q=1 HTTP/1.1\r\n\r\n"
    )
    data = asyncio.run(_exchange_raw(app, payload, 3))
    assert seen == [
        ("POST", "/a", b"abcde", {"x-t": "v"}, False),
        ("POST", "/b", b"", {}, True),
        ("GET", "/c", b"", {}, False),
    ]
    # answers in request order on the one connection
    assert [json.loads(part.split(b"\r\n\r\n", 1)[1][:8]) for part in data.split(b"HTTP/1.1 ")[1:]] == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
    ]


def test_http_layer_refuses_garbage():
    async def app(exchange):  # pragma: no cover - never reached
        exchange.respond(200)

    data = asyncio.run(_exchange_raw(app, b"NOT HTTP AT ALL\r\n\r\n", 1))
    assert data.startswith(b"HTTP/1.1 400 ")
