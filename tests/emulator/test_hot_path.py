"""The pieces of the emulator's per-invoke path made cheap: each does what the slower one it replaced did."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import uuid

from test_units import _exchange_raw

from fastric.emulator.httpserver import encode_headers
from fastric.emulator.invocation import new_trace_id, new_uuid
from fastric.emulator.report import MemoryProbe, PlatformLog, Report, peak_rss_kb
from fastric.emulator.sandbox import Poll


def _open_fds(pid: int) -> int:
    """This process's descriptors open on `/proc/PID/...` (other threads' descriptors do not count)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(f"/proc/{pid}/")
    return count


def test_memory_probe_reads_what_peak_rss_kb_reads_and_closes_its_descriptors():
    process = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # until both children are there
        assert len(_children(process.pid)) == 2
        probe = MemoryProbe(process.pid)
        assert probe.peak_kb() == peak_rss_kb(process.pid) > 0
        assert probe.peak_kb() == peak_rss_kb(process.pid)  # read again through the kept descriptors
        assert _open_fds(process.pid) > 0
    finally:
        for child in _children(process.pid):
            os.kill(child, 9)
        process.kill()
        process.wait()
    assert probe.peak_kb() == 0  # gone: nothing read, every descriptor dropped
    assert _open_fds(process.pid) == 0
    probe.close()
    assert MemoryProbe(2**22 + 12345).peak_kb() == 0  # no such process


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", "rb") as children:
        return [int(child) for child in children.read().split()]


def test_memory_probe_of_a_threaded_process_reads_every_thread_children():
    probe = MemoryProbe(os.getpid())
    assert probe.peak_kb() == peak_rss_kb(os.getpid()) > 0
    probe.close()


def test_ids_are_version_4_uuids_and_trace_headers_are_x_ray_ones():
    ids = {new_uuid() for _ in range(10000)}
    assert len(ids) == 10000
    for request_id in list(ids)[:1000]:
        parsed = uuid.UUID(request_id)
        assert str(parsed) == request_id and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    trace = new_trace_id()
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", trace), trace
    assert abs(int(trace[7:15], 16) - time.time()) < 5


def test_end_and_report_lines_are_written_in_one_write():
    class Out:
        def __init__(self) -> None:
            self.writes: list[str] = []

        def write(self, text: str) -> None:
            self.writes.append(text)

        def flush(self) -> None:
            pass

    out = Out()
    end, report = PlatformLog(out).end_report(Report("r", 0.4, 128, 20))  # type: ignore[arg-type]
    assert end == "END RequestId: r"
    assert report.startswith("REPORT RequestId: r\tDuration: 0.40 ms")
    assert out.writes == [f"{end}\n{report}\n"]


def test_a_poll_hands_the_invocation_over_at_once_unless_cancelled():
    handed: list[object] = []
    poll = Poll(handed.append)
    assert not poll.done()
    poll.set_result("invocation")  # type: ignore[arg-type]
    assert handed == ["invocation"] and poll.done()
    cancelled = Poll(handed.append)
    assert cancelled.cancel() and cancelled.done() and not cancelled.cancel()


def test_http_apps_may_answer_at_once_or_return_a_coroutine_and_a_failing_one_gets_500():
    seen = []

    def app(exchange):
        if exchange.path == "/later":
            return later(exchange)
        if exchange.path == "/boom":
            raise RuntimeError("boom")
        body = exchange.body_if_complete()
        seen.append((exchange.path, body))
        exchange.respond(200, encode_headers([("Content-Type", "application/json")]), b'{"now":1}')
        return None

    async def later(exchange):
        body = await exchange.read_body()
        seen.append((exchange.path, body))
        exchange.respond(200, [("Content-Type", "application/json")], b'{"later":1}')

    payload = (
        b"POST /now HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /later HTTP/1.1\r\nContent-Length: 2\r\n\r\nde"
        b"POST /now HTTP/1.1\r\nContent-Length: 1\r\n\r\nf"
    )
    data = asyncio.run(_exchange_raw(app, payload, 3))
    assert seen == [("/now", b"abc"), ("/later", b"de"), ("/now", b"f")]
    bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1][:11]) for part in data.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [{"now": 1}, {"later": 1}, {"now": 1}]  # in request order on the one connection

    data = asyncio.run(_exchange_raw(app, b"POST /boom HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1))
    assert data.startswith(b"HTTP/1.1 500 ") and b"Connection: close" in data and b"EmulatorError" in data
