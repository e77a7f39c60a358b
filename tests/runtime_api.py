"""A scripted, recording fake of the Lambda Runtime API on 127.0.0.1, for wire and differential tests.

It speaks raw HTTP/1.1 over sockets so that the exact request bytes a client sends are recorded, along
with the TCP connection each request arrived on. Invocations are queued with `add_invocation`; once the
queue is empty, `/next` answers 500, which makes fastric and awslambdaric both exit, ending a scenario.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ACCEPTED = (202, {"Content-Type": "application/json"}, b'{"status":"OK"}')


@dataclass
class Request:
    """One request as received: raw bytes plus the parsed pieces."""

    conn: int
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    buffered_after: int = 0  # bytes of later requests already received with this one (pipelining)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_names(self) -> list[str]:
        return [key.lower() for key, _ in self.headers]

    def json(self):
        return json.loads(self.body)


@dataclass
class Invocation:
    """A queued `/next` answer."""

    body: bytes
    headers: dict[str, str]
    status: int = 200


Responder = Callable[[Request], "tuple[int, dict, bytes] | None"]


class RuntimeAPIServer:
    """A threaded raw-socket Runtime API. Use as a context manager; `address` is `host:port`."""

    def __init__(self, respond: Responder | None = None, deadline_offset_ms: int = 300_000):
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.requests: list[Request] = []
        self.queue: list[Invocation] = []
        self.respond = respond
        self.deadline_offset_ms = deadline_offset_ms
        self.end_status = 500
        self.hold_next_when_empty = False
        self.send_date = True  # False: answer like a hand-rolled server, with no Date header
        self._lock = threading.Condition()
        self._conn_count = 0
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)

    # -- scripting -------------------------------------------------------------------------
    def add_invocation(
        self,
        event=None,
        *,
        body: bytes | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = "application/json",
        deadline_ms: int | None = None,
        status: int = 200,
    ) -> str:
        """Queue an invocation and return its request id. `headers` override/extend the defaults;
        a header given as None is omitted."""
        request_id = request_id or f"rid-{len(self.queue) + len(self.requests) + 1}-{time.monotonic_ns()}"
        if body is None:
            body = json.dumps(event if event is not None else {}).encode()
        hdrs: dict[str, str | None] = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(
                deadline_ms if deadline_ms is not None else int(time.time() * 1000) + self.deadline_offset_ms
            ),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            "Content-Type": content_type,
        }
        hdrs.update(headers or {})
        with self._lock:
            self.queue.append(Invocation(body, {k: v for k, v in hdrs.items() if v is not None}, status))
            self._lock.notify_all()
        return request_id

    def requests_to(self, suffix: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    def wait_for(self, predicate: Callable[[list[Request]], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> RuntimeAPIServer:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self._sock.close()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._accept_thread.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    # -- serving ---------------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conn_count += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, self._conn_count), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, conn_id: int) -> None:
        reader = _Reader(conn)
        try:
            while True:
                request = reader.read_request(conn_id)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                    self._lock.notify_all()
                answer = self._answer(request)
                if answer is None:  # drop the connection without answering
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                status, headers, body = answer
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
                lower = {k.lower() for k in headers}
                for key, value in headers.items():
                    if value is not None:  # None: leave the header out (Content-Length: None = body until EOF)
                        head.append(f"{key}: {value}")
                if "content-length" not in lower:
                    head.append(f"Content-Length: {len(body)}")
                if "date" not in lower and self.send_date:
                    head.append("Date: Mon, 01 Jan 2026 00:00:00 GMT")
                conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
                if (headers.get("Connection") or "").lower() == "close":
                    conn.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _answer(self, request: Request):
        if self.respond is not None:
            answer = self.respond(request)
            if answer is not None:
                return answer if answer != "drop" else None
        if request.path.endswith("/invocation/next"):
            with self._lock:
                while not self.queue and self.hold_next_when_empty and not self._closed:
                    self._lock.wait(0.5)
                inv = self.queue.pop(0) if self.queue else None
            if inv is None:
                return (
                    self.end_status,
                    {"Content-Type": "application/json"},
                    b'{"errorMessage":"scenario over","errorType":"Test.End"}',
                )
            return inv.status, inv.headers, inv.body
        if request.path.endswith("/restore/next"):
            return 200, {}, b""
        return ACCEPTED


class _Reader:
    """Reads HTTP/1.1 requests (Content-Length or chunked with trailers) from a socket."""

    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.buf = b""

    def _fill(self) -> bool:
        data = self.conn.recv(1 << 20)
        if not data:
            return False
        self.buf += data
        return True

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_request(self, conn_id: int) -> Request | None:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers.append((key, value.strip()))
        request = Request(conn_id, method, path, headers, b"", raw_head + b"\r\n\r\n")
        if (request.header("transfer-encoding") or "").lower() == "chunked":
            body = []
            while True:
                size_line = self._line()
                if size_line is None:
                    return None
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    break
                chunk = self._exact(size + 2)
                if chunk is None:
                    return None
                body.append(chunk[:-2])
            while True:
                line = self._line()
                if line is None:
                    return None
                if not line:
                    break
                key, _, value = line.decode("latin-1").partition(":")
                request.trailers.append((key, value.strip()))
            request.chunks = body
            request.body = b"".join(body)
        else:
            length = int(request.header("content-length") or 0)
            body = self._exact(length)
            if body is None:
                return None
            request.body = body
        request.buffered_after = len(self.buf)
        return request


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


@dataclass
class Run:
    """The outcome of running a runtime client process to completion."""

    returncode: int
    stdout: bytes
    stderr: bytes


def client_command(client: str, handler: str) -> list[str]:
    """The command line for `client` ("fastric" or "awslambdaric") running `handler`."""
    return [sys.executable, "-m", client, handler]


def run_client(
    client: str,
    handler: str,
    server: RuntimeAPIServer,
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    pass_fds=(),
) -> Run:
    """Run a runtime client against `server` until it exits (the server ends scenarios with a 500)."""
    full_env = base_env(server.address)
    full_env.update(env or {})
    full_env = {k: v for k, v in full_env.items() if v is not None}
    proc = subprocess.Popen(
        client_command(client, handler),
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{client} did not exit in {timeout}s\nstdout={out!r}\nstderr={err!r}")
    return Run(proc.returncode, out, err)


def base_env(address: str) -> dict[str, str]:
    """A Lambda-like environment for a client process (no inherited AWS_* or _HANDLER noise)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_LAMBDA", "_HANDLER", "LAMBDA_", "_X_AMZN"))
    }
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": address,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]abc",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env
