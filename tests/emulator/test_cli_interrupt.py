"""Ctrl-C on `fastric invoke` in a pseudo-terminal (its controlling terminal, so ^C is the terminal's SIGINT):
exit 130 with one line, no traceback, no fake runtime error, whether it comes while reading the event from
stdin, during init or during the invoke."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time

from emulator_process import EXAMPLES, PROBE, clean_env

SLOW_INIT = "import time\ntime.sleep(30)\n\ndef handler(event, context):\n    return 1\n"


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`fastric invoke ARGS` on a pseudo-terminal that is its controlling terminal."""

    def __init__(self, *args: str, cwd=EXAMPLES, env: dict[str, str] | None = None):
        self.controller, terminal = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastric", "invoke", *args],
            cwd=cwd,
            env=env or clean_env(),
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            preexec_fn=_controlling_terminal,
        )
        os.close(terminal)
        self.output = b""

    def read_until(self, marker: bytes, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while marker not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.controller], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self.controller, 65536)
                except OSError:
                    break
                if not data:
                    break
                self.output += data
        return marker in self.output

    def interrupt(self) -> tuple[int, bytes]:
        """Type ^C; the exit status and everything printed after it."""
        before = len(self.output)
        os.write(self.controller, b"\x03")
        try:
            status = self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.read_until(b"\x00", timeout=0.5)  # whatever is left
        os.close(self.controller)
        printed = self.output[before:].replace(b"\r\n", b"\n").replace(b"^C", b"")
        return status, printed


def _check(status: int, printed: bytes) -> None:
    assert status == 130, printed
    lines = [line for line in printed.decode(errors="replace").splitlines() if line.strip()]
    assert lines == ["fastric invoke: interrupted"], lines


def test_ctrl_c_during_the_invoke():
    terminal = Terminal("--event", '{"action": "sleep", "seconds": 30}', "--", *PROBE)
    assert terminal.read_until(b"START RequestId"), terminal.output
    time.sleep(0.3)
    _check(*terminal.interrupt())


def test_ctrl_c_during_init(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_INIT)
    terminal = Terminal("--task-root", str(tmp_path), "slow.handler")
    assert terminal.read_until(b"START RequestId"), terminal.output  # waiting for the init (30 s) to end
    time.sleep(0.3)
    _check(*terminal.interrupt())


def _reading_stdin(pid: int, timeout: float = 20) -> None:
    """Wait until `pid` is blocked in read(0, ...) (per /proc/PID/syscall; a plain wait where it is unreadable)."""
    read_syscall = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine)
    if read_syscall is None:
        time.sleep(2.0)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/syscall") as syscall:
                fields = syscall.read().split()
        except OSError:
            time.sleep(2.0)
            return
        if fields[:2] == [read_syscall, "0x0"]:
            return
        time.sleep(0.05)


def test_ctrl_c_while_reading_the_event_from_stdin():
    terminal = Terminal("-", "--", *PROBE)
    _reading_stdin(terminal.process.pid)
    _check(*terminal.interrupt())


def test_ctrl_c_with_an_extension_is_one_line_too(tmp_path):
    """The extension's SHUTDOWN output does not follow the interrupted line."""
    from extensions_kit import add_extension, environment

    add_extension(tmp_path / "ext", "chatty")
    terminal = Terminal(
        "--extensions",
        str(tmp_path / "ext"),
        "--event",
        '{"action": "sleep", "seconds": 30}',
        "--",
        *PROBE,
        env=environment(tmp_path / "record.jsonl"),
    )
    assert terminal.read_until(b"chatty: INVOKE"), terminal.output  # the extension got the invocation
    time.sleep(0.3)
    _check(*terminal.interrupt())
