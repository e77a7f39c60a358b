"""Lambda Managed Instances: N invocations in flight at once, as a markdown table.

    python benchmarks/managed_instances.py            # full run (~3-4 minutes on 2 cores)
    python benchmarks/managed_instances.py --quick    # a smoke run (~15 s)

Every configuration is a fresh `fastric emulate --concurrency N -- BOOTSTRAP` on 127.0.0.1, so the bootstrap sees
`AWS_LAMBDA_MAX_CONCURRENCY=N` and N `/next` at once, as on Managed Instances:

- fastric, `async def` handler (`task/mi_handlers.async_io`): `python -m fastric` holds the N invocations on one
  uvloop loop in one process (`FASTRIC_WORKERS=K`: split over K processes);
- awslambdaric 4.2.2, the equivalent `def` handler (`sync_io`): `python -m awslambdaric` forks N workers, one
  invocation each;
- fastric with that `def` handler: the same N forked workers, for reference.

Each invocation waits a delay drawn from `--delay-ms` (seeded: every configuration gets the same delays in the
same order), then makes one GET to a small HTTP service on 127.0.0.1 run by this script. N invokers, each on its
own keep-alive connection to the emulator, first warm every worker up (N invocations at once, the longest delay),
then run `--per-slot` x N invocations. Measured over that window: throughput, latency percentiles from the
invoker's view (send → whole response) and the same minus the invocation's delay (what the runtime, emulator and
service add), the bootstrap's process tree CPU per invocation, and its memory: the sum of `Pss:` over the tree
(the emulator's child and every descendant; the emulator itself is left out), sampled every `--sample-every`
seconds while all N invocations are in flight, the maximum reported. Every answer is checked (status, no
function error, the handler's result).

Configurations are interleaved (the order rotates every repeat); numbers are medians over repeats; "vs ric" is
the median of per-repeat ratios to awslambdaric at the same N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import procstat  # noqa: E402

TASK_DIR = Path(__file__).resolve().parent / "task"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")
BASELINE = "awslambdaric"
BACKEND_BODY = b'{"item":{"id":42,"name":"widget","price":9.5}}'
BACKEND_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BACKEND_BODY),
    BACKEND_BODY,
)
EXPECTED_RESULT = {"status": 200, "bytes": len(BACKEND_BODY)}
TARGETS = (("PSS, all N in flight", "pss_mb", "<=", 0.4), ("throughput", "throughput", ">=", 1.0))


class BenchmarkFailure(AssertionError):
    """An invocation failed, or a process did not behave: the run is void."""


@dataclass(frozen=True)
class Config:
    """One bootstrap configuration: which runtime runs which handler, with N in flight over K processes."""

    runtime: str  # "fastric" or "awslambdaric"
    handler: str  # "async_io" or "sync_io" (in task/mi_handlers.py)
    n: int
    workers: int | None = None  # FASTRIC_WORKERS; None: unset (the default)

    @property
    def label(self) -> str:
        kind = "async def" if self.handler == "async_io" else "def"
        workers = f", FASTRIC_WORKERS={self.workers}" if self.workers else ""
        return f"{self.runtime} ({kind}{workers})"

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", self.runtime, f"mi_handlers.{self.handler}"]


def plan(n: int, scale: list[int]) -> list[Config]:
    """The comparison at N (fastric async K=1 and K=2, awslambdaric, fastric sync), then fastric async at each
    larger N, and at the largest with FASTRIC_WORKERS=2 too."""
    configs = [
        Config("fastric", "async_io", n, workers=1),
        Config(BASELINE, "sync_io", n),
        Config("fastric", "async_io", n, workers=2),
        Config("fastric", "sync_io", n),
    ]
    more = [m for m in scale if m != n]
    configs += [Config("fastric", "async_io", m, workers=1) for m in more]
    if more:
        configs.append(Config("fastric", "async_io", max(more), workers=2))
    return configs


@dataclass(frozen=True)
class Workload:
    """The invocations of one run: the warm-up (one per slot) and the measured ones, as (delay in ms, event)."""

    warmup: list[tuple[int, bytes]]
    measured: list[tuple[int, bytes]]
    sample_every: float  # seconds between memory samples


def event(delay_ms: int, cpu_ms: float) -> tuple[int, bytes]:
    return delay_ms, b'{"delay_ms":%d,"cpu_ms":%s}' % (delay_ms, repr(float(cpu_ms)).encode())


def workload(n: int, args: argparse.Namespace) -> Workload:
    """N warm-up invocations of the longest delay, then per_slot x N delays drawn from the seed (the same for
    every configuration of the same N)."""
    low, high = args.delay_ms
    rng = random.Random(args.seed + n)
    measured = [event(rng.randint(low, high), args.cpu_ms) for _ in range(args.per_slot * n)]
    return Workload([event(high, args.cpu_ms)] * n, measured, args.sample_every)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 1)))  # ceil(q * n), at least 1
    return sorted_values[min(rank, len(sorted_values)) - 1]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Lambda variables (the emulator sets its own), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "_LAMBDA", "_HANDLER", "LAMBDA_", "_X_AMZN", "FASTRIC_"))
    }
    env.update(extra)
    return env


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; reaped either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the local HTTP service every invocation calls ---------------------------------------------------------------


class _BackendProtocol(asyncio.Protocol):
    """Answers every request (GET, no body) on a keep-alive connection with the same small JSON document."""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        requests = self.buffer.count(b"\r\n\r\n")
        if requests:
            self.buffer = self.buffer.rsplit(b"\r\n\r\n", 1)[1]
            self.transport.write(BACKEND_RESPONSE * requests)


def serve_backend() -> None:
    """Run the service on an ephemeral port of 127.0.0.1, printing the port, until stdin closes or SIGTERM."""
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_BackendProtocol, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the benchmark went away
        await stop.wait()
        server.close()

    uvloop.run(main())


class Backend:
    """The service as a subprocess of its own (so it shares no interpreter lock with the invokers)."""

    def __enter__(self) -> Backend:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            stop_process(self.proc)
            raise BenchmarkFailure(f"the backend service did not start: {line!r}")
        self.address = f"127.0.0.1:{int(line)}"
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


# -- the emulator and its bootstrap --------------------------------------------------------------------------------


class Emulator:
    """`fastric emulate --concurrency N -- BOOTSTRAP` with its output in a temporary file; always stopped."""

    def __init__(self, config: Config, backend: str, timeout: float = 60.0):
        self.log = tempfile.TemporaryFile()
        extra = {"BENCH_BACKEND": backend}
        if config.workers:
            extra["FASTRIC_WORKERS"] = str(config.workers)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastric", "emulate", "--port", "0", "--concurrency", str(config.n)]
            + ["--task-root", str(TASK_DIR), "--", *config.command],
            cwd=TASK_DIR,
            env=clean_env(**extra),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.tree: list[int] = []
        self.marker = config.command[-1].encode()  # on the command line of every process of the bootstrap's tree
        deadline = time.monotonic() + timeout
        while (match := LISTENING.search(self.output())) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchmarkFailure(f"the emulator did not start:\n{self.output()}")
            time.sleep(0.05)
        self.port = int(match.group(1))

    def output(self, tail: int = 0) -> str:
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        return text[-tail:] if tail else text

    def bootstrap_tree(self) -> list[int]:
        """The bootstrap process and all its descendants (the emulator itself left out), remembered for `stop`."""
        self.tree = procstat.descendants(self.proc.pid)
        return self.tree

    def stop(self) -> None:
        stop_process(self.proc)  # the emulator stops its bootstrap's process group
        for pid in self.tree:  # anything of ours that outlived it (checked: the id was not reused since)
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.marker in f.read():
                        os.kill(pid, signal.SIGKILL)
            except OSError:  # gone, or not ours to signal
                pass
        self.log.close()


# -- the invokers ------------------------------------------------------------------------------------------------


@dataclass
class Window:
    """What the invokers saw over the measured window."""

    latencies_ms: list[float] = field(default_factory=list)
    overheads_ms: list[float] = field(default_factory=list)  # latency minus the invocation's delay
    in_flight: int = 0
    started: float = 0.0
    ended: float = 0.0


async def _invoke(reader, writer, body: bytes) -> None:
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (INVOKE_PATH.encode(), len(body), body)
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    answer = await reader.readexactly(int(headers.get("content-length", "0")))
    status = int(lines[0].split()[1])
    if status != 200 or "x-amz-function-error" in headers or json.loads(answer) != EXPECTED_RESULT:
        raise BenchmarkFailure(f"invocation {body!r} answered {status} {headers}: {answer[:2000]!r}")


async def drive(port: int, n: int, work: Workload, window: Window, timeout: float) -> None:
    """Warm up with one invocation per connection at once, then run the measured invocations through N invokers."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(_invoke(r, w, body) for (r, w), (_, body) in zip(connections, work.warmup, strict=True))),
            timeout,
        )
        queue = iter(work.measured)

        async def invoker(reader, writer) -> None:
            for delay, body in queue:
                window.in_flight += 1
                sent = time.perf_counter()
                await _invoke(reader, writer, body)
                latency = (time.perf_counter() - sent) * 1000
                window.in_flight -= 1
                window.latencies_ms.append(latency)
                window.overheads_ms.append(latency - delay)

        window.started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(invoker(r, w) for r, w in connections)), timeout)
        window.ended = time.perf_counter()
    finally:
        for _, writer in connections:
            writer.close()


class PssSampler(threading.Thread):
    """Sums `Pss:` over `pids` every `every` seconds while all `n` invocations are in flight; keeps the samples."""

    def __init__(self, pids: list[int], n: int, window: Window, every: float):
        super().__init__(daemon=True)
        self.pids, self.n, self.window, self.every = pids, n, window, every
        self.samples_kb: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            if self.window.in_flight < self.n:
                continue
            values = [procstat.pss_kb(pid) for pid in self.pids]
            if self.window.in_flight >= self.n and all(v >= 0 for v in values):
                self.samples_kb.append(sum(values))


def tree_cpu_ns(pids: list[int]) -> int:
    return sum(max(procstat.cpu_ns(pid), 0) for pid in pids)


def tree_wait_ns(pids: list[int]) -> int:
    return sum(max(procstat.runqueue_wait_ns(pid), 0) for pid in pids)


async def observe(emulator: Emulator, config: Config, work: Workload) -> dict:
    """Drive the emulator; once the warm-up is over, find the bootstrap's tree, sample it, and count its CPU."""
    window = Window()
    task = asyncio.ensure_future(drive(emulator.port, config.n, work, window, timeout=300))
    while window.started == 0.0 and not task.done():
        await asyncio.sleep(0.005)
    if task.done():
        await task  # raises what went wrong
        raise BenchmarkFailure("the window ended before it was observed")
    pids = emulator.bootstrap_tree()
    tree_cpu, emulator_cpu = tree_cpu_ns(pids), procstat.cpu_ns(emulator.proc.pid)
    invoker_cpu = time.process_time()  # this process: the invokers and the memory sampler
    tree_wait = tree_wait_ns(pids)
    sampler = PssSampler(pids, config.n, window, work.sample_every)
    sampler.start()
    try:
        await task
    finally:
        sampler.done.set()
        sampler.join()
    tree_cpu = tree_cpu_ns(pids) - tree_cpu
    emulator_cpu = procstat.cpu_ns(emulator.proc.pid) - emulator_cpu
    invoker_cpu = time.process_time() - invoker_cpu
    tree_wait = tree_wait_ns(pids) - tree_wait
    if not sampler.samples_kb:
        raise BenchmarkFailure(f"no memory sample with all {config.n} invocations in flight")
    count = len(window.latencies_ms)
    latencies, added = sorted(window.latencies_ms), sorted(window.overheads_ms)
    return {
        "throughput": count / (window.ended - window.started),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "added_p50_ms": percentile(added, 0.50),
        "added_p99_ms": percentile(added, 0.99),
        "pss_mb": max(sampler.samples_kb) / 1024,
        "pss_samples": len(sampler.samples_kb),
        "processes": len(pids),
        "cpu_ms_per_inv": tree_cpu / count / 1e6,
        "emulator_cpu_ms_per_inv": emulator_cpu / count / 1e6,
        "invoker_cpu_ms_per_inv": invoker_cpu / count * 1000,
        "runqueue_wait_ms_per_inv": tree_wait / count / 1e6,  # the bootstrap runnable, waiting for a CPU
        "invocations": count,
    }


def measure(config: Config, backend: str, work: Workload) -> dict:
    """One configuration, once: a fresh emulator and bootstrap, warmed up, then the measured window."""
    import uvloop

    emulator = Emulator(config, backend)
    try:
        return uvloop.run(observe(emulator, config, work))
    except (BenchmarkFailure, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as failure:
        raise BenchmarkFailure(
            f"{config.label}, N={config.n}: {failure!r}\n--- emulator log (tail) ---\n{emulator.output(4000)}"
        ) from failure
    finally:
        emulator.stop()


# -- the run and its table ---------------------------------------------------------------------------------------


@dataclass
class Results:
    """One dict of metrics per configuration per repeat."""

    runs: dict[Config, list[dict]] = field(default_factory=dict)

    def add(self, config: Config, values: dict) -> None:
        self.runs.setdefault(config, []).append(values)

    def median(self, config: Config, metric: str) -> float:
        return statistics.median(run[metric] for run in self.runs[config])

    def ratio(self, config: Config, metric: str) -> float | None:
        """Median over repeats of config ÷ awslambdaric at the same N, each pair from the same repeat."""
        base = Config(BASELINE, "sync_io", config.n)
        if base not in self.runs:
            return None
        pairs = zip(self.runs[config], self.runs[base], strict=True)  # both lists hold one run per repeat, in order
        return statistics.median(mine[metric] / theirs[metric] for mine, theirs in pairs)


def run_all(configs: list[Config], args: argparse.Namespace, progress=print) -> Results:
    """Every configuration once per repeat, the order rotating each repeat, against one backend service."""
    results = Results()
    with Backend() as backend:
        for repeat in range(args.repeats):
            shift = repeat % len(configs)
            for config in configs[shift:] + configs[:shift]:
                values = measure(config, backend.address, workload(config.n, args))
                results.add(config, values)
                progress(
                    f"  repeat {repeat + 1}/{args.repeats}  {config.label:<40} N={config.n:<4} "
                    f"{values['throughput']:8.1f}/s  p99 {values['p99_ms']:6.0f} ms  PSS {values['pss_mb']:6.1f} MB"
                )
    return results


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}×"


def table(results: Results) -> str:
    """The results as a markdown table."""
    lines = [
        "| bootstrap | N | processes | throughput | vs ric | p50 | p99 | added p50 / p99 | PSS, N in flight | vs ric "
        "| PSS / N | CPU/inv: bootstrap (emulator) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for config in results.runs:
        m = partial(results.median, config)
        cpu = f"{m('cpu_ms_per_inv'):.2f} ({m('emulator_cpu_ms_per_inv'):.2f}) ms"
        lines.append(
            f"| {config.label} | {config.n} | {m('processes'):.0f} | {m('throughput'):,.1f}/s "
            f"| {_ratio(results.ratio(config, 'throughput'))} | {m('p50_ms'):.0f} ms | {m('p99_ms'):.0f} ms "
            f"| {m('added_p50_ms'):.1f} / {m('added_p99_ms'):.0f} ms | {m('pss_mb'):.1f} MB "
            f"| {_ratio(results.ratio(config, 'pss_mb'))} "
            f"| {m('pss_mb') / config.n:.2f} MB | {cpu} |"
        )
    return "\n".join(lines)


def targets(results: Results, n: int) -> str:
    """fastric's `async def` model at N against the targets (ratios to awslambdaric)."""
    config = Config("fastric", "async_io", n, workers=1)
    if config not in results.runs or Config(BASELINE, "sync_io", n) not in results.runs:
        return ""
    lines = ["| target (fastric async def, FASTRIC_WORKERS=1, vs awslambdaric) | wanted | measured | met |"]
    lines.append("|---|--:|--:|:-:|")
    for label, metric, comparison, threshold in TARGETS:
        ratio = results.ratio(config, metric)
        assert ratio is not None
        ratio = round(ratio, 2)  # as shown
        met = ratio <= threshold if comparison == "<=" else ratio >= threshold
        lines.append(f"| {label} at N={n} | {comparison} {threshold}× | {ratio:.2f}× | {'yes' if met else '**no**'} |")
    return "\n".join(lines)


def environment() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("uvloop", "httptools", "orjson", "awslambdaric", "aiohttp")
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=TASK_DIR, capture_output=True, text=True
    ).stdout.strip()
    return (
        f"Measured on: {cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}; {versions}; fastric {commit or '?'}."
    )


def _delay_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: N=2 and 4, 3 invocations per slot, 1 repeat")
    parser.add_argument("--n", type=int, default=16 * (os.cpu_count() or 1), help="N compared (default 16 per CPU)")
    parser.add_argument("--scale", default="64,256", help="more N for fastric's async def model alone (comma list)")
    parser.add_argument("--per-slot", type=int, default=20, help="measured invocations per slot (x N; default 20)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--delay-ms", type=_delay_range, default=(50, 400), help="each invocation's wait, LOW-HIGH")
    parser.add_argument("--cpu-ms", type=float, default=0.0, help="CPU each invocation burns (default 0)")
    parser.add_argument("--sample-every", type=float, default=0.25, help="seconds between memory samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="also write every run's numbers here")
    parser.add_argument("--serve-backend", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.scale, args.per_slot, args.repeats = 2, "4", 3, 1
        args.delay_ms, args.sample_every = (20, 80), 0.02
    args.scale = [int(m) for m in args.scale.split(",") if m.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_backend:
        serve_backend()
        return 0
    configs = plan(args.n, args.scale)
    load = os.getloadavg()
    started = time.monotonic()
    print(f"{len(configs)} configurations x {args.repeats} repeats (load average {load[0]:.2f})", file=sys.stderr)
    results = run_all(configs, args, progress=lambda line: print(line, file=sys.stderr))
    elapsed = time.monotonic() - started
    low, high = args.delay_ms
    burn = f" (after burning {args.cpu_ms:g} ms of CPU)" if args.cpu_ms else ""
    print(table(results))
    print()
    print(targets(results, args.n))
    print()
    print(environment())
    print(
        f"Command: `python benchmarks/managed_instances.py {shlex.join(argv if argv is not None else sys.argv[1:])}`"
        f" ({args.repeats} repeats, {elapsed:.0f} s, load average {load[0]:.2f} at the start). Each invocation waits "
        f"{low}-{high} ms{burn} then GETs a local service; {args.per_slot} x N invocations measured per run after one "
        "warm-up invocation per slot; medians over repeats; added = latency minus the invocation's own wait; "
        "PSS summed over the bootstrap's process tree, the maximum of the samples taken while all N were in flight."
    )
    if args.json:
        rows = [
            {"config": config.__dict__ | {"label": config.label}, "runs": runs} for config, runs in results.runs.items()
        ]
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
