"""Per-invocation overhead and payload benchmarks: a warm client process, measured in rounds of invocations.

The benchmark "time" of a round is the *client CPU* those invocations cost (the `client_cpu_seconds` timer,
read while the client is parked on `/next`); wall time, throughput, latency quantiles, server CPU,
connections and peak RSS go to `extra_info` and to the closing summary.
"""

from __future__ import annotations

import statistics

import pytest

from benchmarks import harness
from benchmarks.conftest import record
from benchmarks.scenarios import CLIENTS, all_scenarios, missing_requirement

SCENARIOS = all_scenarios()
ROUNDS = 8


@pytest.mark.benchmark(timer=harness.client_cpu_seconds, disable_gc=False, warmup=False)
@pytest.mark.parametrize("client", CLIENTS, indirect=True)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_invocations(benchmark, client, scenario):
    if missing_requirement(scenario):
        pytest.skip(missing_requirement(scenario))
    per_round = max(1, scenario.invocations // ROUNDS)
    windows = []
    with harness.warm_client(client, scenario) as warm:
        harness.watch_client_cpu(warm.process.proc.pid)
        try:
            benchmark.group = f"client CPU per {per_round} invocations: {scenario.name}"
            benchmark.pedantic(lambda: windows.append(warm.run(per_round)), rounds=ROUNDS, iterations=1)
        finally:
            harness.watch_client_cpu(None)
    summary = {
        "client_cpu_us_per_invocation": statistics.median(w.client_cpu_us for w in windows),
        "invocations_per_s": statistics.median(w.throughput for w in windows),
        "p50_latency_us": statistics.median(w.latency_us(0.5) for w in windows),
        "p99_latency_us": statistics.median(w.latency_us(0.99) for w in windows),
        "server_cpu_us_per_invocation": statistics.median(w.server_cpu_us for w in windows),
        "connections_per_invocation": sum(w.connections for w in windows) / sum(w.invocations for w in windows),
        "backend_connections_per_invocation": (
            sum(w.backend_connections for w in windows) / sum(w.invocations for w in windows)
        ),
        "peak_rss_kb": windows[-1].client_peak_rss_kb,
        "anon_rss_kb": windows[-1].client_anon_rss_kb,
    }
    benchmark.extra_info.update(summary)
    record(
        scenario.title,
        client,
        {
            "cpu/inv": f"{summary['client_cpu_us_per_invocation']:.0f}us",
            "inv/s": f"{summary['invocations_per_s']:.0f}",
            "p50": f"{summary['p50_latency_us']:.0f}us",
            "p99": f"{summary['p99_latency_us']:.0f}us",
            "server cpu/inv": f"{summary['server_cpu_us_per_invocation']:.0f}us",
            "conns/inv": f"{summary['connections_per_invocation']:.2f}",
            "peak RSS": f"{summary['peak_rss_kb'] / 1024:.1f}MB",
            "anon RSS": f"{summary['anon_rss_kb'] / 1024:.1f}MB",
        },
    )
