"""Cold start (process spawn → first `GET /next` at the server → first result) and what the client imports.

pytest-benchmark's own timings are what each group's name says; the init phase alone (spawn → first `/next`)
and the import times are measured inside each round and shown in the closing summary and `extra_info`.
"""

from __future__ import annotations

import statistics

import pytest

from benchmarks import harness
from benchmarks.conftest import record
from benchmarks.scenarios import CLIENTS

ROUNDS = 10


@pytest.mark.benchmark(group="cold start: spawn to first invocation served (client back on /next)", warmup=False)
@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_cold_start(benchmark, client):
    harness.cold_start(client)  # compile and cache bytecode, warm the page cache: cold start, not first boot
    starts = []
    probes = []

    def setup():
        probes.append(harness.ColdStartProbe(client))

    def teardown():
        probes.pop().close()

    benchmark.pedantic(
        lambda: starts.append(probes[-1].start()), setup=setup, teardown=teardown, rounds=ROUNDS, iterations=1
    )
    summary = {
        "spawn_to_first_next_ms": statistics.median(s.to_first_next_s for s in starts) * 1000,
        "spawn_to_first_response_ms": statistics.median(s.to_first_response_s for s in starts) * 1000,
        "client_cpu_ms": statistics.median(s.client_cpu_s for s in starts) * 1000,
        "peak_rss_kb": statistics.median(s.peak_rss_kb for s in starts),
        "anon_rss_kb": statistics.median(s.anon_rss_kb for s in starts),
    }
    benchmark.extra_info.update(summary)
    record(
        "cold start",
        client,
        {
            "spawn→/next": f"{summary['spawn_to_first_next_ms']:.1f}ms",
            "spawn→1st response": f"{summary['spawn_to_first_response_ms']:.1f}ms",
            "cpu to /next": f"{summary['client_cpu_ms']:.1f}ms",
            "peak RSS": f"{summary['peak_rss_kb'] / 1024:.1f}MB",
            "anon RSS": f"{summary['anon_rss_kb'] / 1024:.1f}MB",
        },
    )


@pytest.mark.benchmark(group="python -X importtime: a whole client process (import times in the summary)", warmup=False)
@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_import_cost(benchmark, client):
    costs = []
    benchmark.pedantic(lambda: costs.append(harness.import_cost(client)), rounds=3, iterations=1)
    summary = {
        "all_imports_ms": statistics.median(c.total_ms for c in costs),
        "own_package_ms": statistics.median(c.own_ms for c in costs),
        "heaviest": costs[-1].heaviest,
    }
    benchmark.extra_info.update(summary)
    record(
        "imports up to the first /next",
        client,
        {
            "all": f"{summary['all_imports_ms']:.1f}ms",
            "own package": f"{summary['own_package_ms']:.1f}ms",
            "heaviest": ", ".join(f"{name} {ms:.1f}ms" for name, ms in summary["heaviest"][:5]),
        },
    )
