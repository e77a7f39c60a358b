"""`LocalFunction` without pytest's fixture: a context manager, the invoke options, and cleanup when its owner dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fastric.testing import InvokeResult, LocalFunction

APP = """\
import fastric

def context(event, context):
    return {"custom": context.client_context.custom, "event": event}

@fastric.streaming
def text(event, context):
    yield b"not "
    yield b"json"
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_context_manager_with_the_invoke_options(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    with LocalFunction("app.context", task_root=tmp_path) as fn:
        result = fn.invoke(payload=b'{"raw": true}', client_context={"custom": {"user": "Zoë"}})
        assert isinstance(result, InvokeResult)
        assert result.payload == {"custom": {"user": "Zoë"}, "event": {"raw": True}}
        refused = fn.invoke(payload=b"not json")
        assert refused.status_code == 400 and refused.payload["Type"] == "User"
        pid = fn.pid
        assert pid is not None and alive(pid)
    assert not alive(pid)
    with LocalFunction("app.text", task_root=tmp_path) as fn:
        result = fn.invoke()
        assert result.raw == b"not json" and result.payload == b"not json"  # not JSON: the bytes


def test_the_emulator_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\ndef handler(event, context):\n    return os.getpid()\n")
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, time\n"
            "from fastric.testing import LocalFunction\n"
            f"fn = LocalFunction('app.handler', task_root={str(tmp_path)!r}).start()\n"
            "print(json.dumps([fn.pid, fn.invoke().payload]), flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert all(alive(pid) for pid in pids)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if alive(pid)]
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()


def test_a_chatty_invocation_keeps_its_whole_log(tmp_path: Path) -> None:
    """The 4 KB `X-Amz-Log-Result` tail loses a chatty invocation's START; `logs` holds all of it."""
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n    for n in range(5000):\n        print('line', n)\n    return n\n"
    )
    with LocalFunction("app.handler", task_root=tmp_path) as fn:
        for result in (fn.invoke(), fn.invoke()):
            lines = result.logs.splitlines()
            assert lines[0] == f"START RequestId: {result.request_id} Version: $LATEST"
            assert lines[1:5001] == [f"line {n}" for n in range(5000)]
            assert lines[5001] == f"END RequestId: {result.request_id}"
            assert lines[5002].startswith(f"REPORT RequestId: {result.request_id}\t") and len(lines) == 5003


EXTENSION = """\
#!{python}
import http.client, json, os

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
def call(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request(method, "/2020-01-01/extension" + path, body=body, headers=headers or {{}})
    response = connection.getresponse()
    return response.getheader("Lambda-Extension-Identifier"), json.loads(response.read() or b"null")

identifier, _ = call("POST", "/register", json.dumps({{"events": ["INVOKE", "SHUTDOWN"]}}),
                     {{"Lambda-Extension-Name": "watcher"}})
while True:
    _, event = call("GET", "/event/next", headers={{"Lambda-Extension-Identifier": identifier}})
    print("watcher saw", event["eventType"], event.get("requestId"), flush=True)
    if event["eventType"] == "SHUTDOWN":
        break
"""


def test_an_external_extension_and_its_output_in_the_invocations_log(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 'ok'\n")
    extensions = tmp_path / "extensions"
    extensions.mkdir()
    (extensions / "watcher").write_text(EXTENSION.format(python=sys.executable))
    (extensions / "watcher").chmod(0o755)
    with LocalFunction("app.handler", task_root=tmp_path, extensions=extensions) as fn:
        result = fn.invoke()
        assert result.payload == "ok"
        assert f"watcher saw INVOKE {result.request_id}" in result.logs.splitlines()


def test_invoke_caps_a_stream_as_lambda_does_and_stream_does_not(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import fastric\n\n@fastric.streaming\ndef handler(event, context):\n"
        "    for _ in range(event['mb']):\n        yield b'x' * 1048576\n"
    )
    with LocalFunction("app.handler", task_root=tmp_path) as fn:
        for _ in range(3):  # a stream past the limit that arrives before the emulator reads it was once lost
            assert len(fn.invoke({"mb": 6}).raw) == 6 * 1048576
            too_large = fn.invoke({"mb": 7})
            assert too_large.function_error == "Unhandled"
            assert too_large.error is not None and too_large.error["errorType"] == "Function.ResponseSizeTooLarge"
            stream = fn.stream({"mb": 7})
            assert sum(len(chunk) for chunk in stream) == 7 * 1048576 and stream.function_error is None


def test_the_json_log_format_and_level_from_env(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import logging\n\ndef handler(event, context):\n"
        "    logging.getLogger().debug('hidden')\n    logging.getLogger().warning('shown')\n"
    )
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}
    with LocalFunction("app.handler", task_root=tmp_path, env=env) as fn:
        result = fn.invoke()
    records = [json.loads(line) for line in result.logs.splitlines() if line.startswith("{")]
    assert [(record["level"], record["message"]) for record in records] == [("WARNING", "shown")]
    assert records[0]["requestId"] == result.request_id
