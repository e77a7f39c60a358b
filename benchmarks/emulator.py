"""The emulator's own cost: sequential tiny invokes through `fastric emulate`, against AWS's RIE when there is one.

    python benchmarks/emulator.py                        # fastric emulate (and aws-lambda-rie if on PATH)
    python benchmarks/emulator.py --rie /path/to/aws-lambda-rie --invokes 5000 --repeats 7
    python benchmarks/emulator.py --emulator before=/tmp/fastric-main   # another tree's emulator, same run
    python benchmarks/emulator.py --harness               # also through the harness fastric.testing drives

Every emulator runs the same runtime behind it, `python -m fastric bench_handlers.noop` from this tree, with the
task root `benchmarks/task`. One client (this process) sends `--invokes` sequential `POST
/2015-03-31/functions/function/invocations` with a ~100-byte event over one keep-alive connection, after a
warm-up, and checks every answer (200, the handler's `null`). Per emulator and repeat: invokes per second, the
mean round trip, and the CPU per invoke of the emulator process itself (user+system from `/proc`, the bootstrap
left out) and of the bootstrap (with its descendants). Emulators run interleaved (the order rotates each
repeat), each repeat a fresh process; the table shows medians, and "vs RIE" the median of per-repeat ratios.

`--emulator NAME=DIR` adds the emulator of another source tree (e.g. `git archive` of an earlier commit
unpacked in DIR), imported from DIR, with the same runtime behind it: before/after figures from one run.
The RIE (`aws-lambda-rie`, found on PATH or given with `--rie`) is skipped with a note when there is none.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import procstat  # noqa: E402

TASK_ROOT = HERE / "task"
HANDLER = "bench_handlers.noop"
EVENT = json.dumps({"source": "bench", "detail": {"id": 42, "items": ["a", "b", "c"], "ok": True}}).encode()
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
EXPECTED_BODY = b"null"
START_TIMEOUT = 30.0
FRAME_HEAD = struct.Struct(">cI")


class BenchmarkFailure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runtime_command() -> list[str]:
    return [sys.executable, "-m", "fastric", HANDLER]


def runtime_environment() -> dict[str, str]:
    """This process's environment without Lambda variables; the runtime imported from this tree."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "LAMBDA_", "_HANDLER"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Target:
    """An emulator to measure: a command line that serves the invoke endpoint on `port` (`fastric`, `rie`), or
    the emulator as `fastric.testing` drives it (`harness`: `python -m fastric.emulator.harness`, its control
    port's `POST /invoke`, answered in frames)."""

    def __init__(self, name: str, kind: str, where: str = ""):
        self.name, self.kind, self.where = name, kind, where

    def command(self, port: int) -> list[str]:
        if self.kind == "harness":
            tree = self.where or str(ROOT)
            boot = (
                f"import sys; sys.path.insert(0, {tree!r}); from fastric.emulator.harness import main; sys.exit(main())"
            )
            return [sys.executable, "-c", boot]
        if self.kind == "rie":
            return [
                self.where,
                "--runtime-interface-emulator-address",
                f"127.0.0.1:{port}",
                "--runtime-api-address",  # not the default 127.0.0.1:9001, which something else may hold
                f"127.0.0.1:{free_port()}",
                *runtime_command(),
            ]
        tree = self.where or str(ROOT)
        boot = (
            f"import sys; sys.path.insert(0, {tree!r}); from fastric.emulator.cli import emulate_main; "
            "sys.exit(emulate_main(sys.argv[1:]))"
        )
        # `--` and the runtime's command: the same `python -m fastric` of this tree behind every emulator
        return [
            sys.executable,
            "-c",
            boot,
            "--port",
            str(port),
            "--task-root",
            str(TASK_ROOT),
            "--timeout",
            "30",
            "--",
            *runtime_command(),
        ]


class Connection:
    """One keep-alive connection to the invoke endpoint (or the harness's control port), with a prebuilt request."""

    def __init__(self, port: int, path: str = INVOKE_PATH):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(EVENT)}\r\n\r\n"
        ).encode() + EVENT
        self.framed = path != INVOKE_PATH
        self.buffer = b""

    def invoke(self) -> bytes:
        self.sock.sendall(self.request)
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchmarkFailure("the emulator closed the connection")
            buffer += chunk
        head = buffer[:end].decode("latin-1")
        status_line, *fields = head.split("\r\n")
        length = -1
        for field in fields:
            name, _, value = field.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length < 0:
            raise BenchmarkFailure(f"no Content-Length in {head!r}")
        body_start = end + 4
        while len(buffer) < body_start + length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchmarkFailure("the emulator closed the connection")
            buffer += chunk
        body = buffer[body_start : body_start + length]
        self.buffer = buffer[body_start + length :]
        if not status_line.startswith("HTTP/1.1 200") or not self.expected(body):
            raise BenchmarkFailure(f"unexpected answer: {status_line!r} {body[:200]!r}")
        return body

    def expected(self, body: bytes) -> bool:
        if not self.framed:
            return body == EXPECTED_BODY
        # frames (fastric/emulator/recording.py): the handler's `null` as a D frame, then the R record
        kind, size = FRAME_HEAD.unpack_from(body)
        if kind != b"D" or body[5 : 5 + size] != EXPECTED_BODY:
            return False
        record_kind, record_size = FRAME_HEAD.unpack_from(body, 5 + size)
        record = json.loads(body[10 + size : 10 + size + record_size])
        return record_kind == b"R" and record["status_code"] == 200 and "REPORT RequestId" in record["logs"]

    def close(self) -> None:
        self.sock.close()


def wait_listening(port: int, process: subprocess.Popen, log_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkFailure(f"the emulator exited ({process.returncode}):\n{tail(log_path)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise BenchmarkFailure(f"the emulator did not listen within {START_TIMEOUT} s:\n{tail(log_path)}")


def tail(path: str, size: int = 3000) -> str:
    try:
        return Path(path).read_bytes()[-size:].decode("utf-8", "replace")
    except OSError:
        return ""


def tree_cpu_ns(pids: list[int]) -> int:
    return sum(max(0, procstat.cpu_ns(pid)) for pid in pids)


def harness_spec() -> bytes:
    """The harness's first line (as `fastric.testing.LocalFunction` sends it): the same runtime and task root."""
    env = runtime_environment()
    spec = {
        "command": runtime_command(),
        "handler": HANDLER,
        "task_root": str(TASK_ROOT),
        "env": {"PATH": env.get("PATH", os.defpath), "PYTHONPATH": env["PYTHONPATH"]},
        "timeout": 30,
        "memory": 128,
    }
    return json.dumps(spec).encode() + b"\n"


def start_harness(process: subprocess.Popen, log_path: str) -> int:
    """Send the spec, read the readiness line; the control port."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(harness_spec())
    process.stdin.flush()
    line = process.stdout.readline()
    try:
        ready = json.loads(line)
    except ValueError:
        ready = {}
    if not ready.get("ready"):
        raise BenchmarkFailure(f"the harness did not start: {line!r}\n{tail(log_path)}")
    return int(ready["control_port"])


def measure(target: Target, invokes: int, warmup: int) -> dict:
    port = free_port()
    harness = target.kind == "harness"
    with tempfile.NamedTemporaryFile(prefix="emubench-", suffix=".log", delete=False) as log:
        log_path = log.name
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            target.command(port),
            cwd=str(TASK_ROOT),
            env=runtime_environment(),
            stdin=subprocess.PIPE if harness else subprocess.DEVNULL,
            stdout=subprocess.PIPE if harness else log_file,
            stderr=log_file,
            start_new_session=True,
        )
    try:
        if harness:
            connection = Connection(start_harness(process, log_path), "/invoke")
        else:
            wait_listening(port, process, log_path)
            connection = Connection(port)
        for _ in range(warmup):
            connection.invoke()
        children = procstat.descendants(process.pid)
        emulator_before, runtime_before = procstat.cpu_ns(process.pid), tree_cpu_ns(children)
        began = time.perf_counter()
        for _ in range(invokes):
            connection.invoke()
        elapsed = time.perf_counter() - began
        emulator_cpu = procstat.cpu_ns(process.pid) - emulator_before
        runtime_cpu = tree_cpu_ns(children) - runtime_before
        connection.close()
        if process.poll() is not None:
            raise BenchmarkFailure(f"the emulator exited during the run:\n{tail(log_path)}")
        return {
            "invokes_per_s": invokes / elapsed,
            "round_trip_us": elapsed / invokes * 1e6,
            "emulator_cpu_us": emulator_cpu / invokes / 1e3,
            "runtime_cpu_us": runtime_cpu / invokes / 1e3,
        }
    except BenchmarkFailure as failure:
        raise BenchmarkFailure(f"{target.name}: {failure}\n--- log ---\n{tail(log_path)}") from None
    finally:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()  # the harness's signal to stop
        try:
            os.killpg(process.pid, 15)
        except ProcessLookupError:
            pass
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        os.unlink(log_path)


def find_rie(given: str | None) -> tuple[str | None, str]:
    """The RIE binary, or None and why not."""
    if given:
        return (given, "") if os.access(given, os.X_OK) else (None, f"--rie {given} is not an executable file")
    for name in ("aws-lambda-rie", "aws-lambda-rie-x86_64", "aws-lambda-rie-arm64"):
        found = shutil.which(name)
        if found:
            return found, ""
    return None, (
        "no aws-lambda-rie on PATH (give one with --rie PATH): the RIE's side is skipped; "
        "install it from https://github.com/aws/aws-lambda-runtime-interface-emulator/releases"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invokes", type=int, default=2000, help="measured invokes per run (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="invokes before measuring (default 200)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per emulator, interleaved (default 5)")
    parser.add_argument("--rie", metavar="PATH", help="the aws-lambda-rie binary (default: found on PATH)")
    parser.add_argument(
        "--emulator",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also measure the emulator of the source tree DIR (repeatable)",
    )
    parser.add_argument(
        "--harness",
        action="store_true",
        help="also measure each fastric emulator as fastric.testing drives it (the harness's control port)",
    )
    parser.add_argument("--json", metavar="PATH", help="write every run's figures to PATH")
    args = parser.parse_args(argv)

    targets = [Target("fastric", "fastric")]
    for spec in args.emulator:
        name, _, where = spec.partition("=")
        if not name or not os.path.isdir(os.path.join(where, "fastric", "emulator")):
            parser.error(f"--emulator {spec}: expected NAME=DIR, DIR holding fastric/emulator/")
        targets.append(Target(name, "fastric", os.path.abspath(where)))
    if args.harness:
        targets += [
            Target(f"{target.name} harness", "harness", target.where)
            for target in list(targets)
            if os.path.exists(os.path.join(target.where or str(ROOT), "fastric", "emulator", "harness.py"))
        ]
    rie, why_not = find_rie(args.rie)
    if rie is not None:
        targets.append(Target("rie", "rie", rie))
    else:
        print(f"note: {why_not}", file=sys.stderr)

    runs: dict[str, list[dict]] = {target.name: [] for target in targets}
    for repeat in range(args.repeats):
        order = targets[repeat % len(targets) :] + targets[: repeat % len(targets)]
        for target in order:
            result = measure(target, args.invokes, args.warmup)
            runs[target.name].append(result)
            print(
                f"[{repeat + 1}/{args.repeats}] {target.name:>10}: {result['invokes_per_s']:7.0f}/s  "
                f"{result['round_trip_us']:6.0f} µs  emulator {result['emulator_cpu_us']:6.1f} µs/inv  "
                f"runtime {result['runtime_cpu_us']:6.1f} µs/inv",
                file=sys.stderr,
            )

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    print(
        f"\nsequential tiny invokes, one keep-alive connection, `python -m fastric {HANDLER}` behind each "
        f"({args.invokes} invokes per run, medians of {args.repeats})\n"
    )
    print("| emulator | invokes/s | round trip | emulator CPU/invoke | runtime CPU/invoke | vs RIE |")
    print("|---|---|---|---|---|---|")
    for target in targets:
        versus = "(no RIE)"
        if target.kind == "harness":
            versus = "(control port)"
        elif "rie" in runs and target.name != "rie":
            ratios = [
                a["invokes_per_s"] / b["invokes_per_s"] for a, b in zip(runs[target.name], runs["rie"], strict=True)
            ]
            versus = f"{statistics.median(ratios):.2f}×"
        elif target.name == "rie":
            versus = "1.00×"
        print(
            f"| {target.name} | {median(target.name, 'invokes_per_s'):,.0f}/s | "
            f"{median(target.name, 'round_trip_us'):,.0f} µs | {median(target.name, 'emulator_cpu_us'):,.1f} µs | "
            f"{median(target.name, 'runtime_cpu_us'):,.1f} µs | {versus} |"
        )
    if "rie" not in runs:
        print(f"\nThe RIE was not measured: {why_not}.")
    if args.json:
        Path(args.json).write_text(json.dumps({"invokes": args.invokes, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkFailure as failure:
        print(f"benchmark failed: {failure}", file=sys.stderr)
        sys.exit(1)
