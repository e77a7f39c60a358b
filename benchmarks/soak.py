"""Soak: many invocations in one warm client, VmRSS and open fds sampled every 10% (a benchmark, not a test).

    python benchmarks/soak.py                       # 100,000 tiny invocations and 2,000 × 1 MB events, fastric
    python benchmarks/soak.py --clients fastric,awslambdaric --scale 0.1

Each line of the output is one sample: scenario, client, invocations done, VmRSS (KiB), RssAnon (KiB), fds.
Flat series are the point: memory or descriptors that grow with the invocation count are a leak.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, procstat
from benchmarks.scenarios import scenario

RUNS = (("tiny", 100_000), ("event_1mb", 2_000))


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def soak(client: str, name: str, total: int, samples: int = 10) -> list[tuple[int, int, int, int]]:
    """Run `total` invocations of scenario `name` in one warm `client`; (done, VmRSS, RssAnon, fds) per sample."""
    series = []
    with harness.warm_client(client, scenario(name), timeout=600.0) as warm:
        pid = warm.process.proc.pid
        series.append((0, procstat._status_kb(pid, b"VmRSS:"), procstat.anon_rss_kb(pid), open_fds(pid)))
        step = max(1, total // samples)
        done = 0
        while done < total:
            count = min(step, total - done)
            warm.run(count)
            done += count
            series.append((done, procstat._status_kb(pid, b"VmRSS:"), procstat.anon_rss_kb(pid), open_fds(pid)))
    return series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="fastric", help="comma-separated (default: %(default)s)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the invocation counts (default 1)")
    args = parser.parse_args(argv)
    print("| scenario | client | invocations | VmRSS KiB | RssAnon KiB | fds |")
    print("|---|---|--:|--:|--:|--:|")
    for client in args.clients.split(","):
        for name, total in RUNS:
            for done, rss, anon, fds in soak(client, name, max(10, int(total * args.scale))):
                print(f"| {name} | {client} | {done:,} | {rss:,} | {anon:,} | {fds} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
