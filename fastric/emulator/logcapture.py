"""Capture a child process's output: forward it to the emulator's stderr as it comes, and hand on its lines.

A process gets one pipe for both stdout and stderr (Lambda keeps one log stream for both). Whatever it
writes is copied to fd 2 at once, byte for byte; each complete line is also given, with the time it was
read, to a callback (the Telemetry API's `function` / `extension` streams, the invocation's log tail).
`drain()` reads what is already in the pipe synchronously, so the lines a process wrote before a Runtime API
call are seen before the emulator acts on that call.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable

READ_SIZE = 65536
MAX_LINE = 256 * 1024  # a longer line is handed on in pieces of this size
STDERR = 2

LineCallback = Callable[[str, float], None]
LineFilter = Callable[[str], bool]


class LineCapture:
    """Reads one pipe on the event loop; see the module docstring."""

    def __init__(
        self, fd: int, on_line: LineCallback, forward_to: int | None = STDERR, divert: LineFilter | None = None
    ):
        """`divert`: a line it returns True for is taken out (neither forwarded nor handed on); with it, the
        output is forwarded by whole lines (`--import-profile` takes the interpreter's import timing so)."""
        self.fd = fd
        self.on_line = on_line
        self.forward_to = forward_to
        self.divert = divert
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._partial = bytearray()
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self.drain)

    @classmethod
    async def spawn(
        cls, command: list[str], cwd: str, env: dict[str, str], on_line: LineCallback, divert: LineFilter | None = None
    ) -> tuple[asyncio.subprocess.Process, LineCapture]:
        """Start `command` in a session of its own, its stdout and stderr captured; OSError if it cannot start."""
        read_fd, write_fd = os.pipe()
        capture = cls(read_fd, on_line, divert=divert)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
            )
        except OSError:
            capture.close()
            raise
        finally:
            os.close(write_fd)
        return process, capture

    def drain(self) -> None:
        """Read and hand on everything the pipe holds now; at end of file, finish and close."""
        while not self.closed.done():
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._finish()
                return
            if self.divert is None:
                self._forward(data)
            self._split(data, time.time())

    async def wait_closed(self, timeout: float) -> None:
        """Wait for end of file (every writer gone), at most `timeout` seconds; then stop reading regardless."""
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except asyncio.TimeoutError:
            self.close()

    def close(self) -> None:
        """Hand on what the pipe holds and stop reading."""
        self.drain()
        self._finish()

    def _forward(self, data: bytes) -> None:
        if self.forward_to is None:
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.forward_to, view)
            except BlockingIOError:  # a non-blocking stderr that is full: wait until it takes more
                select.select([], [self.forward_to], [])
                continue
            except OSError:
                return
            view = view[written:]

    def _split(self, data: bytes, at: float) -> None:
        self._partial += data
        start = 0
        while True:
            end = self._partial.find(b"\n", start)
            if end < 0:
                break
            self._emit(self._partial[start:end], at)
            start = end + 1
        del self._partial[:start]
        while len(self._partial) >= MAX_LINE:
            self._emit(self._partial[:MAX_LINE], at)
            del self._partial[:MAX_LINE]

    def _emit(self, raw: bytes | bytearray, at: float) -> None:
        line_end = raw.endswith(b"\r")
        text = (raw[:-1] if line_end else raw).decode("utf-8", "replace")
        if self.divert is not None:
            if self.divert(text):
                return
            self._forward(bytes(raw) + b"\n")
        try:
            self.on_line(text, at)
        except Exception as error:  # a consumer's bug must not stop the copy to stderr
            asyncio.get_running_loop().call_exception_handler(
                {"message": "error in a log line consumer", "exception": error}
            )

    def _finish(self) -> None:
        if self.closed.done():
            return
        if self._partial:
            self._emit(self._partial, time.time())
            self._partial.clear()
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.fd)
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.closed.set_result(None)
