"""A minimal, verifying Lambda Runtime API for benchmarks.

One thread, one epoll, blocking raw sockets and prebuilt responses: the leanest server Python allows, so
that the client under test, not the server, sets the pace. Its own CPU is measured and reported.

The server hands out invocations in batches. When a `/next` arrives and the batch is spent, that request
is *parked* (left unanswered) and an idle `Snapshot` is taken while the client sits blocked: wall clock,
the client's CPU, the server's CPU, counters. A measured window is the span between two idle points, so
it covers whole invocations and nothing of the client's start-up. `finish()` answers the parked `/next`
with a 500, which makes every client exit.

Every invocation is verified: the answer must come to `/{request-id}/response` (or `/error` for the
error scenario) for the request id just handed out, before the next `/next`, with a body the same length
as the first one; sampled bodies are checked in full with the scenario's check. Anything else fails the
run loudly.
"""

from __future__ import annotations

import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import procstat

NEXT_PATH = b"/2018-06-01/runtime/invocation/next"
INVOCATION_PREFIX = b"/2018-06-01/runtime/invocation/"
ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n'
SCENARIO_OVER = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 57\r\n\r\n"
    b'{"errorMessage":"benchmark over","errorType":"Bench.End"}\n'
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
NEXT_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Lambda-Runtime-Aws-Request-Id: %s\r\n"
    b"Lambda-Runtime-Deadline-Ms: %d\r\n"
    b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n"
    b"Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n"
    b"Date: Mon, 01 Jan 2026 00:00:00 GMT\r\n"
    b"Content-Length: %d\r\n\r\n"
)
BACKEND_BODY = b'{"item":{"id":42,"name":"widget","price":9.5}}'
BACKEND_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BACKEND_BODY),
    BACKEND_BODY,
)

Check = Callable[[bytes], "str | None"]  # returns a failure description, or None when the body is right


class BenchmarkFailure(AssertionError):
    """The client sent a wrong, missing or unexpected request: the measurement is void."""


@dataclass(frozen=True)
class Snapshot:
    """Counters taken while the client is parked on `/next`."""

    at: float  # time.perf_counter()
    client_cpu_ns: int
    server_cpu_ns: int
    invocations: int
    connections: int
    backend_connections: int
    client_peak_rss_kb: int
    client_anon_rss_kb: int


@dataclass
class Window:
    """What happened between two idle snapshots."""

    invocations: int
    started_at: float  # time.perf_counter() when the batch was handed out
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    latencies_s: list[float]
    connections: int
    backend_connections: int
    client_peak_rss_kb: int
    client_anon_rss_kb: int

    @property
    def throughput(self) -> float:
        """Invocations per second of wall time."""
        return self.invocations / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def client_cpu_us(self) -> float:
        """Client CPU per invocation, in microseconds."""
        return self.client_cpu_s * 1e6 / self.invocations

    @property
    def server_cpu_us(self) -> float:
        """Server CPU per invocation, in microseconds."""
        return self.server_cpu_s * 1e6 / self.invocations

    def latency_us(self, quantile: float) -> float:
        """A quantile of the latency per invocation (`/next` answer sent → result received), in microseconds."""
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, max(0, round(quantile * (len(ordered) - 1))))
        return ordered[index] * 1e6


@dataclass
class _Conn:
    sock: socket.socket
    backend: bool
    buf: bytes = b""
    close_after_reply: bool = False  # the request said `Connection: close`


@dataclass
class Expectation:
    """What every invocation of a scenario must produce."""

    event: bytes
    check: Check
    error: bool = False  # the answer goes to /error instead of /response
    sample_every: int = 1  # keep every n-th body (and the first) for the full check


class BenchServer:
    """The benchmark Runtime API (and, with `backend=True`, a keep-alive HTTP service for async handlers)."""

    def __init__(self, expectation: Expectation, *, backend: bool = False):
        self.expectation = expectation
        self._listener = self._listen()
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self._backend_listener = self._listen() if backend else None
        self.backend_url = ("http://127.0.0.1:%d/item" % self._backend_listener.getsockname()[1]) if backend else None
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._conns: dict[int, _Conn] = {}
        self._client_pid: int | None = None
        self._deadline_ms = int(time.time() * 1000) + 3_600_000
        # server-thread state
        self._budget = 0
        self._parked: _Conn | None = None
        self._seq = 0
        self._expected_path: bytes | None = None
        self._next_sent_at = 0.0
        self._invocations = 0
        self._connections = 0
        self._backend_connections = 0
        self._stopping = False
        self.latencies_s: list[float] = []
        self._first_length: int | None = None  # every answer must be as long as the first
        self.samples: list[bytes] = []
        self.failure: str | None = None
        # shared
        self._idle = threading.Event()
        self._snapshot: Snapshot | None = None
        self._resumed = (0.0, 0)  # wall clock and server CPU when the last batch was handed out
        self._thread = threading.Thread(target=self._serve, name="bench-runtime-api", daemon=True)

    @staticmethod
    def _listen() -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        return sock

    # -- driven from the harness thread ------------------------------------------------------------
    def __enter__(self) -> BenchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def watch(self, pid: int) -> None:
        """Measure this client process's CPU and memory at every idle point."""
        self._client_pid = pid

    def wait_idle(self, timeout: float, alive: Callable[[], bool] = lambda: True) -> Snapshot:
        """Wait until the client is parked on `/next`; raise if it fails, dies or times out first."""
        deadline = time.monotonic() + timeout
        while not self._idle.wait(0.05):
            if self.failure:
                break
            if not alive():
                # the process may have parked just before exiting; give the server thread a moment
                if self._idle.wait(0.2):
                    break
                raise BenchmarkFailure("the client exited before asking for the next invocation")
            if time.monotonic() > deadline:
                raise BenchmarkFailure(f"no idle /next within {timeout}s ({self._invocations} invocations done)")
        if self.failure:
            raise BenchmarkFailure(self.failure)
        assert self._snapshot is not None
        return self._snapshot

    def run(self, invocations: int, timeout: float = 120.0, alive: Callable[[], bool] = lambda: True) -> Window:
        """Hand out `invocations` more invocations to the parked client and measure them."""
        start = self.wait_idle(timeout, alive)  # the client is blocked: its CPU does not move until the grant
        self._idle.clear()
        self._command(("grant", invocations))
        end = self.wait_idle(timeout, alive)
        resumed_at, resumed_server_cpu_ns = self._resumed
        if end.invocations - start.invocations != invocations:
            raise BenchmarkFailure(f"expected {invocations} invocations, saw {end.invocations - start.invocations}")
        self.check_samples()
        return Window(
            invocations=invocations,
            started_at=resumed_at,
            wall_s=end.at - resumed_at,
            client_cpu_s=(end.client_cpu_ns - start.client_cpu_ns) / 1e9,
            server_cpu_s=(end.server_cpu_ns - resumed_server_cpu_ns) / 1e9,
            latencies_s=self.latencies_s[start.invocations : end.invocations],
            connections=end.connections - start.connections,
            backend_connections=end.backend_connections - start.backend_connections,
            client_peak_rss_kb=end.client_peak_rss_kb,
            client_anon_rss_kb=end.client_anon_rss_kb,
        )

    def check_samples(self) -> None:
        """Run the scenario's full check over the bodies kept so far; raise on the first bad one."""
        samples, self.samples = self.samples, []
        for body in samples:
            problem = self.expectation.check(body)
            if problem:
                raise BenchmarkFailure(f"wrong response body: {problem}; body starts {body[:200]!r}")

    def finish(self) -> None:
        """Answer the parked `/next` (and any later one) with a 500, so that the client exits."""
        self._command(("finish", 0))

    def close(self) -> None:
        """Stop serving and close every socket."""
        if self._thread.is_alive():
            self._command(("stop", 0))
            self._thread.join(timeout=5)
        for conn in list(self._conns.values()):
            conn.sock.close()
        self._conns.clear()
        self._listener.close()
        if self._backend_listener is not None:
            self._backend_listener.close()
        self._epoll.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @property
    def invocations(self) -> int:
        return self._invocations

    def _command(self, command: tuple[str, int]) -> None:
        self._commands.put(command)
        os.write(self._wake_w, b"!")

    # -- the server thread ---------------------------------------------------------------------------
    def _serve(self) -> None:
        epoll = self._epoll
        listener_fd = self._listener.fileno()
        backend_fd = self._backend_listener.fileno() if self._backend_listener is not None else -1
        epoll.register(listener_fd, select.EPOLLIN)
        if backend_fd >= 0:
            epoll.register(backend_fd, select.EPOLLIN)
        epoll.register(self._wake_r, select.EPOLLIN)
        try:
            while not self._stopping:
                for fd, _events in epoll.poll():
                    if fd == self._wake_r:
                        self._on_commands()
                    elif fd == listener_fd or fd == backend_fd:
                        self._accept(fd == backend_fd)
                    else:
                        conn = self._conns.get(fd)
                        if conn is not None:
                            self._on_readable(conn)
        except Exception as exc:  # a server bug must not pass for a slow client
            self._fail(f"benchmark server crashed: {exc!r}")

    def _on_commands(self) -> None:
        os.read(self._wake_r, 4096)
        while True:
            try:
                command, value = self._commands.get_nowait()
            except queue.Empty:
                return
            if command == "grant":
                self._resumed = (time.perf_counter(), time.thread_time_ns())
                self._budget += value
                parked, self._parked = self._parked, None
                if parked is not None:
                    self._answer_next(parked)
            elif command == "finish":
                self._budget = -1
                parked, self._parked = self._parked, None
                if parked is not None:
                    self._send(parked, SCENARIO_OVER)
            else:
                self._stopping = True

    def _accept(self, backend: bool) -> None:
        listener = self._backend_listener if backend else self._listener
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conns[sock.fileno()] = _Conn(sock, backend)
        self._epoll.register(sock.fileno(), select.EPOLLIN)
        if backend:
            self._backend_connections += 1
        else:
            self._connections += 1

    def _drop(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if self._conns.pop(fd, None) is not None:
            self._epoll.unregister(fd)
        conn.sock.close()
        if conn is self._parked:
            self._parked = None

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(262144)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = conn.buf + data if conn.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            start = end + 4
            space = head.find(b" ")
            method = head[:space]
            path = head[space + 1 : head.find(b" ", space + 1)]
            lower = head.lower()
            length = 0
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            elif b"\r\ntransfer-encoding:" in lower:
                self._fail(f"chunked request bodies are not supported by the benchmark server: {head[:200]!r}")
                return
            if length:
                if b"\r\nexpect: 100-continue" in lower:
                    conn.sock.sendall(CONTINUE)
                body, buf = self._read_body(conn, buf[start:], length)
                if body is None:
                    self._drop(conn)
                    return
            else:
                body, buf = b"", buf[start:]
            conn.close_after_reply = b"\r\nconnection: close" in lower
            self._dispatch(conn, method, path, body)
            if self.failure or conn.close_after_reply:
                return
        conn.buf = buf

    @staticmethod
    def _read_body(conn: _Conn, have: bytes, length: int) -> tuple[bytes | None, bytes]:
        """The `length`-byte body, reading the rest from the (blocking) socket, and what follows it."""
        if len(have) >= length:
            return have[:length], have[length:]
        body = bytearray(length)
        body[: len(have)] = have
        view = memoryview(body)
        got = len(have)
        while got < length:
            n = conn.sock.recv_into(view[got:], length - got)
            if not n:
                return None, b""
            got += n
        return bytes(body), b""

    def _dispatch(self, conn: _Conn, method: bytes, path: bytes, body: bytes) -> None:
        if self.failure:
            self._send(conn, SCENARIO_OVER)
        elif conn.backend:
            self._send(conn, BACKEND_RESPONSE)
        elif path == NEXT_PATH:
            self._on_next(conn)
        elif path == self._expected_path and method == b"POST":
            self._on_result(conn, body)
        elif path.startswith(INVOCATION_PREFIX) and self._expected_path is not None:
            self._fail(
                f"expected {method.decode()} {self._expected_path.decode()}, got {path.decode()} (body {body[:300]!r})"
            )
        elif path.endswith(b"/init/error"):
            self._fail(f"the client reported an init error: {body[:500]!r}")
        else:
            self._fail(f"unexpected request {method.decode()} {path.decode()} (body {body[:300]!r})")

    def _on_next(self, conn: _Conn) -> None:
        if self._expected_path is not None:
            self._fail(f"/next arrived before the answer to {self._expected_path.decode()}")
            return
        if self._budget < 0:
            self._send(conn, SCENARIO_OVER)
        elif self._budget == 0:
            self._parked = conn
            self._park_snapshot()
        else:
            self._answer_next(conn)

    def _answer_next(self, conn: _Conn) -> None:
        self._budget -= 1
        self._seq += 1
        request_id = b"8476a536-e9f4-11e8-9739-%012d" % self._seq
        event = self.expectation.event
        self._expected_path = INVOCATION_PREFIX + request_id + (b"/error" if self.expectation.error else b"/response")
        head = NEXT_HEAD % (request_id, self._deadline_ms, len(event))
        self._next_sent_at = time.perf_counter()
        if len(event) < 65536:
            self._send(conn, head + event)
        else:  # no copy of a large event
            conn.sock.sendall(head)
            self._send(conn, event)

    def _on_result(self, conn: _Conn, body: bytes) -> None:
        self.latencies_s.append(time.perf_counter() - self._next_sent_at)
        self._expected_path = None
        expectation = self.expectation
        if self._first_length is None:
            self._first_length = len(body)
            self.samples.append(body)
        elif len(body) != self._first_length:
            self._fail(
                f"response length changed: {len(body)} bytes, the first was {self._first_length}: {body[:300]!r}"
            )
            return
        elif self._invocations % expectation.sample_every == 0:
            self.samples.append(body)
        self._invocations += 1
        self._send(conn, ACCEPTED)

    def _send(self, conn: _Conn, data: bytes) -> None:
        """Send a whole reply; close the connection after it if the client asked for that."""
        try:
            conn.sock.sendall(data)
        except OSError:
            self._drop(conn)
            return
        if conn.close_after_reply:
            self._drop(conn)

    def _park_snapshot(self) -> None:
        pid = self._client_pid
        self._snapshot = Snapshot(
            at=time.perf_counter(),
            client_cpu_ns=procstat.cpu_ns(pid) if pid else 0,
            server_cpu_ns=time.thread_time_ns(),
            invocations=self._invocations,
            connections=self._connections,
            backend_connections=self._backend_connections,
            client_peak_rss_kb=procstat.peak_rss_kb(pid) if pid else -1,
            client_anon_rss_kb=procstat.anon_rss_kb(pid) if pid else -1,
        )
        self._idle.set()

    def _fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = message
        for conn in list(self._conns.values()):
            if not conn.backend:
                self._drop(conn)
        self._idle.set()
