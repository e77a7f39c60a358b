"""Instructions per tiny invocation, counted with callgrind: fastric against awslambdaric, in one run.

    python benchmarks/instructions.py                    # both clients, the table
    python benchmarks/instructions.py --json out.json    # ... and the figures for machines ("-" for stdout)
    python benchmarks/instructions.py --check            # CI: fail when fastric's ratio rose > 3% over the baseline
    python benchmarks/instructions.py --write-baseline   # record this run as the baseline (commit the file)
    python benchmarks/instructions.py --steps            # also instructions per invocation per step (Python 3.12+)

Each client runs as a subprocess under `valgrind --tool=callgrind` (the server, `benchmarks/server.py`'s with
Lambda-like heads, runs outside valgrind, in this process), serves `--invocations LOW,HIGH` tiny invocations (a
~100 B event, a no-op handler, as `compare.py`'s `tiny` scenario) and exits on the 500 that ends the scenario.
Start-up and exit cost the same in both runs, so

    instructions per invocation = (instructions of the HIGH run - instructions of the LOW run) / (HIGH - LOW)

counts the warm loop alone. Instruction counts do not depend on the machine's load or speed, only on the code
that runs: the runs use `PYTHONHASHSEED=0`, ASLR off (`setarch -R`), the same environment and the same bytes from
the server (request ids, deadlines and trace ids new in every invocation, as Lambda's, but made up from the
invocation's number; everything answering one read written at once, so the client's reads do not depend on
timing), so a second run gives the same figure to within a few instructions per invocation (`--repeat 2`).

`--check` compares fastric/awslambdaric (the ratio, which cancels most of what differs between Python builds and
machines) with `benchmarks/instructions-baseline.json` and exits 1 when it rose more than `--tolerance` (3%) above
it. Improve the ratio, then `--write-baseline` and commit the file, so that the next silent slowdown fails.

`--steps` runs fastric once more with the interpreter's perf trampolines (`python -X perf`, CPython 3.12+ on
Linux: every Python function gets a small machine-code entry listed in `/tmp/perf-PID.map`), so callgrind's
inclusive counts can be attributed to Python functions; the table lists the runtime's main steps (parse,
begin/context, handler call, encode, reply) per invocation, from the HIGH - LOW difference again. The trampolines
add a few instructions per call, so the steps' figures are for comparing steps, not for the total.

Needs valgrind (`apt-get install valgrind`) and awslambdaric 4.2.2 in the interpreter that runs the clients
(`--python`, this one by default: `pip install -e '.[test]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import TASK_DIR, client_command, client_environment
from benchmarks.server import INVOCATION_PREFIX, BenchmarkFailure, BenchServer, Expectation
from benchmarks.task import payloads

BASELINE = Path(__file__).resolve().parent / "instructions-baseline.json"
CLIENTS = ("fastric", "awslambdaric")
HANDLER = "bench_handlers.noop"
TINY_EVENT = json.dumps(payloads.tiny_event(), separators=(",", ":")).encode()  # compare.py's `tiny` event
DEFAULT_INVOCATIONS = (1000, 3000)
TOLERANCE = 0.03

# The steps of `--steps`: a name and the Python functions (`file.py:qualified.name`, or a bare function name)
# whose inclusive instructions make it up; the outermost match counts (the others run inside it). A step whose
# functions are absent (the code was reorganised) shows as absent, not as zero: edit the patterns when the
# runtime's functions are renamed (`--steps` also lists the costliest functions, whatever their names).
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the POST of the reply; with pipelining, its read brings the 202 and the next /next's answer together
    ("post: send, receive (202 + next /next)", ("loop.py:post",)),
    ("  parse the responses", ("plainparser.py:PlainResponseParser.feed", "parser.py:ResponseParser.feed")),
    ("  the invocation from the response", ("core.py:Session.next_answered",)),
    ("begin / context", ("core.py:begin",)),
    ("  decode the event", ("marshal.py:decode_event",)),
    ("handler call", ("bench_handlers.py:noop",)),
    ("encode result", ("marshal.py:encode_result",)),
    ("build the reply request", ("core.py:result_reply",)),
)
TOP_FUNCTIONS = 25


NEXT_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Lambda-Runtime-Aws-Request-Id: %s\r\n"
    b"Lambda-Runtime-Deadline-Ms: %d\r\n"
    b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n"
    b"Lambda-Runtime-Trace-Id: Root=1-%08x-%024x;Parent=%016x;Sampled=0\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
    b"Content-Length: %d\r\n\r\n"
)
DEADLINE_MS = 4_102_444_800_000  # 2100-01-01: far ahead, and the same number of digits for every invocation


class LambdaLikeServer(BenchServer):
    """`BenchServer` whose `/next` heads vary as Lambda's do: every invocation has its own request id (a UUID),
    trace id and deadline. Made up from the invocation's number alone, so every run sends the same bytes; the
    Date header stays the same (Lambda's changes once a second: a few times in a run of thousands)."""

    _batching: object = None  # the connection whose received requests are being answered
    _pending: list[bytes] = []

    def _on_readable(self, conn) -> None:
        """Answer everything one read brought in one write: a POST with the next `GET /next` pipelined behind it
        gets its 202 and the next invocation in one segment, every time (two writes would reach the client in
        one read or two depending on timing, and the count with them)."""
        self._batching, self._pending = conn, []
        try:
            super()._on_readable(conn)
        finally:
            pending, self._batching, self._pending = self._pending, None, []
            if pending:
                self._write(conn, b"".join(pending))

    def _send(self, conn, data: bytes) -> None:
        if conn is self._batching and not conn.close_after_reply:
            self._pending.append(data)
        else:
            if conn is self._batching and self._pending:
                data = b"".join(self._pending) + data
                self._pending = []
            self._write(conn, data)

    def _write(self, conn, data: bytes) -> None:
        super()._send(conn, data)

    def _answer_next(self, conn) -> None:
        self._budget -= 1
        self._seq += 1
        seq = self._seq
        mixed = (seq * 0x9E3779B97F4A7C15) & ((1 << 128) - 1)  # a fixed pseudo-random spread of the number
        request_id = b"%08x-%04x-4%03x-a%03x-%012x" % (
            mixed >> 96,
            (mixed >> 80) & 0xFFFF,
            (mixed >> 68) & 0xFFF,
            (mixed >> 56) & 0xFFF,
            mixed & 0xFFFFFFFFFFFF,
        )
        event = self.expectation.event
        self._expected_path = INVOCATION_PREFIX + request_id + b"/response"
        head = NEXT_HEAD % (
            request_id,
            DEADLINE_MS + seq * 37,
            0x6950_0000 + seq,
            (mixed >> 32) & ((1 << 96) - 1),
            mixed & ((1 << 64) - 1),
            len(event),
        )
        self._next_sent_at = time.perf_counter()
        self._send(conn, head + event)


@dataclass
class Count:
    """Instructions counted for one client process."""

    client: str
    invocations: int
    instructions: int
    seconds: float  # wall time of the whole run, valgrind included


@dataclass
class ClientResult:
    client: str
    per_invocation: float
    runs: list[Count] = field(default_factory=list)


def valgrind() -> str | None:
    """The path of valgrind, or None."""
    return shutil.which("valgrind")


def _no_aslr_prefix() -> list[str]:
    setarch = shutil.which("setarch")
    if setarch is None:
        return []
    probe = subprocess.run([setarch, platform.machine(), "-R", "true"], capture_output=True)
    return [setarch, platform.machine(), "-R"] if probe.returncode == 0 else []


def client_env(address: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The benchmark's Lambda-like environment, made repeatable: fixed hash seed, nothing else that varies."""
    env = client_environment(address, extra)
    env["PYTHONHASHSEED"] = "0"
    for name in ("PYTHONDEVMODE", "PYTHONMALLOC", "PYTHONTRACEMALLOC", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a run must not count compiling what a previous run did not cache
    return env


def parse_totals(path: Path) -> int:
    """The total instructions (Ir) in a callgrind output file."""
    text = path.read_text(errors="replace")
    for key in ("summary:", "totals:"):
        for line in text.splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def count(
    client: str,
    invocations: int,
    *,
    python: str = sys.executable,
    out_dir: Path,
    python_args: Sequence[str] = (),
    timeout: float = 600.0,
    tag: str = "",
) -> tuple[Count, Path, int]:
    """Run `client` under callgrind for `invocations` tiny invocations; the count, the output file and the pid."""
    vg = valgrind()
    if vg is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    out = out_dir / f"callgrind.{client}.{invocations}{tag}.out"
    command = [
        *_no_aslr_prefix(),
        vg,
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-line=no",
        "--compress-strings=no",
        "--compress-pos=no",
        *client_command(client, HANDLER, python=python, python_args=tuple(python_args)),
    ]
    started = time.perf_counter()
    with LambdaLikeServer(Expectation(TINY_EVENT, _is_null)) as server:
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            command,
            cwd=TASK_DIR,
            env=client_env(server.address),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            alive = lambda: proc.poll() is None
            server.wait_idle(timeout, alive)
            server.run(invocations, timeout, alive)
            server.finish()
            proc.wait(timeout)
        except (BenchmarkFailure, subprocess.TimeoutExpired) as exc:
            log.seek(0)
            raise BenchmarkFailure(
                f"{client} under callgrind: {exc}\n--- output ---\n{log.read()[-4000:].decode(errors='replace')}"
            ) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    return Count(client, invocations, parse_totals(out), time.perf_counter() - started), out, proc.pid


def _is_null(body: bytes) -> str | None:
    return None if body.strip() == b"null" else "expected null from the no-op handler"


def per_invocation(low: Count, high: Count) -> float:
    """Instructions per invocation: start-up and exit cancel out of the difference of the two runs."""
    return (high.instructions - low.instructions) / (high.invocations - low.invocations)


def measure(
    clients: Sequence[str], invocations: tuple[int, int], *, python: str, out_dir: Path, repeat: int = 1
) -> list[ClientResult]:
    """Every client, LOW and HIGH runs (`repeat` times each: the figure is the median pair's)."""
    results = []
    for client in clients:
        figures, runs = [], []
        for _ in range(repeat):
            low = count(client, invocations[0], python=python, out_dir=out_dir)[0]
            high = count(client, invocations[1], python=python, out_dir=out_dir)[0]
            runs += [low, high]
            figures.append(per_invocation(low, high))
        results.append(ClientResult(client, sorted(figures)[len(figures) // 2], runs))
    return results


# -- steps (python -X perf) ---------------------------------------------------------------------------------------


def perf_supported(python: str) -> bool:
    """Whether `python` has perf trampolines (CPython 3.12+ on Linux, most builds)."""
    probe = subprocess.run(
        [python, "-X", "perf", "-c", "import sys; print(sys.is_stack_trampoline_active())"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def _perf_map(pid: int) -> list[tuple[int, int, str]]:
    path = Path(f"/tmp/perf-{pid}.map")
    entries = []
    try:
        text = path.read_text()
    except OSError:
        return entries
    for line in text.splitlines():
        start, size, name = line.split(" ", 2)
        entries.append((int(start, 16), int(size, 16), name))
    entries.sort()
    return entries


_FN_ADDRESS = re.compile(r"^0x([0-9a-f]+)$")


def inclusive_by_function(out: Path) -> dict[str, int]:
    """Inclusive instructions per function of a callgrind file (written with `--dump-line=no`, uncompressed
    names): its own cost plus that of every call it made. Recursion levels (`fn'2`) are left out: the outermost
    level's calls already hold them."""
    totals: dict[str, int] = {}
    current: str | None = None
    with out.open(errors="replace") as lines:
        for line in lines:
            if line.startswith("fn="):
                name = line[3:].rstrip("\n")
                current = None if "'" in name else name
            elif current is not None and line[:1].isdigit():  # `position cost`: its own, or a call's inclusive
                parts = line.split()
                if len(parts) >= 2:
                    totals[current] = totals.get(current, 0) + int(parts[1])
    return totals


def python_functions_inclusive(out: Path, pid: int) -> dict[str, int]:
    """Inclusive instructions per Python function (`py::name:path`, as the perf map names it) of a callgrind file
    of a `python -X perf` process whose perf map is `/tmp/perf-PID.map`.

    With the trampolines on, every Python call enters the evaluation loop through its code object's trampoline
    (no call is inlined in the loop then), so the inclusive cost of the trampoline (named by its address in
    callgrind's file: it has no symbol) is the Python call's."""
    entries = _perf_map(pid)
    if not entries:
        return {}
    import bisect

    starts = [start for start, _, _ in entries]
    totals: dict[str, int] = {}
    for name, cost in inclusive_by_function(out).items():
        match = _FN_ADDRESS.match(name)
        if match is None:
            continue
        address = int(match.group(1), 16)
        index = bisect.bisect_right(starts, address) - 1
        if index >= 0 and address < starts[index] + entries[index][1]:
            py_name = entries[index][2]
            totals[py_name] = totals.get(py_name, 0) + cost
    return totals


def steps(
    invocations: tuple[int, int], *, python: str, out_dir: Path
) -> tuple[dict[str, float | None], dict[str, float]]:
    """Inclusive instructions per invocation of fastric's main steps (see STEPS) and of its costliest Python
    functions (the runtime's and the handler's), from a LOW and a HIGH run with the perf trampolines on."""
    runs = []
    for n in invocations:
        counted, out, pid = count("fastric", n, python=python, out_dir=out_dir, python_args=("-X", "perf"), tag=".perf")
        try:
            runs.append((counted, python_functions_inclusive(out, pid)))
        finally:
            Path(f"/tmp/perf-{pid}.map").unlink(missing_ok=True)
    (low_count, low), (high_count, high) = runs
    span = invocations[1] - invocations[0]
    per_function = {name: (high[name] - low.get(name, 0)) / span for name in high}
    ranked = dict(sorted(per_function.items(), key=lambda item: -item[1]))
    (out_dir / "steps-per-function.json").write_text(json.dumps(ranked, indent=1))
    result: dict[str, float | None] = {"total (with trampolines)": per_invocation(low_count, high_count)}
    for step, patterns in STEPS:
        matched = [cost for name, cost in per_function.items() if _matches(name, patterns)]
        result[step] = max(matched) if matched else None  # the outermost: the others ran inside it
    top = {_short(name): cost for name, cost in ranked.items() if _is_own(name)}
    return result, dict(list(top.items())[:TOP_FUNCTIONS])


def _split(name: str) -> tuple[str, str]:
    """(file name, qualified function name) of a perf map name, `py::qualified.name:/path/to/module.py`."""
    function, _, path = name[4:].partition(":")
    return Path(path).name, function


def _matches(name: str, patterns: Sequence[str]) -> bool:
    if not name.startswith("py::"):
        return False
    file, function = _split(name)
    return any(f"{file}:{function}" == p if ":" in p else function.rpartition(".")[2] == p for p in patterns)


def _is_own(name: str) -> bool:
    """A function of fastric's or of the benchmark's handler (not of the standard library)."""
    return name.startswith("py::") and ("/fastric/" in name or "/benchmarks/task/" in name)


def _short(name: str) -> str:
    file, function = _split(name)
    return f"{file}:{function}"


# -- the baseline --------------------------------------------------------------------------------------------------


def summary(results: list[ClientResult], invocations: tuple[int, int], python: str) -> dict:
    figures = {r.client: r.per_invocation for r in results}
    doc: dict = {
        "invocations": list(invocations),
        "python": _python_version(python),
        "per_invocation": {k: round(v, 1) for k, v in figures.items()},
        "runs": [asdict(c) for r in results for c in r.runs],
    }
    if "fastric" in figures and "awslambdaric" in figures and figures["awslambdaric"]:
        doc["ratio"] = round(figures["fastric"] / figures["awslambdaric"], 4)
    return doc


def _python_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True
    ).stdout.strip()


def check(doc: dict, baseline: dict, tolerance: float = TOLERANCE) -> tuple[bool, str]:
    """(passed, message): fastric's ratio against the baseline's."""
    if "ratio" not in doc:
        return False, "no ratio measured (both fastric and awslambdaric are needed)"
    ratio, base = doc["ratio"], baseline["ratio"]
    limit = base * (1 + tolerance)
    change = ratio / base - 1
    note = ""
    if (
        baseline.get("python")
        and doc.get("python")
        and baseline["python"].split(".")[:2] != doc["python"].split(".")[:2]
    ):
        note = f" (the baseline was counted on Python {baseline['python']}, this run on {doc['python']})"
    message = (
        f"fastric/awslambdaric instructions per invocation: {ratio:.4f}, baseline {base:.4f} "
        f"({change:+.1%}; the limit is {limit:.4f}, +{tolerance:.0%}){note}"
    )
    return ratio <= limit, message


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated (default: %(default)s)")
    parser.add_argument(
        "--invocations", default="%d,%d" % DEFAULT_INVOCATIONS, help="LOW,HIGH invocation counts (default %(default)s)"
    )
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the clients")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON ('-' for stdout)")
    parser.add_argument("--check", action="store_true", help="exit 1 if fastric's ratio rose above the baseline")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="the baseline file (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="allowed rise of the ratio (0.03 = 3%%)")
    parser.add_argument("--write-baseline", action="store_true", help="record this run in the baseline file")
    parser.add_argument("--steps", action="store_true", help="also count fastric's steps (needs python -X perf)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (the median is kept)")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR")
    args = parser.parse_args(argv)
    python = shutil.which(args.python)  # the clients run in the task folder: a relative path must not move
    if python is None:
        parser.error(f"--python: no interpreter at {args.python}")
    args.python = os.path.abspath(python)

    if valgrind() is None:
        print("instructions.py: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    clients = [c for c in args.clients.split(",") if c]
    low, high = (int(n) for n in args.invocations.split(","))
    if not 0 <= low < high:
        parser.error("--invocations: LOW,HIGH with LOW < HIGH")
    invocations = (low, high)
    if args.check or args.write_baseline:
        if sorted(clients) != sorted(CLIENTS):
            parser.error("--check and --write-baseline need both clients")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        out_dir = Path(args.keep) if args.keep else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        results = measure(clients, invocations, python=args.python, out_dir=out_dir, repeat=args.repeat)
        doc = summary(results, invocations, args.python)
        step_figures: dict | None = None
        if args.steps:
            if perf_supported(args.python):
                step_figures, top = steps(invocations, python=args.python, out_dir=out_dir)
                doc["steps"] = {k: (None if v is None else round(v, 1)) for k, v in step_figures.items()}
                doc["functions"] = {k: round(v, 1) for k, v in top.items()}
            else:
                print(f"--steps: {args.python} has no perf trampolines (CPython 3.12+ on Linux): no step figures")
    doc["seconds"] = round(time.perf_counter() - started, 1)

    out = sys.stderr if args.json == "-" else sys.stdout
    print(
        f"instructions per tiny invocation (callgrind; runs of {low} and {high} invocations, Python {doc['python']})",
        file=out,
    )
    for r in results:
        spread = ""
        if args.repeat > 1:
            figures = [per_invocation(r.runs[i], r.runs[i + 1]) for i in range(0, len(r.runs), 2)]
            spread = f"  (runs: {', '.join(f'{f:,.1f}' for f in figures)})"
        print(f"  {r.client:<13} {r.per_invocation:>12,.0f}{spread}", file=out)
    if "ratio" in doc:
        print(f"  fastric/awslambdaric: {doc['ratio']:.3f}", file=out)
    if step_figures:
        print("fastric's steps, inclusive instructions per invocation (python -X perf):", file=out)
        for name, value in step_figures.items():
            print(f"  {name:<36} {'absent' if value is None else f'{value:>10,.0f}'}", file=out)
        print(f"fastric's costliest functions, inclusive instructions per invocation (top {TOP_FUNCTIONS}):", file=out)
        for name, value in doc["functions"].items():
            print(f"  {name:<60} {value:>10,.0f}", file=out)
    print(f"({doc['seconds']} s)", file=out)

    if args.json:
        text = json.dumps(doc, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text)
    status = 0
    if args.write_baseline:
        base = {k: doc[k] for k in ("invocations", "python", "per_invocation", "ratio")}
        args.baseline.write_text(json.dumps(base, indent=2) + "\n")
        print(f"baseline written to {args.baseline}", file=out)
    if args.check:
        baseline = json.loads(args.baseline.read_text())
        passed, message = check(doc, baseline, args.tolerance)
        print(("ok: " if passed else "FAILED: ") + message, file=out)
        status = 0 if passed else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
