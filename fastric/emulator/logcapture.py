"""Capture a child process's output by whole lines: forward them to the emulator's stderr, and hand them on.

A process gets one pipe for both stdout and stderr (Lambda keeps one log stream for both). Its output is
taken a whole line at a time, so the lines of different processes (the runtime, each extension) never merge
on the console, in `X-Amz-Log-Result` or in telemetry: each complete line is copied to fd 2 (byte for byte,
newline included) and given, with the time it was read, to a callback (the Telemetry and Logs APIs'
`function` / `extension` streams, the invocation's log tail). A partial line is held until its newline, or
until FLUSH_AFTER seconds pass without one (then it is a line of its own), or the pipe closes. `drain()`
reads what is already in the pipe synchronously, so the lines a process wrote before a Runtime API call are
seen before the emulator acts on that call.
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
FLUSH_AFTER = 0.1  # seconds a partial line is held for its newline

LineCallback = Callable[[str, float], None]
LineFilter = Callable[[str], bool]


class LineCapture:
    """Reads one pipe on the event loop; see the module docstring."""

    def __init__(
        self, fd: int, on_line: LineCallback, forward_to: int | None = STDERR, divert: LineFilter | None = None
    ):
        """`divert`: a line it returns True for is taken out, neither forwarded nor handed on
        (`--import-profile` takes the interpreter's import timing so)."""
        self.fd = fd
        self.on_line = on_line
        self.forward_to = forward_to
        self.divert = divert
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._partial = bytearray()
        self._flush_timer: asyncio.TimerHandle | None = None
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

    def drain(self, flush_partial: bool = False) -> None:
        """Read and hand on every line the pipe holds now (with `flush_partial`, a partial line too); at end of
        file, finish and close."""
        while not self.closed.done():
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._finish()
                return
            self._split(data, time.time())
        if flush_partial:
            self._flush_partial()

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
            if self.divert is None:
                self._emit(self._partial[start:end], at)
            elif not self._diverted(self._partial[start:end]):
                self._forward(bytes(self._partial[start : end + 1]))
                self._emit(self._partial[start:end], at)
            start = end + 1
        if start:
            if self.divert is None:
                self._forward(bytes(self._partial[:start]))
            del self._partial[:start]
        while len(self._partial) >= MAX_LINE:
            self._forward(bytes(self._partial[:MAX_LINE]) + b"\n")
            self._emit(self._partial[:MAX_LINE], at)
            del self._partial[:MAX_LINE]
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._partial:
            self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self._flush_partial)

    def _flush_partial(self) -> None:
        """The held partial line, as a line of its own."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._partial and not self._diverted(self._partial):
            self._forward(bytes(self._partial) + b"\n")
            self._emit(self._partial, time.time())
        self._partial.clear()

    def _diverted(self, raw: bytes | bytearray) -> bool:
        return self.divert is not None and self.divert(raw.decode("utf-8", "replace").rstrip("\r"))

    def _emit(self, raw: bytes | bytearray, at: float) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            self.on_line(raw.decode("utf-8", "replace"), at)
        except Exception as error:  # a consumer's bug must not stop the copy to stderr
            asyncio.get_running_loop().call_exception_handler(
                {"message": "error in a log line consumer", "exception": error}
            )

    def _finish(self) -> None:
        if self.closed.done():
            return
        self._flush_partial()
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.fd)
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.closed.set_result(None)
