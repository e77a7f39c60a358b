"""The recording Runtime API of `runtime_api.py` plus the Extensions API, on 127.0.0.1, for lifecycle wire tests.

`POST /2020-01-01/extension/register` answers 200 with a `Lambda-Extension-Identifier` (or `register_status`);
`GET /2020-01-01/extension/event/next` is held, as Lambda holds it for an extension subscribed to no events,
until the server closes. Any request to `/test/...` is recorded and answered 200: fixtures use it to mark
moments (handler started, after-response work ran) in the same ordered record as the runtime's requests.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

from runtime_api import RuntimeAPIServer, base_env

EXTENSION = "/2020-01-01/extension"
REGISTER = EXTENSION + "/register"
EVENT_NEXT = EXTENSION + "/event/next"
NEXT = "/2018-06-01/runtime/invocation/next"
IDENTIFIER = "5c6d7e8f-0000-4000-8000-0123456789ab"


class LambdaAPIServer(RuntimeAPIServer):
    """Runtime API + Extensions API. `register_status` other than 200 refuses registration with that status."""

    def __init__(self, register_status: int = 200, **kwargs):
        super().__init__(respond=self._extensions, **kwargs)
        self.register_status = register_status
        self._release = threading.Event()

    def _extensions(self, request):
        if request.path == REGISTER:
            if self.register_status != 200:
                body = json.dumps({"errorMessage": "refused", "errorType": "Extension.Test"}).encode()
                return self.register_status, {"Content-Type": "application/json"}, body
            body = json.dumps({"functionName": "fn", "functionVersion": "$LATEST", "handler": "h"}).encode()
            return 200, {"Lambda-Extension-Identifier": IDENTIFIER, "Content-Type": "application/json"}, body
        if request.path == EVENT_NEXT:
            self._release.wait()
            return "drop"
        if request.path.startswith("/test/"):
            return 200, {}, b""
        return None

    def close(self) -> None:
        self._release.set()
        super().close()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


class Runtime:
    """fastric as a subprocess against a server, stopped (killed if need be) when the `with` block ends."""

    def __init__(self, handler: str, server: LambdaAPIServer, cwd: str, env: dict[str, str] | None = None):
        full_env = base_env(server.address)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastric", handler],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = b""
        self.stderr = b""

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.stdout, self.stderr = self.proc.communicate()

    def terminate(self, timeout: float = 10.0) -> int:
        """Send SIGTERM; wait for the exit; the exit code (output in `stdout`, `stderr`)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, self.stderr = self.proc.communicate()
            raise AssertionError(f"fastric did not exit in {timeout}s\nstdout={self.stdout!r}\nstderr={self.stderr!r}")
        return self.proc.returncode


def settle(seconds: float = 0.2) -> None:
    """Give a process that is now blocked (on /next, in a sleep) time to be inside that call."""
    time.sleep(seconds)
