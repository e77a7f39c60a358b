"""A Runtime API on 127.0.0.1 that reads streamed POSTs chunk by chunk and timestamps every chunk on arrival.

`runtime_api.RuntimeAPIServer` records whole requests; this one sees a chunked body while it is still coming,
so tests can check when each chunk arrived (`Chunk.at_ns`, `time.monotonic_ns()`, comparable with a handler's
own clock on Linux), act on each one (`on_chunk`; it may also answer the POST before the stream ends, closing the
connection), stop reading (`reading.clear()`) to apply backpressure, and count a long stream without keeping it
(`keep_data=False`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

NEXT = "/2018-06-01/runtime/invocation/next"
_DATE = "Date: Mon, 01 Jan 2026 00:00:00 GMT\r\n"


@dataclass
class Chunk:
    at_ns: int  # time.monotonic_ns() when the chunk's last byte was read
    size: int
    data: bytes | None  # None when the recorder does not keep data


@dataclass
class Post:
    """A POST as read so far: its head at once, its chunks as they arrive, `done` once the body is complete."""

    path: str
    headers: dict[str, str]  # lower-case names
    chunks: list[Chunk] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # a Content-Length body, or the chunks' data joined (when kept)
    size: int = 0  # bytes of body received
    done: bool = False


class StreamRecorder:
    """Serves queued invocations on `/next` (then 500, or holds `/next` while `hold_next` until `release()`),
    answers every POST 202 once its body is read, and records each POST in `posts`."""

    def __init__(
        self,
        *,
        keep_data: bool = True,
        receive_buffer: int | None = None,
        on_chunk: Callable[[Post, Chunk], bytes | None] | None = None,
    ):
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if receive_buffer is not None:  # inherited by accepted sockets: a small TCP window, for backpressure
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self.keep_data = keep_data
        self.on_chunk = on_chunk
        self.posts: list[Post] = []
        self.paths: list[str] = []  # every request's path, in arrival order
        self.reading = threading.Event()  # cleared: the recorder stops reading request bodies
        self.reading.set()
        self.hold_next = False
        self._queue: deque[tuple[str, bytes]] = deque()
        self._released = threading.Event()
        self._closed = False
        self._cond = threading.Condition()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def add_invocation(self, event: dict) -> str:
        request_id = f"rid-{len(self._queue) + len(self.posts) + 1}-{time.monotonic_ns()}"
        self._queue.append((request_id, json.dumps(event).encode()))
        return request_id

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def release(self) -> None:
        """Answer a held `/next` (500: the runtime exits)."""
        self._released.set()

    def __enter__(self) -> StreamRecorder:
        self._threads[0].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self.reading.set()
        self._released.set()
        for sock in [self._listener, *self._sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- serving ---------------------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(_Reader(sock, self.reading),), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, reader: _Reader) -> None:
        try:
            while True:
                method, path, headers = reader.head()
                with self._cond:
                    self.paths.append(path)
                    self._cond.notify_all()
                if method == "GET":
                    reader.sock.sendall(self._next_answer())
                    continue
                post = Post(path, headers)
                with self._cond:
                    self.posts.append(post)
                self._read_body(reader, post)
                reader.sock.sendall(
                    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n"
                    + _DATE.encode()
                    + b'\r\n{"status":"OK"}\n'
                )
        except (OSError, EOFError):
            return

    def _next_answer(self) -> bytes:
        if self._queue:
            request_id, body = self._queue.popleft()
            head = (
                f"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {request_id}\r\n"
                f"Lambda-Runtime-Deadline-Ms: {int(time.time() * 1000) + 300_000}\r\n"
                "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:fn\r\n"
                f"Content-Type: application/json\r\n{_DATE}Content-Length: {len(body)}\r\n\r\n"
            )
            return head.encode() + body
        if self.hold_next:
            self._released.wait()
        body = b'{"errorMessage":"scenario over","errorType":"Test.End"}'
        return b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n%s\r\n%s" % (
            len(body),
            _DATE.encode(),
            body,
        )

    def _read_body(self, reader: _Reader, post: Post) -> None:
        if post.headers.get("transfer-encoding", "").lower() != "chunked":
            post.body = reader.take(int(post.headers.get("content-length", "0")), True) or b""
            post.size = len(post.body)
        else:
            while size := int(reader.line().split(b";")[0], 16):
                data = reader.take(size, self.keep_data)
                if reader.line():
                    raise AssertionError("a chunk's data is not followed by CRLF")
                chunk = Chunk(time.monotonic_ns(), size, data)
                with self._cond:
                    post.chunks.append(chunk)
                    post.size += size
                    self._cond.notify_all()
                answer = self.on_chunk(post, chunk) if self.on_chunk is not None else None
                if answer is not None:  # answered early: the rest of the stream is never read
                    reader.sock.sendall(answer)
                    reader.sock.close()
                    raise EOFError
            while line := reader.line():
                name, _, value = line.decode("latin-1").partition(":")
                post.trailers[name.strip().lower()] = value.strip()
            if self.keep_data:
                post.body = b"".join(chunk.data or b"" for chunk in post.chunks)
        with self._cond:
            post.done = True
            self._cond.notify_all()


class _Reader:
    """Buffered reads from one connection: lines, heads and counted bytes (kept or skipped)."""

    def __init__(self, sock: socket.socket, reading: threading.Event):
        self.sock = sock
        self.reading = reading
        self.buf = bytearray()

    def _fill(self) -> None:
        self.reading.wait()
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def head(self) -> tuple[str, str, dict[str, str]]:
        method, path, _ = self.line().decode("latin-1").split(" ", 2)
        headers = {}
        while line := self.line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return method, path, headers

    def take(self, size: int, keep: bool) -> bytes | None:
        kept = bytearray()
        while size:
            if not self.buf:
                self._fill()
            piece = min(size, len(self.buf))
            if keep:
                kept += self.buf[:piece]
            del self.buf[:piece]
            size -= piece
        return bytes(kept) if keep else None
