"""The emulator as a library for programs: `python -m fastric.emulator.harness`, what `fastric.testing` runs.

Protocol, all on 127.0.0.1:
- stdin, first line: the function as a JSON object (`command`, `task_root`, `handler`, `env`, `timeout`,
  `init_timeout`, `memory`, `concurrency`, `extensions`, `function_name`, `import_profile`). Nothing else
  configures it: not the caller's environment (`env` is the bootstrap's whole environment before Lambda's
  variables are added), not `/opt/extensions`.
- stdout, one line when ready (both servers listening, the bootstrap spawned):
  `{"ready": true, "invoke_port": N, "control_port": M}`, or `{"ready": false, "error": "..."}`.
- the invoke port: the emulator's endpoints and a Function URL on every other path, as `fastric emulate
  --function-url` serves them;
- the control port: `POST /invoke` and `POST /stream` (body: the event; `X-Amz-Client-Context` as for
  Invoke) answer with `recording.py`'s frames; `POST /restart` replaces the bootstrap (the next invocation
  is a cold start) and answers 204 once the fresh one is spawned.
- stdin at end of file (the caller closed it or died), SIGTERM or SIGINT: the emulator shuts down, the
  bootstrap and extensions are stopped, and the process exits 0.
The emulator's console output (platform lines, the function's output) goes to stderr, as `fastric emulate`'s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

import orjson

from . import documents
from .config import DEFAULT_INIT_TIMEOUT, FunctionConfig
from .documents import MAX_PAYLOAD
from .httpserver import Exchange, serve
from .invocation import Invocation
from .invoke_api import Refused, compact_client_context
from .recording import RecordingLog, RecordSink
from .server import Emulator

HOST = "127.0.0.1"


def function_config(spec: dict[str, Any]) -> FunctionConfig:
    """The FunctionConfig for a harness spec (see the module docstring); ValueError if it cannot run."""
    task_root = os.path.abspath(spec.get("task_root") or ".")
    if not os.path.isdir(task_root):
        raise ValueError(f"task_root {task_root} is not a directory")
    extensions = spec.get("extensions")
    if extensions is not None and not os.path.isdir(extensions):
        raise ValueError(f"extensions {extensions} is not a directory")
    env = {str(name): str(value) for name, value in (spec.get("env") or {}).items()}
    return FunctionConfig(
        command=list(spec["command"]),
        task_root=task_root,
        handler=spec.get("handler"),
        function_name=spec.get("function_name") or "function",
        timeout=float(spec.get("timeout") or 3.0),
        init_timeout=float(spec.get("init_timeout") or DEFAULT_INIT_TIMEOUT),
        memory_mb=int(spec.get("memory") or 128),
        concurrency=spec.get("concurrency"),
        region=env.get("AWS_REGION") or "us-east-1",
        extensions_dir=extensions and os.path.abspath(extensions),
        base_env=env,
        import_profile=bool(spec.get("import_profile")),
    )


class Control:
    """The control port's application."""

    def __init__(self, emulator: Emulator, log: RecordingLog):
        self.emulator = emulator
        self.log = log

    def __call__(self, exchange: Exchange) -> Coroutine[Any, Any, None] | None:
        """An invoke whose body is all in (the usual request) is taken at once; any other request by the coroutine
        returned."""
        if exchange.method == "POST" and exchange.path in ("/invoke", "/stream"):
            body = exchange.body_if_complete()
            if body is not None:
                self._invoke(exchange, body)
                return None
        return self._handle(exchange)

    async def _handle(self, exchange: Exchange) -> None:
        body = await exchange.read_body()
        if exchange.method != "POST":
            return exchange.respond(405, [("Allow", "POST")])
        if exchange.path == "/restart":
            self.log.note("restart: the next invocation runs on a fresh bootstrap")
            await self.emulator.sandbox.reload()
            return exchange.respond(204)
        if exchange.path not in ("/invoke", "/stream"):
            return exchange.respond(404)
        if exchange.over_limit:
            return exchange.respond(413, [("Content-Type", "application/json")], documents.PAYLOAD_TOO_LARGE)
        self._invoke(exchange, body)

    def _invoke(self, exchange: Exchange, body: bytes) -> None:
        try:
            event = _event(body)
            client_context = compact_client_context(exchange.header("x-amz-client-context"))
        except Refused as refusal:
            headers, document = documents.service_error(refusal.error_type, refusal.message)
            return exchange.respond(400, headers, document)
        sink = RecordSink(exchange, self.log, live=exchange.path == "/stream")
        invocation = Invocation(event, sink, client_context=client_context, loop=exchange.loop)
        invocation.tail = sink.tail
        exchange.on_close(invocation.abandon)
        self.emulator.submit(invocation)


def _event(body: bytes) -> bytes:
    if not body.strip():
        return b"{}"
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Refused("InvalidRequestContentException", f"Could not parse request body into json: {error}")
    return body


async def _stdin_closed() -> None:
    """Until stdin reaches end of file."""
    loop = asyncio.get_running_loop()
    closed = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data and not closed.done():
            closed.set_result(None)

    os.set_blocking(0, False)
    loop.add_reader(0, readable)
    try:
        await closed
    finally:
        loop.remove_reader(0)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def run(spec: dict[str, Any]) -> int:
    """Serve the function described by `spec` until stdin closes or a stop signal comes."""
    try:
        config = function_config(spec)
    except (KeyError, TypeError, ValueError) as error:
        _say({"ready": False, "error": str(error)})
        return 2
    log = RecordingLog(prefix="fastric testing")
    emulator = Emulator(config, log, function_url=True)
    try:
        await emulator.start(HOST, 0)
        control = await serve(Control(emulator, log), HOST, 0, MAX_PAYLOAD)
    except OSError as error:
        await emulator.close()
        _say({"ready": False, "error": f"cannot listen on {HOST}: {error}"})
        return 1
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    assert emulator.invoke_address is not None
    control_port = control.sockets[0].getsockname()[1]
    _say({"ready": True, "invoke_port": emulator.invoke_address[1], "control_port": control_port})
    stdin_closed = asyncio.ensure_future(_stdin_closed())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopped, stdin_closed], return_when=asyncio.FIRST_COMPLETED)
    stdin_closed.cancel()
    stopped.cancel()
    control.close()
    await emulator.close()
    return 0


def main() -> int:
    import uvloop

    line = sys.stdin.buffer.readline()
    try:
        spec = json.loads(line)
    except ValueError as error:
        _say({"ready": False, "error": f"the first line of stdin is not a JSON object: {error}"})
        return 2
    return uvloop.run(run(spec))


if __name__ == "__main__":
    sys.exit(main())
