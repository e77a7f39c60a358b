"""The real `fastric emulate` process on 127.0.0.1, driven over HTTP as `curl` would drive it."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLES = REPO / "examples"
PROBE = [sys.executable, str(HERE / "probe_bootstrap.py")]
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Lambda variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "_LAMBDA", "_HANDLER", "LAMBDA_", "_X_AMZN", "PROBE_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


class EmulatorProcess:
    """`python -m fastric emulate --port 0 ARGS...`, with its stderr collected line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastric", "emulate", "--port", "0", *args],
            cwd=cwd,
            env=env or clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        match = self.wait_for(LISTENING.search, timeout=20)
        if match is None:
            self.stop()
            raise AssertionError(f"the emulator did not start:\n{self.stderr}")
        self.port = int(match.group(1))

    def _read(self) -> None:
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, predicate, timeout: float = 10.0):
        """The first truthy `predicate(line)` result over stderr lines, waiting for it; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    result = predicate(line)
                    if result:
                        return result
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._cond.wait(min(left, 0.5))

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def invoke(
        self,
        event=None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        conn: http.client.HTTPConnection | None = None,
        timeout: float = 30.0,
    ) -> Response:
        """POST to the invoke endpoint, as `curl -XPOST URL -d EVENT` does."""
        if body is None:
            body = json.dumps(event if event is not None else {}).encode()
        own = conn is None
        conn = conn or self.connection(timeout)
        try:
            conn.request(
                "POST",
                INVOKE_PATH,
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
            )
            response = conn.getresponse()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            if own:
                conn.close()

    def report_for(self, request_id: str, timeout: float = 10.0) -> str | None:
        return self.wait_for(
            lambda line: line if line.startswith(f"REPORT RequestId: {request_id}\t") else None, timeout
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def function_error(result, error_type: str, status: int = 200) -> dict:
    """The error document of a `LocalFunction` invoke result that failed with `error_type`."""
    assert result.status_code == status, result
    assert result.function_error == "Unhandled", result
    assert result.content_type == "application/json"
    assert result.error is not None and result.error["errorType"] == error_type, result
    assert result.payload == result.error
    return result.error


def report_fields(result) -> dict[str, str]:
    """The fields of an invoke result's REPORT line (its last log line), by name."""
    report = result.logs.splitlines()[-1]
    assert report.startswith(f"REPORT RequestId: {result.request_id}\t"), result.logs
    return dict(field.split(": ", 1) for field in report.split("\t")[1:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
