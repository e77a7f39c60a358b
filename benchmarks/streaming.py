"""Response streaming: time to first byte and stream throughput, as a markdown table.

    python benchmarks/streaming.py               # 3 repeats (~30 s on 2 cores)
    python benchmarks/streaming.py --repeats 5 --json out.json

Time to first byte: a handler makes 10 items, each after 100 ms of work. Streamed (`@fastric.streaming`), the
first item is at the Runtime API as soon as it is made; buffered (awslambdaric cannot stream; fastric's
buffered path for reference), the caller's first byte waits for the whole response. Measured at the Runtime
API (this script's server on 127.0.0.1) from the `/next` answer sent to the first body byte received and to
the response complete.

Throughput: a 64 MiB stream of 64 KiB items from a plain generator (blocking loop) and from an async generator
(uvloop loop), read as fast as the server can, with the client's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import socket
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import procstat  # noqa: E402
from benchmarks.harness import ClientProcess  # noqa: E402

MiB = 1 << 20
TICKS = {"items": 10, "gap": 0.1}
BULK = {"total": 64 * MiB, "item_size": 64 * 1024}
TTFB_RUNS = (  # (label, client, handler)
    ("streamed, fastric", "fastric", "bench_stream.ticks_streamed"),
    ("buffered, fastric", "fastric", "bench_stream.ticks_buffered"),
    ("buffered, awslambdaric", "awslambdaric", "bench_stream.ticks_buffered"),
)
BULK_RUNS = (
    ("plain generator (blocking loop)", "fastric", "bench_stream.bulk"),
    ("async generator (uvloop loop)", "fastric", "bench_stream.bulk_async"),
)
_DATE = b"Date: Mon, 01 Jan 2026 00:00:00 GMT\r\n"
_ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n" + _DATE + b'\r\n{"status":"OK"}'
_OVER = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n" + _DATE + b"\r\n"


@dataclass
class Timing:
    """One invocation as the Runtime API saw it, in seconds from the `/next` answer."""

    first_byte: float  # the first byte of the response body arrived
    complete: float  # the whole response arrived
    size: int  # body bytes
    chunks: int  # 0 for a Content-Length body


class TimingServer:
    """A Runtime API for one client that times the response to each invocation `invoke` hands it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self._events: queue.Queue[bytes | None] = queue.Queue()
        self._timings: queue.Queue[Timing | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:  # the ClientProcess interface
        pass

    def finish(self) -> None:
        """Answer the next `/next` with a 500: the client exits."""
        self._events.put(None)

    def invoke(self, event: dict, timeout: float = 120.0) -> Timing:
        self._events.put(json.dumps(event).encode())
        result = self._timings.get(timeout=timeout)
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        with sock:
            reader = _Reader(sock)
            try:
                while True:
                    method, _ = reader.head()
                    if method != b"GET":
                        raise AssertionError(f"expected GET /next, got {method!r}")
                    event = self._events.get()
                    if event is None:
                        sock.sendall(_OVER)
                        return
                    sock.sendall(
                        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: bench-%d\r\n"
                        b"Lambda-Runtime-Deadline-Ms: %d\r\nContent-Type: application/json\r\n"
                        b"%sContent-Length: %d\r\n\r\n%s"
                        % (time.monotonic_ns(), int(time.time() * 1000) + 600_000, _DATE, len(event), event)
                    )
                    sent = time.perf_counter()
                    _, headers = reader.head()
                    timing = reader.body(headers, sent)
                    sock.sendall(_ACCEPTED)
                    self._timings.put(timing)
            except (OSError, EOFError, AssertionError) as exc:
                self._timings.put(exc)


class _Reader:
    """Reads requests from one socket, counting body bytes without keeping them."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.first_at: float | None = None  # when the first body byte of the current request arrived

    def _fill(self) -> None:
        data = self.sock.recv(1 << 18)
        if not data:
            raise EOFError
        self.buf += data

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def head(self) -> tuple[bytes, dict[bytes, bytes]]:
        method = self.line().split(b" ", 1)[0]
        headers = {}
        while line := self.line():
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return method, headers

    def skip(self, size: int) -> None:
        while size:
            if not self.buf:
                self._fill()
            if self.first_at is None:
                self.first_at = time.perf_counter()
            piece = min(size, len(self.buf))
            del self.buf[:piece]
            size -= piece

    def body(self, headers: dict[bytes, bytes], sent: float) -> Timing:
        self.first_at = None
        size = chunks = 0
        if headers.get(b"transfer-encoding") == b"chunked":
            while chunk := int(self.line().split(b";")[0], 16):
                self.skip(chunk + 2)
                size += chunk
                chunks += 1
            while self.line():  # trailers
                pass
        else:
            size = int(headers.get(b"content-length", b"0"))
            self.skip(size)
        done = time.perf_counter()
        return Timing((self.first_at or done) - sent, done - sent, size, chunks)


@dataclass
class Run:
    timings: list[Timing]
    client_cpu: float  # seconds of client CPU per invocation
    peak_kb: int  # the client's peak RSS


def measure(client: str, handler: str, event: dict, repeats: int) -> Run:
    """`repeats` invocations of `handler` under `client`, in one process."""
    server = TimingServer()
    try:
        with ClientProcess(client, handler, server) as process:  # type: ignore[arg-type]
            pid = process.proc.pid
            server.invoke(event)  # warm-up
            cpu_before = procstat.cpu_ns(pid)
            timings = [server.invoke(event) for _ in range(repeats)]
            run = Run(timings, (procstat.cpu_ns(pid) - cpu_before) / 1e9 / repeats, procstat.peak_rss_kb(pid))
            process.stop(server)  # type: ignore[arg-type]
        return run
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="invocations per measurement (median reported)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw timings here")
    args = parser.parse_args(argv)
    raw: dict[str, list[dict]] = {}

    print(f"### Time to first byte: {TICKS['items']} items, {TICKS['gap'] * 1000:.0f} ms of work before each\n")
    print("| response | first byte at the Runtime API | response complete | chunks |")
    print("|---|--:|--:|--:|")
    for label, client, handler in TTFB_RUNS:
        timings = measure(client, handler, TICKS, args.repeats).timings
        raw[label] = [asdict(t) for t in timings]
        # a buffered response reaches its caller only once complete: that is its first byte too
        first = statistics.median(t.first_byte if t.chunks else t.complete for t in timings)
        complete = statistics.median(t.complete for t in timings)
        print(f"| {label} | {first * 1000:.1f} ms | {complete * 1000:.1f} ms | {timings[0].chunks or '-'} |")

    print(f"\n### Throughput: a {BULK['total'] // MiB} MiB stream of {BULK['item_size'] // 1024} KiB items\n")
    print("| handler | time | throughput | client CPU | peak RSS of the runtime |")
    print("|---|--:|--:|--:|--:|")
    for label, client, handler in BULK_RUNS:
        run = measure(client, handler, BULK, args.repeats)
        timings = run.timings
        raw[label] = [asdict(t) for t in timings]
        assert all(t.size == BULK["total"] for t in timings), "a stream arrived incomplete"
        seconds = statistics.median(t.complete for t in timings)
        rate = BULK["total"] / MiB / seconds
        cpu = run.client_cpu * 1000
        print(f"| {label} | {seconds * 1000:.0f} ms | {rate:,.0f} MiB/s | {cpu:.0f} ms | {run.peak_kb / 1024:.1f} MB |")

    print(
        f"\nMeasured on: {platform.processor() or platform.machine()}, CPython {platform.python_version()}, "
        f"{args.repeats} invocations per row (medians). Command: `python benchmarks/streaming.py`."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
