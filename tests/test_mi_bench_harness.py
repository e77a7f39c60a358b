"""The Lambda Managed Instances benchmark (`benchmarks/managed_instances.py`) measures what it claims: the same
invocations for every configuration, every answer checked, memory summed over the bootstrap's process tree.
Tiny configurations; nothing timed."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import managed_instances as mi  # noqa: E402
from benchmarks import procstat  # noqa: E402


def test_every_configuration_of_one_n_gets_the_same_invocations_in_the_same_order():
    args = mi.parse_args(["--delay-ms", "50-400", "--per-slot", "5", "--cpu-ms", "2"])
    first, again = mi.workload(8, args), mi.workload(8, args)
    assert first == again
    assert len(first.measured) == 40 and len(first.warmup) == 8
    assert all(50 <= delay <= 400 for delay, _ in first.measured)
    assert len({delay for delay, _ in first.measured}) > 10  # drawn, not constant
    assert first.warmup[0] == (400, b'{"delay_ms":400,"cpu_ms":2.0}')  # warm-up: every slot busy at once


def test_the_plan_compares_at_n_then_scales_fastric_alone():
    configs = mi.plan(32, [64, 256])
    assert [(c.runtime, c.handler, c.n, c.workers) for c in configs] == [
        ("fastric", "async_io", 32, 1),
        ("awslambdaric", "sync_io", 32, None),
        ("fastric", "async_io", 32, 2),
        ("fastric", "sync_io", 32, None),
        ("fastric", "async_io", 64, 1),
        ("fastric", "async_io", 256, 1),
        ("fastric", "async_io", 256, 2),
    ]
    assert configs[1].command[1:] == ["-m", "awslambdaric", "mi_handlers.sync_io"]


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert mi.percentile(values, 0.5) == 50.0
    assert mi.percentile(values, 0.99) == 99.0
    assert mi.percentile([7.0], 0.99) == 7.0


def test_ratios_pair_runs_of_the_same_repeat_and_the_targets_use_them():
    results = mi.Results()
    fastric, ric = mi.Config("fastric", "async_io", 4, workers=1), mi.Config("awslambdaric", "sync_io", 4)
    run = dict.fromkeys(
        ("p50_ms", "p99_ms", "added_p50_ms", "added_p99_ms", "processes", "cpu_ms_per_inv", "emulator_cpu_ms_per_inv"),
        1.0,
    )
    for mine, theirs in ((10.0, 100.0), (30.0, 100.0), (20.0, 50.0)):
        results.add(fastric, run | {"pss_mb": mine, "throughput": 100.0})
        results.add(ric, run | {"pss_mb": theirs, "throughput": 99.0})
    assert results.ratio(fastric, "pss_mb") == pytest.approx(0.3)  # median of 0.1, 0.3, 0.4
    assert results.median(fastric, "pss_mb") == 20.0
    assert results.ratio(mi.Config("fastric", "async_io", 8), "pss_mb") is None  # no baseline at that N
    targets = mi.targets(results, 4)
    assert "| PSS, all N in flight at N=4 | <= 0.4× | 0.30× | yes |" in targets
    assert "| throughput at N=4 | >= 1.0× | 1.01× | yes |" in targets
    assert "| fastric (async def, FASTRIC_WORKERS=1) | 4 | 1 | 100.0/s | 1.01× |" in mi.table(results)


def test_the_backend_service_answers_pipelined_requests_on_one_connection():
    with mi.Backend() as backend:
        host, port = backend.address.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /item HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            received = b""
            while received.count(mi.BACKEND_BODY) < 2:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
        assert received == mi.BACKEND_RESPONSE * 2
    assert backend.proc.returncode is not None  # stopped


def test_pss_is_summed_over_a_process_tree():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdin=subprocess.DEVNULL)
    try:
        assert child.pid in procstat.descendants(os.getpid())
        assert procstat.pss_kb(child.pid) > 0
    finally:
        child.kill()
        child.wait()
    assert procstat.pss_kb(child.pid) == -1


def test_a_failed_invocation_fails_the_run_with_the_emulator_log(monkeypatch):
    args = argparse.Namespace(delay_ms=(1, 1), cpu_ms=0.0, seed=1, per_slot=1, sample_every=0.01)
    config = mi.Config("fastric", "sync_io", 1)
    with pytest.raises(mi.BenchmarkFailure, match=r"(?s)answered 200 .*x-amz-function-error.*emulator log"):
        mi.measure(config, "127.0.0.1:9", mi.workload(1, args))  # nothing listens on port 9: the GET fails


@pytest.mark.slow
def test_quick_run_prints_its_table():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "managed_instances.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = re.findall(
        r"^\| (fastric|awslambdaric) \((async def|def)(, FASTRIC_WORKERS=\d)?\) \| (\d+) \|", done.stdout, re.M
    )
    assert sorted(rows) == sorted(
        [
            ("fastric", "async def", ", FASTRIC_WORKERS=1", "2"),
            ("awslambdaric", "def", "", "2"),
            ("fastric", "async def", ", FASTRIC_WORKERS=2", "2"),
            ("fastric", "def", "", "2"),
            ("fastric", "async def", ", FASTRIC_WORKERS=1", "4"),
            ("fastric", "async def", ", FASTRIC_WORKERS=2", "4"),
        ]
    )
    assert "| PSS, all N in flight at N=2 | <= 0.4× |" in done.stdout
    assert "Command: `python benchmarks/managed_instances.py --quick`" in done.stdout
