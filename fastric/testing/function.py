"""`LocalFunction`: one function under the local emulator, in a process of its own, driven over 127.0.0.1.

The emulator runs as `python -m fastric.emulator.harness` (its protocol is described there): its own
process per function, so every function has its own free ports (pytest-xdist), the test process's
environment never configures it, and closing it stops everything it started. Closing stdin is its stop
signal, so it also stops if the test process dies.
"""

from __future__ import annotations

import atexit
import base64
import importlib.util
import json
import os
import select
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from http.client import HTTPConnection, HTTPException
from typing import Any

from .results import Headers, HTTPResult, InvokeResult, InvokeStream, split_frames

RUNTIMES = {"fastric": "fastric", "awslambdaric": "awslambdaric"}
START_TIMEOUT = 60.0  # seconds for the emulator to be listening with the bootstrap spawned
STOP_TIMEOUT = 10.0  # seconds for it to stop the bootstrap and extensions and exit
HTTP_MARGIN = 30.0  # seconds an HTTP call waits beyond the function's timeout and init limit
INIT_TIMEOUT = 10.0

_open: weakref.WeakSet[LocalFunction] = weakref.WeakSet()


class LocalFunctionError(RuntimeError):
    """The emulator could not start (or stopped) for this function."""


class RuntimeNotInstalled(LocalFunctionError):
    """`runtime="awslambdaric"` without awslambdaric installed in this interpreter."""


class LocalFunction:
    """A Lambda function run locally through the real runtime: `with LocalFunction("app.handler") as fn:`.

    `handler` runs `python -m fastric HANDLER` (`runtime="awslambdaric"`: `python -m awslambdaric HANDLER`)
    with this interpreter; `command=[...]` runs any bootstrap instead. The function's environment is Lambda's
    variables, `PATH`, and `env`: nothing else of the caller's. `import_profile=True` runs the bootstrap with
    the interpreter's import timing; each cold invocation's `InvokeResult.import_profile` then says where
    the init's import time went.
    """

    def __init__(
        self,
        handler: str | None = None,
        *,
        task_root: str | os.PathLike[str] = ".",
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 3.0,
        memory: int = 128,
        extensions: str | os.PathLike[str] | None = None,
        concurrency: int | None = None,
        runtime: str = "fastric",
        function_name: str = "function",
        import_profile: bool = False,
    ):
        task_root = os.path.abspath(task_root)
        if not os.path.isdir(task_root):
            raise LocalFunctionError(f"task_root {task_root} is not a directory")
        self.handler = handler
        self.task_root = task_root
        self.command = list(command) if command else bootstrap_command(handler, runtime, task_root)
        self.env = dict(env or {})
        self.timeout = timeout
        self.memory = memory
        self.extensions = os.path.abspath(extensions) if extensions is not None else None
        self.concurrency = concurrency
        self.runtime = runtime
        self.function_name = function_name
        self.import_profile = import_profile
        self.process: subprocess.Popen[bytes] | None = None
        self.invoke_port = 0
        self.control_port = 0
        self._idle: list[HTTPConnection] = []
        self._lock = threading.Lock()

    # -- life ------------------------------------------------------------------------------
    def start(self) -> LocalFunction:
        """Start the emulator and the bootstrap (returns at once if already started)."""
        if self.process is not None:
            return self
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastric.emulator.harness"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_harness_environment(),
        )
        _open.add(self)
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(self._spec()).encode() + b"\n")
            self.process.stdin.flush()
            ready = _read_line(self.process.stdout, START_TIMEOUT)
            message: dict[str, Any] = (
                json.loads(ready) if ready else {"error": "the emulator exited before it was ready"}
            )
        except (OSError, ValueError) as error:
            message = {"error": f"the emulator did not start: {error}"}
        if not message.get("ready"):
            self.close()
            raise LocalFunctionError(f"cannot start {self!r}: {message.get('error', 'no reason given')}")
        self.invoke_port, self.control_port = message["invoke_port"], message["control_port"]
        return self

    def _spec(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "handler": self.handler,
            "task_root": self.task_root,
            "env": {"PATH": os.environ.get("PATH", os.defpath), **self.env},
            "timeout": self.timeout,
            "init_timeout": INIT_TIMEOUT,
            "memory": self.memory,
            "concurrency": self.concurrency,
            "extensions": self.extensions,
            "function_name": self.function_name,
            "import_profile": self.import_profile,
        }

    def close(self) -> None:
        """Stop the emulator, the bootstrap and its extensions; wait until they are gone."""
        process, self.process = self.process, None
        _open.discard(self)
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()  # the emulator's signal to stop
        except OSError:
            pass
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def restart(self) -> None:
        """Replace the bootstrap with a fresh one: the next invocation is a cold start."""
        status, _, _ = self._request("POST", "/restart", b"", {})
        if status != 204:
            raise LocalFunctionError(f"restart refused: HTTP {status}")

    def __enter__(self) -> LocalFunction:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LocalFunction {self.handler or ' '.join(self.command)} in {self.task_root}>"

    @property
    def pid(self) -> int | None:
        """The emulator process's id (the bootstrap is its child)."""
        return self.process.pid if self.process is not None else None

    @property
    def endpoint_url(self) -> str:
        """The emulator's invoke endpoint, for boto3 (`endpoint_url=`) or curl; Function URL paths too."""
        self.start()
        return f"http://127.0.0.1:{self.invoke_port}"

    # -- calls -----------------------------------------------------------------------------
    def invoke(
        self, event: Any = None, *, payload: bytes | str | None = None, client_context: dict[str, Any] | None = None
    ) -> InvokeResult:
        """Invoke the function (RequestResponse) with `event` (JSON-encoded) or `payload` (sent as is)."""
        body, headers = _request_body(event, payload, client_context)
        status, _, data = self._request("POST", "/invoke", body, headers)
        if status != 200:  # refused before it reached the function (not JSON, too large)
            return InvokeResult(status_code=status, payload=_decode(data), raw=data)
        return InvokeResult.from_frames(split_frames(data))

    def stream(self, event: Any = None) -> InvokeStream:
        """Invoke the function and iterate over its response's chunks as it streams them."""
        body, headers = _request_body(event, None, None)
        connection = self._connection()
        try:
            connection.request("POST", "/stream", body=body, headers=headers)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        if response.status != 200:
            data = response.read()
            self._release(connection, True)
            raise LocalFunctionError(f"stream refused: HTTP {response.status} {data[:200]!r}")

        def release(finished: bool) -> None:
            if finished:
                response.read()
            else:
                response.close()
            self._release(connection, finished)

        return InvokeStream(response.read, release)

    def http(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
    ) -> HTTPResult:
        """A Function URL request (payload format 2.0, as `fastric emulate --function-url` serves it)."""
        self.start()
        data = body.encode() if isinstance(body, str) else body
        connection = HTTPConnection("127.0.0.1", self.invoke_port, timeout=self._http_timeout)
        try:
            connection.request(method, path, body=data, headers=headers or {})
            response = connection.getresponse()
            return HTTPResult(response.status, Headers(response.getheaders()), response.read())
        finally:
            connection.close()

    # -- connections -----------------------------------------------------------------------
    @property
    def _http_timeout(self) -> float:
        return self.timeout + INIT_TIMEOUT + HTTP_MARGIN

    def _connection(self) -> HTTPConnection:
        self.start()
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return HTTPConnection("127.0.0.1", self.control_port, timeout=self._http_timeout)

    def _release(self, connection: HTTPConnection, reusable: bool) -> None:
        if reusable and self.process is not None:
            with self._lock:
                self._idle.append(connection)
        else:
            connection.close()

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        connection = self._connection()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (ConnectionError, HTTPException) as error:
            connection.close()
            if self.process is None or self.process.poll() is not None:
                raise LocalFunctionError(f"the emulator of {self!r} is not running") from error
            raise
        except BaseException:
            connection.close()
            raise
        self._release(connection, not response.will_close)
        return response.status, response.getheader("Content-Type", ""), data


def bootstrap_command(handler: str | None, runtime: str, task_root: str) -> list[str]:
    """The bootstrap for `handler` under `runtime`; with no handler, `bootstrap` in the task root."""
    if handler is None:
        bootstrap = os.path.join(task_root, "bootstrap")
        if not os.path.isfile(bootstrap):
            raise LocalFunctionError(f"no handler, no command, and no executable bootstrap in {task_root}")
        return [bootstrap]
    if runtime not in RUNTIMES:
        raise LocalFunctionError(f"runtime must be one of {', '.join(RUNTIMES)} (or give command=[...]): {runtime!r}")
    if importlib.util.find_spec(RUNTIMES[runtime]) is None:
        raise RuntimeNotInstalled(
            f"runtime={runtime!r} needs {runtime} installed in this interpreter ({sys.executable}): "
            f"pip install {runtime}"
        )
    return [sys.executable, "-m", RUNTIMES[runtime], handler]


def _request_body(
    event: Any, payload: bytes | str | None, client_context: dict[str, Any] | None
) -> tuple[bytes, dict[str, str]]:
    if payload is not None:
        body = payload.encode() if isinstance(payload, str) else bytes(payload)
    else:
        body = json.dumps({} if event is None else event, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if client_context is not None:
        headers["X-Amz-Client-Context"] = base64.b64encode(json.dumps(client_context).encode()).decode()
    return body, headers


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def _read_line(stream: Any, timeout: float) -> bytes:
    """One line from a pipe, waiting at most `timeout` seconds (b"" on timeout or end of file)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def _harness_environment() -> dict[str, str]:
    """The emulator process's environment: the caller's, with this `fastric` first on PYTHONPATH."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.basename(root) not in ("site-packages", "dist-packages"):  # a source tree: this one, not another
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


@atexit.register
def _close_all() -> None:
    """Functions a program forgot to close are stopped when it exits."""
    for function in list(_open):
        function.close()
