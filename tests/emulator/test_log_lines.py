"""Output is forwarded by whole lines, per process: a runtime that writes a line's text and its newline
separately (unbuffered stdout does) never merges with an extension's line, on the console, in telemetry or
in `X-Amz-Log-Result`. Also unit tests of the line capture on a real pipe."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import textwrap

from emulator_process import HERE, INVOKE_PATH
from extensions_kit import environment

from fastric.emulator import logcapture
from fastric.emulator.logcapture import LineCapture

BOOTSTRAP = textwrap.dedent(
    f"""
    import os, sys, time
    sys.path.insert(0, {str(HERE)!r})
    from api_client import call
    while True:
        status, headers, event = call("GET", "/2018-06-01/runtime/invocation/next")
        for _ in range(15):
            os.write(1, b"AAAAAAAA")
            time.sleep(0.004)
            os.write(1, b"aaaaaaaa\\n")
        call("POST", f"/2018-06-01/runtime/invocation/{{headers['lambda-runtime-aws-request-id']}}/response", b"{{}}")
    """
)
EXTENSION = textwrap.dedent(
    f"""
    import json, os, sys, time
    sys.path.insert(0, {str(HERE)!r})
    from api_client import call
    name = os.path.basename(sys.argv[0])
    events = json.dumps({{"events": ["INVOKE", "SHUTDOWN"]}}).encode()
    _, headers, _ = call("POST", "/2020-01-01/extension/register", events, {{"Lambda-Extension-Name": name}})
    ident = {{"Lambda-Extension-Identifier": headers["lambda-extension-identifier"]}}
    while True:
        _, _, event = call("GET", "/2020-01-01/extension/event/next", headers=ident)
        if event["eventType"] == "SHUTDOWN":
            sys.exit(0)
        for _ in range(40):
            os.write(1, b"BBBBBBBBbbbbbbbb\\n")
            time.sleep(0.002)
    """
)


def _write(path, text, executable=False):
    path.write_text(text if not executable else f"#!{sys.executable}\n{text}")
    if executable:
        os.chmod(path, 0o755)
    return path


def test_lines_of_two_processes_never_merge(emulator, tmp_path):
    bootstrap = _write(tmp_path / "bootstrap.py", BOOTSTRAP)
    (tmp_path / "ext").mkdir()
    _write(tmp_path / "ext" / "chatty", EXTENSION, executable=True)
    emu = emulator(
        "--extensions", str(tmp_path / "ext"), "--", sys.executable, str(bootstrap), env=environment(tmp_path / "r")
    )
    conn = emu.connection()
    conn.request("POST", INVOKE_PATH, body=b"{}", headers={"X-Amz-Log-Type": "Tail"})
    response = conn.getresponse()
    response.read()
    tail = base64.b64decode(response.getheader("X-Amz-Log-Result")).decode()
    conn.close()
    request_id = response.getheader("X-Amzn-RequestId")
    assert emu.report_for(request_id) is not None
    assert emu.stop() == 0
    console = [line for line in emu.stderr.splitlines() if "AAAA" in line or "BBBB" in line]
    assert console.count("AAAAAAAAaaaaaaaa") == 15, console
    assert console.count("BBBBBBBBbbbbbbbb") == 40, console
    assert len(console) == 55, console  # nothing else: no merged line, no piece of one
    tailed = [line for line in tail.splitlines() if "AAAA" in line or "BBBB" in line]
    assert tailed and set(tailed) <= {"AAAAAAAAaaaaaaaa", "BBBBBBBBbbbbbbbb"}, tailed
    assert not [line for line in emu.stderr.splitlines() if line == ""]  # no empty line left by a split one


def test_a_partial_line_is_held_then_flushed_as_a_line(monkeypatch):
    async def scenario():
        lines: list[str] = []
        read_fd, write_fd = os.pipe()
        sink_read, sink_write = os.pipe()
        capture = LineCapture(read_fd, lambda line, at: lines.append(line), forward_to=sink_write)
        monkeypatch.setattr(logcapture, "FLUSH_AFTER", 60.0)  # no flush by time while the newline is awaited
        os.write(write_fd, b"text ")
        await asyncio.sleep(0.05)
        assert lines == []  # held for its newline
        os.write(write_fd, b"and newline\n")
        await asyncio.sleep(0.05)
        assert lines == ["text and newline"]
        monkeypatch.setattr(logcapture, "FLUSH_AFTER", 0.05)
        os.write(write_fd, b"next without one")
        await asyncio.sleep(0.5)  # the flush timeout passed: the partial line is a line of its own
        assert lines == ["text and newline", "next without one"]
        os.close(write_fd)
        await capture.wait_closed(2)
        os.close(sink_write)
        forwarded = os.read(sink_read, 65536)
        os.close(sink_read)
        return forwarded

    assert asyncio.run(scenario()) == b"text and newline\nnext without one\n"
