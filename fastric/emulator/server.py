"""The emulator assembled: the Runtime API server, the sandbox, the scheduler and (optionally) the invoke endpoint."""

from __future__ import annotations

import asyncio

from .config import FunctionConfig
from .documents import MAX_PAYLOAD
from .extensions_api import local_apis
from .function_url import FunctionURL, FunctionURLRouter
from .httpserver import App, serve
from .invocation import Invocation
from .invoke_api import InvokeAPI
from .report import PlatformLog
from .sandbox import Sandbox
from .scheduler import Scheduler
from .watch import TaskRootWatcher, describe

RUNTIME_API_HOST = "127.0.0.1"


class Emulator:
    """A local Lambda execution environment for one function."""

    def __init__(
        self, config: FunctionConfig, log: PlatformLog | None = None, *, watch: bool = False, function_url: bool = False
    ):
        """`watch`: a fresh bootstrap after files under the task root change; `function_url`: serve every path
        other than the emulator's own endpoints as a Function URL."""
        self.config = config
        self.log = log or PlatformLog()
        self.sandbox = Sandbox(config, self.log)
        self.scheduler = Scheduler(config.slots, self.sandbox.run)
        self._local_server: asyncio.Server | None = None  # Runtime, Extensions, Telemetry and Logs APIs
        self._invoke_servers: list[asyncio.Server] = []
        self.invoke_address: tuple[str, int] | None = None
        self.function_url = function_url
        self.watcher = TaskRootWatcher(config.task_root, self._reload) if watch else None

    async def start(self, host: str | None = None, port: int = 0) -> None:
        """Serve the Runtime API (and the invoke endpoint on host:port unless host is None); spawn the bootstrap."""
        runtime_server = await serve(local_apis(self.sandbox), RUNTIME_API_HOST, 0, MAX_PAYLOAD)
        self._local_server = runtime_server
        self.sandbox.runtime_api = f"{RUNTIME_API_HOST}:{runtime_server.sockets[0].getsockname()[1]}"
        if host is not None:
            app: App = InvokeAPI(self.scheduler)
            if self.function_url:
                app = FunctionURLRouter(app, FunctionURL(self.scheduler, self.config, self.log))
            invoke_server = await serve(app, host, port, MAX_PAYLOAD)
            self._invoke_servers.append(invoke_server)
            self.invoke_address = invoke_server.sockets[0].getsockname()[:2]
        await self.sandbox.start()
        if self.watcher is not None:
            self.watcher.start()

    async def _reload(self, changed: list[str]) -> None:
        self.log.note(f"reloading: {describe(changed)} changed; the next invocation runs on a fresh bootstrap")
        await self.sandbox.reload()

    def submit(self, invocation: Invocation) -> None:
        self.scheduler.submit(invocation)

    async def close(self) -> None:
        """Shut down in Lambda's order.

        The invoke endpoints stop accepting; the sandbox stops the runtime (SIGTERM or SIGKILL) and sends the
        extensions SHUTDOWN; the Runtime, Extensions, Telemetry and Logs APIs stay up until every extension has
        exited or the shutdown deadline passed, so no event is lost to a server closed early.
        """
        if self.watcher is not None:
            self.watcher.stop()
        for server in self._invoke_servers:
            server.close()
        await self.sandbox.close()
        if self._local_server is not None:
            self._local_server.close()
        for task in list(self.scheduler.running):
            task.cancel()
