"""Compare fastric, awslambdaric and a plain stdlib client on every scenario, in one run, as a markdown table.

    python benchmarks/compare.py            # full run (~1½ minutes on 2 idle cores; longer on a busy machine)
    python benchmarks/compare.py --quick    # a smoke run (~20 s); its chart goes to the temp dir, not the tracked one
    python benchmarks/compare.py --chart out.png   # the chart somewhere else (default: benchmarks/compare.svg for a
                                                   # full run, $TMPDIR/fastric-compare-smoke.svg for a smoke run)

Clients are interleaved (the order rotates every repeat), each run is a fresh process warmed up before its
measured window, and every number is the median over the repeats. Ratios are against awslambdaric, taken
per repeat (so each pair was measured minutes apart at most) and then the median of those.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.scenarios import CLIENTS, Scenario, all_scenarios, missing_requirement  # noqa: E402

BASELINE = "awslambdaric"
TARGETS = (  # (label, scenario or "cold", metric, comparison, threshold): the targets of the performance round three
    ("tiny: client CPU per invocation", "tiny", "cpu_us", "<=", 0.22),
    ("1 MB event: throughput (integers beyond 64 bits exact)", "event_1mb", "throughput", ">=", 2.5),
    ("1 MB result: throughput", "result_1mb", "throughput", ">=", 16.0),
    ("cold start: spawn to first /next", "cold", "to_first_next_ms", "<=", 0.8),
    ("cold start: spawn to first response", "cold", "to_first_response_ms", "<=", 0.6),
    ("peak RSS (tiny, warm)", "tiny", "rss_mb", "<=", 1.0),
    ("peak RSS (1 MB event, warm)", "event_1mb", "rss_mb", "<=", 1.0),
    ("async: p50 latency (fastric awaits on its loop; awslambdaric runs asyncio.run)", "async", "p50_us", "<=", 0.2),
)
CHART = Path(__file__).resolve().parent / "compare.svg"
SMOKE_CHART = Path(tempfile.gettempdir()) / "fastric-compare-smoke.svg"


@dataclass
class Results:
    """Raw samples: results[scenario][client][metric] -> one value per repeat."""

    samples: dict = field(default_factory=dict)

    def add(self, scenario: str, client: str, values: dict[str, float]) -> None:
        per_client = self.samples.setdefault(scenario, {}).setdefault(client, {})
        for metric, value in values.items():
            per_client.setdefault(metric, []).append(value)

    def median(self, scenario: str, client: str, metric: str) -> float | None:
        values = self.samples.get(scenario, {}).get(client, {}).get(metric)
        return statistics.median(values) if values else None

    def ratio(self, scenario: str, client: str, metric: str) -> float | None:
        """Median over repeats of client/baseline, each pair from the same repeat."""
        mine = self.samples.get(scenario, {}).get(client, {}).get(metric)
        base = self.samples.get(scenario, {}).get(BASELINE, {}).get(metric)
        if not mine or not base:
            return None
        pairs = [a / b for a, b in zip(mine, base, strict=False) if b]
        return statistics.median(pairs) if pairs else None


def window_metrics(window) -> dict[str, float]:
    return {
        "cpu_us": window.client_cpu_us,
        "throughput": window.throughput,
        "p50_us": window.latency_us(0.5),
        "p99_us": window.latency_us(0.99),
        "server_cpu_us": window.server_cpu_us,
        "conns_per_inv": window.connections / window.invocations,
        "backend_conns_per_inv": window.backend_connections / window.invocations,
        "rss_mb": window.client_peak_rss_kb / 1024,
        "anon_mb": window.client_anon_rss_kb / 1024,
    }


def run(
    clients: list[str], scenarios: list[Scenario], repeats: int, scale: float, cold_starts: int, log=sys.stderr
) -> Results:
    results = Results()
    for repeat in range(repeats):
        order = clients[repeat % len(clients) :] + clients[: repeat % len(clients)]
        for scenario in scenarios:
            invocations = max(2, int(scenario.invocations * scale))
            for client in order:
                started = time.perf_counter()
                window = harness.measure(client, scenario, invocations=invocations)
                metrics = window_metrics(window)
                results.add(scenario.name, client, metrics)
                log.write(
                    f"[{repeat + 1}/{repeats}] {scenario.name:<11} {client:<13} {invocations:>5} inv "
                    f"cpu {metrics['cpu_us']:9.1f} us/inv  {metrics['throughput']:8.0f} inv/s  "
                    f"({time.perf_counter() - started:.1f}s)\n"
                )
        for _ in range(cold_starts):
            for client in order:
                start = harness.cold_start(client)
                results.add(
                    "cold",
                    client,
                    {
                        "to_first_next_ms": start.to_first_next_s * 1000,
                        "to_first_response_ms": start.to_first_response_s * 1000,
                        "cpu_ms": start.client_cpu_s * 1000,
                        "rss_mb": start.peak_rss_kb / 1024,
                        "anon_mb": start.anon_rss_kb / 1024,
                    },
                )
        for client in order:
            cost = harness.import_cost(client)
            results.add("imports", client, {"total_ms": cost.total_ms, "own_ms": cost.own_ms})
        log.write(f"[{repeat + 1}/{repeats}] cold starts and imports done\n")
    return results


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits == 0 and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{max(digits, 1 if abs(value) < 100 else 0)}f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown(results: Results, clients: list[str], scenarios: list[Scenario]) -> str:
    lines = [
        "### Per invocation (warm process)",
        "",
        "| scenario | client | client CPU/inv | vs ric | throughput | vs ric | p50 | vs ric | p99 "
        "| conns/inv | peak RSS (anon) | server CPU/inv |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for scenario in scenarios:
        for client in clients:
            m = lambda metric, s=scenario.name, c=client: results.median(s, c, metric)
            r = lambda metric, s=scenario.name, c=client: results.ratio(s, c, metric)
            if m("cpu_us") is None:
                continue
            conns = m("conns_per_inv")
            backend = m("backend_conns_per_inv")
            conns_text = _num(conns, 2) + (f" (+{backend:.2f} to the service)" if scenario.backend else "")
            lines.append(
                f"| {scenario.name} | {client} | {_num(m('cpu_us'))} µs | {_ratio(r('cpu_us'))} "
                f"| {_num(m('throughput'))}/s | {_ratio(r('throughput'))} | {_num(m('p50_us'))} µs "
                f"| {_ratio(r('p50_us'))} | {_num(m('p99_us'))} µs | {conns_text} "
                f"| {_num(m('rss_mb'), 1)} ({_num(m('anon_mb'), 1)}) MB | {_num(m('server_cpu_us'))} µs |"
            )
    lines += [
        "",
        "### Cold start (spawn → first `GET /next`, then → first response; no-op handler)",
        "",
        "| client | to first /next | vs ric | to first response | vs ric | CPU to first /next | peak RSS (anon) then "
        "| vs ric | imports (all / own package, `-X importtime`) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for client in clients:
        cold = lambda metric, c=client: results.median("cold", c, metric)
        cold_ratio = lambda metric, c=client: _ratio(results.ratio("cold", c, metric))
        imports = lambda metric, c=client: _num(results.median("imports", c, metric), 1)
        if cold("to_first_next_ms") is None:
            continue
        lines.append(
            f"| {client} | {_num(cold('to_first_next_ms'), 1)} ms | {cold_ratio('to_first_next_ms')} "
            f"| {_num(cold('to_first_response_ms'), 1)} ms | {cold_ratio('to_first_response_ms')} "
            f"| {_num(cold('cpu_ms'), 1)} ms | {_num(cold('rss_mb'), 1)} ({_num(cold('anon_mb'), 1)}) MB "
            f"| {cold_ratio('rss_mb')} | {imports('total_ms')} / {imports('own_ms')} ms |"
        )
    lines += [
        "",
        "### fastric against the targets (ratios to awslambdaric)",
        "",
        "| target | wanted | measured | met |",
        "|---|--:|--:|:-:|",
    ]
    for label, target_scenario, metric, comparison, threshold in TARGETS:
        ratio = results.ratio(target_scenario, "fastric", metric)
        if ratio is None:
            lines.append(f"| {label} | {comparison} {threshold}× | – | – |")
            continue
        shown, wanted = ratio, threshold
        if target_scenario == "async":  # shown as "n× lower"
            shown, wanted, comparison = 1 / ratio, 1 / threshold, ">="
        met = shown <= wanted if comparison == "<=" else shown >= wanted
        lines.append(f"| {label} | {comparison} {wanted:g}× | {shown:.2f}× | {'yes' if met else '**no**'} |")
    return "\n".join(lines)


def chart_path(args: argparse.Namespace) -> str:
    """Where the chart goes: as asked, else the tracked chart for a full run and the temp dir for a smoke run."""
    if args.chart:
        return str(args.chart)
    smoke = args.quick or args.repeats or args.scenarios or args.clients != ",".join(CLIENTS)
    return str(SMOKE_CHART if smoke else CHART)


def write_chart_or_say_why(results: Results, clients: list[str], scenarios: list[Scenario], path: str, revision: str):
    """The chart (`chart.py`), or a line on stderr saying why there is none (matplotlib comes with `.[bench]`)."""
    from benchmarks.chart import write_chart

    try:
        write_chart(results, clients, [s.name for s in scenarios], path, f"benchmarks/compare.py, fastric {revision}")
    except ImportError as exc:
        sys.stderr.write(f"compare.py: no chart ({exc}; pip install -e '.[bench]')\n")
        return
    sys.stderr.write(f"compare.py: chart written to {path}\n")


def fastric_revision() -> str:
    """The commit the measured fastric comes from, marked dirty when the work tree has changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "fastric"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "unknown") + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for package in ("uvloop", "httptools", "orjson", "awslambdaric", "simplejson", "aiohttp"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return (
        f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}; " + ", ".join(versions)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repeats of a quarter of the invocations")
    parser.add_argument("--repeats", type=int, help="repeats of every client × scenario (default 5, quick 2)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="default: %(default)s")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(s.name for s in all_scenarios()))
    parser.add_argument("--json", metavar="PATH", help="also write the raw samples here")
    parser.add_argument(
        "--chart",
        metavar="PATH",
        help=f"the chart, .svg or .png (default: {CHART} for a full run; for a smoke run (--quick, --repeats, "
        f"--clients or --scenarios), {SMOKE_CHART}, so the tracked chart changes only when asked)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not write the chart")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    scale = 0.25 if args.quick else 1.0
    cold_starts = 2 if args.quick else 4
    scenarios = all_scenarios()
    if args.scenarios:
        wanted = args.scenarios.split(",")
        scenarios = [s for s in scenarios if s.name in wanted]
    for skipped in [s for s in scenarios if missing_requirement(s)]:
        sys.stderr.write(f"skipping {skipped.name}: {missing_requirement(skipped)}\n")
    scenarios = [s for s in scenarios if not missing_requirement(s)]
    clients = args.clients.split(",")
    problems = {client: problem for client in clients if (problem := harness.probe(client))}
    for client, problem in problems.items():
        sys.stderr.write(f"compare.py: {client} cannot run here: {problem.rstrip()}\n\n")
    if problems:
        sys.stderr.write(
            "Run compare.py with the Python that has the clients installed (`pip install -e '.[test,bench]'`, "
            "then `.venv/bin/python benchmarks/compare.py`), or leave a client out with --clients.\n"
        )
        return 1
    started = time.perf_counter()
    results = run(clients, scenarios, repeats, scale, cold_starts)
    elapsed = time.perf_counter() - started
    print(markdown(results, clients, scenarios))
    print()
    print(f"Measured on: {machine()}; fastric {fastric_revision()}.")
    print(
        f"Command: `python benchmarks/compare.py{' --quick' if args.quick else ''}` ({repeats} repeats, "
        f"{elapsed:.0f} s). Client CPU is user+system time of the client process (/proc schedstat), "
        f"over the measured window only; latency is the server's view (`/next` answer sent → result received); "
        f'"vs ric" is the median over repeats of client ÷ awslambdaric measured in the same repeat.'
    )
    if not args.no_chart:
        write_chart_or_say_why(results, clients, scenarios, chart_path(args), fastric_revision())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"machine": machine(), "repeats": repeats, "scale": scale, "samples": results.samples}, f, indent=1
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
