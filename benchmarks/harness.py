"""Run a runtime client as a subprocess against the benchmark server and measure it."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procstat
from benchmarks.scenarios import Scenario
from benchmarks.server import BenchmarkFailure, BenchServer, Expectation, Window

BENCH_DIR = Path(__file__).resolve().parent
TASK_DIR = BENCH_DIR / "task"
REPO_ROOT = BENCH_DIR.parent
COLD_START_HANDLER = "bench_handlers.noop"


_watched_pid: int | None = None


def client_cpu_seconds() -> float:
    """A pytest-benchmark timer: the CPU seconds used so far by the client process being benchmarked.

    Read only while that client is parked on `/next`, so a round's "time" is exactly the client CPU its
    invocations cost (see `watch_client_cpu`).
    """
    if _watched_pid is None:
        raise RuntimeError("no client process is being watched")
    return procstat.cpu_ns(_watched_pid) / 1e9


def watch_client_cpu(pid: int | None) -> None:
    """Point `client_cpu_seconds` at `pid` (None to stop)."""
    global _watched_pid
    _watched_pid = pid


def client_command(client: str, handler: str, python: str = sys.executable, python_args: tuple = ()) -> list[str]:
    """The command line that runs `handler` under `client` ("fastric", "awslambdaric" or "plain")."""
    if client == "plain":
        return [python, *python_args, str(TASK_DIR / "plain_client.py"), handler]
    return [python, *python_args, "-m", client, handler]


def client_environment(address: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A Lambda-like environment: the Runtime API address, function metadata, the task root on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "_LAMBDA", "_HANDLER", "LAMBDA_", "_X_AMZN", "PYTHON"))
    }
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": address,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
            "LAMBDA_TASK_ROOT": str(TASK_DIR),
            "PYTHONPATH": os.pathsep.join((str(TASK_DIR), str(REPO_ROOT))),
        }
    )
    env.update(extra or {})
    return env


class ClientProcess:
    """A runtime client subprocess, its output captured in a temporary file; always reaped on exit."""

    def __init__(
        self,
        client: str,
        handler: str,
        server: BenchServer,
        *,
        env: dict[str, str] | None = None,
        python_args: tuple = (),
        stderr_to_file: bool = False,
    ):
        self.client = client
        self._log = tempfile.TemporaryFile()
        self._stderr = tempfile.TemporaryFile() if stderr_to_file else None
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            client_command(client, handler, python_args=python_args),
            cwd=TASK_DIR,
            env=client_environment(server.address, env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._stderr if self._stderr is not None else subprocess.STDOUT,
        )
        server.watch(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The tail of what the client printed."""
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - limit))
        return self._log.read().decode("utf-8", "replace")

    def stderr(self) -> str:
        """Everything the client wrote to stderr (with `stderr_to_file=True`)."""
        assert self._stderr is not None
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def stop(self, server: BenchServer, timeout: float = 10.0) -> int:
        """End the client the way the Runtime API ends a scenario (a 500 on `/next`); kill it if it lingers."""
        server.finish()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BenchmarkFailure(f"{self.client} did not exit after a 500 on /next:\n{self.output()}") from None

    def __enter__(self) -> ClientProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()
        if self._stderr is not None:
            self._stderr.close()


@dataclass
class WarmClient:
    """A client process parked on `/next` after its warm-up, and the server it talks to."""

    server: BenchServer
    process: ClientProcess
    timeout: float

    def run(self, invocations: int) -> Window:
        """Measure `invocations` more invocations."""
        return self.server.run(invocations, self.timeout, self.process.alive)


@contextlib.contextmanager
def warm_client(
    client: str, scenario: Scenario, *, warmup: int | None = None, timeout: float = 120.0
) -> Iterator[WarmClient]:
    """Start `client` on `scenario` and warm it up; stop it (with a 500 on `/next`) afterwards.

    Any `BenchmarkFailure` inside is re-raised with the client's output attached.
    """
    warmup = scenario.warmup if warmup is None else warmup
    with BenchServer(scenario.expectation(), backend=scenario.backend) as server:
        env = {"BENCH_BACKEND_URL": server.backend_url} if server.backend_url else None
        with ClientProcess(client, scenario.handler_for(client), server, env=env) as process:
            try:
                server.wait_idle(timeout, process.alive)
                warm = WarmClient(server, process, timeout)
                if warmup:
                    warm.run(warmup)
                yield warm
                process.stop(server)
            except BenchmarkFailure as exc:
                raise BenchmarkFailure(
                    f"{client} on {scenario.name}: {exc}\n--- client output ---\n{process.output()}"
                ) from None


def measure(
    client: str,
    scenario: Scenario,
    *,
    invocations: int | None = None,
    warmup: int | None = None,
    timeout: float = 120.0,
) -> Window:
    """Start `client` on `scenario`, warm it up, and measure `invocations` invocations after start-up."""
    with warm_client(client, scenario, warmup=warmup, timeout=timeout) as warm:
        return warm.run(invocations or scenario.invocations)


@dataclass(frozen=True)
class ColdStart:
    """A fresh client process, timed from spawn."""

    to_first_next_s: float  # spawn → the first `GET /next` arrives (the init phase)
    to_first_response_s: float  # spawn → the first invocation's result arrives (what a cold caller waits)
    client_cpu_s: float  # client CPU up to the first `/next`
    peak_rss_kb: int  # peak RSS up to the first `/next`
    anon_rss_kb: int  # anonymous RSS at the first `/next`


class ColdStartProbe:
    """A server ready for one cold start: `start()` spawns the client and times it, `close()` cleans up.

    Split in two so that a benchmark can time `start()` alone (pytest-benchmark's setup/teardown).
    """

    def __init__(self, client: str, handler: str = COLD_START_HANDLER, timeout: float = 30.0):
        self.client = client
        self.handler = handler
        self.timeout = timeout
        self.server = BenchServer(Expectation(b"{}", _is_null_body)).__enter__()
        self.process: ClientProcess | None = None

    def start(self) -> ColdStart:
        """Spawn the client, wait for its first `/next`, then serve it one invocation."""
        self.process = process = ClientProcess(self.client, self.handler, self.server)
        try:
            parked = self.server.wait_idle(self.timeout, process.alive)
            first = self.server.run(1, self.timeout, process.alive)
        except BenchmarkFailure as exc:
            raise BenchmarkFailure(f"{self.client} cold start: {exc}\n{process.output()}") from None
        return ColdStart(
            parked.at - process.started_at,
            first.started_at + first.latencies_s[0] - process.started_at,
            parked.client_cpu_ns / 1e9,
            parked.client_peak_rss_kb,
            parked.client_anon_rss_kb,
        )

    def close(self) -> None:
        try:
            if self.process is not None:
                with self.process:
                    if self.process.alive():
                        self.process.stop(self.server)
        finally:
            self.server.close()


def _is_null_body(body: bytes) -> str | None:
    return None if body.strip() == b"null" else "expected null from the no-op handler"


def cold_start(client: str, handler: str = COLD_START_HANDLER, timeout: float = 30.0) -> ColdStart:
    """Spawn `client` once and time its start."""
    probe = ColdStartProbe(client, handler, timeout)
    try:
        return probe.start()
    finally:
        probe.close()


@dataclass(frozen=True)
class ImportCost:
    """`python -X importtime` of a client's start-up, up to its first `/next`."""

    total_ms: float  # all top-level imports (interpreter start-up included)
    own_ms: float  # the client package's own top-level import (fastric / awslambdaric), dependencies included
    heaviest: list[tuple[str, float]]  # top-level imports by cumulative milliseconds


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def parse_importtime(stderr: str) -> list[tuple[str, int, int]]:
    """(module, cumulative µs, depth) for every line of `-X importtime` output."""
    rows = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            rows.append((match.group(4), int(match.group(2)), (len(match.group(3)) - 1) // 2))
    return rows


def import_cost(client: str, handler: str = COLD_START_HANDLER, top: int = 8, timeout: float = 30.0) -> ImportCost:
    """Run `client` with `-X importtime` up to its first `/next` and attribute its import time."""
    expectation = Expectation(b"{}", lambda body: None)
    with (
        BenchServer(expectation) as server,
        ClientProcess(client, handler, server, python_args=("-X", "importtime"), stderr_to_file=True) as process,
    ):
        server.wait_idle(timeout, process.alive)
        rows = parse_importtime(process.stderr())  # read while parked: only what the first /next needed
        process.stop(server)
    top_level = [(name, us) for name, us, depth in rows if depth == 0]
    package = {"fastric": "fastric", "awslambdaric": "awslambdaric"}.get(client)
    own = sum(us for name, us in top_level if package and (name == package or name.startswith(package + ".")))
    heaviest = sorted(top_level, key=lambda item: -item[1])[:top]
    return ImportCost(sum(us for _, us in top_level) / 1000, own / 1000, [(n, us / 1000) for n, us in heaviest])


def probe(client: str, timeout: float = 30.0) -> str | None:
    """None if `client` can serve a tiny invocation here, else why not, with what the client printed
    (e.g. `No module named fastric` when run outside the environment it is installed in)."""
    from benchmarks.scenarios import scenario

    try:
        measure(client, scenario("tiny"), invocations=2, warmup=0, timeout=timeout)
    except (BenchmarkFailure, OSError) as exc:
        return str(exc) or repr(exc)
    return None
