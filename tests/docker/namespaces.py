"""Run a command inside a root directory as a container engine would: its own mount and PID namespaces (and,
for `docker run`, its own network namespace), `/proc` and `/dev` mounted, then `chroot` and a clean environment.

Every mount is made inside a private mount namespace, so the host never sees one and nothing is left mounted
when the process ends; `unshare --kill-child` takes the whole PID namespace down with the process we started.
Needs root (CI and the development machines run as root).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Bind:
    """Bind-mount host `source` at absolute `target` inside the root (which must already exist there)."""

    source: str
    target: str
    readonly: bool = True


def missing_prerequisites() -> str | None:
    """Why commands cannot be run in a root here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (mount and PID namespaces, chroot)"
    for tool in ("unshare", "nsenter", "chroot", "mount", "ip"):
        if not shutil.which(tool):
            return f"needs the `{tool}` command"
    probe = subprocess.run(
        ["unshare", "--mount", "--pid", "--net", "--fork", "--kill-child", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot create namespaces here: {probe.stderr.strip()}"
    return None


def host_path(root: str | Path, path: str) -> str:
    """The host path of absolute `path` inside `root`, following symlinks as the kernel would after chroot(root):
    an absolute link target restarts from `root`, and `..` never climbs above it."""
    pending = [part for part in path.split("/") if part]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(f"too many levels of symbolic links resolving {path!r} in {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p] + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def container_command(
    root: str | Path,
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str = "/",
    user: str | None = None,
    binds: tuple[Bind, ...] = (),
    readonly_root: bool = False,
    tmpfs_tmp: bool = False,
    own_network: bool = False,
) -> list[str]:
    """The host command that runs `argv` in `root` with exactly `env`, in `cwd`, as `user` ("uid:gid").

    `readonly_root` and `tmpfs_tmp` reproduce Lambda's sandbox (read-only file system, writable /tmp);
    `own_network` gives the process a network namespace with only a loopback interface, as `docker run` does.
    """
    root = str(root)
    steps = ["set -eu"]
    if readonly_root:
        steps += [f"mount --bind {_q(root)} {_q(root)}", f"mount -o remount,bind,ro {_q(root)}"]
    steps += [f"mount -t proc proc {_q(host_path(root, '/proc'))}", f"mount --rbind /dev {_q(host_path(root, '/dev'))}"]
    if tmpfs_tmp:
        steps.append(f"mount -t tmpfs -o mode=1777 tmpfs {_q(host_path(root, '/tmp'))}")
    for bind in binds:
        target = _q(host_path(root, bind.target))
        steps.append(f"mount --bind {_q(bind.source)} {target}")
        if bind.readonly:
            steps.append(f"mount -o remount,bind,ro {target}")
    if own_network:
        steps.append("ip link set lo up")
    chroot = ["chroot"] + ([f"--userspec={user}"] if user else []) + [root]
    inner = ["/usr/bin/env", "-i", "-C", cwd] + [f"{key}={value}" for key, value in env.items()] + list(argv)
    steps.append("exec " + " ".join(_q(word) for word in chroot + inner))
    unshare = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child"]
    if own_network:
        unshare.append("--net")
    return unshare + ["--", "/bin/sh", "-c", "\n".join(steps)]


def network_namespace_command(argv: list[str]) -> list[str]:
    """The host command that runs `argv` (no chroot) in its own network namespace with only loopback up, so a
    server it starts on 0.0.0.0:8080 collides with nothing on the host."""
    return [
        "unshare",
        "--net",
        "--fork",
        "--kill-child",
        "--",
        "/bin/sh",
        "-c",
        'ip link set lo up && exec "$@"',
        "sh",
        *argv,
    ]


def _q(word: str) -> str:
    return shlex.quote(word)


class ContainerProcess:
    """A command started with `container_command` or `network_namespace_command`, its output going to files
    under `log_dir`."""

    def __init__(
        self,
        command: list[str],
        log_dir: Path,
        name: str,
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ):
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)

    def init_pid(self, timeout: float = 10.0) -> int:
        """The host PID of the namespace's PID 1 (the entrypoint, once it has exec'd)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pids = children.read_text().split()
            except FileNotFoundError:
                pids = []
            if pids:
                return int(pids[0])
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"the container's PID 1 never appeared\n{self.output()}")

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Kill the process we started; `--kill-child` then ends everything in its PID namespace."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def output(self) -> str:
        return (
            f"stdout:\n{self.stdout_path.read_text(errors='replace')}\n"
            f"stderr:\n{self.stderr_path.read_text(errors='replace')}"
        )

    def __enter__(self) -> ContainerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_HTTP_CLIENT = r"""
import json, sys, time, urllib.error, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
body = sys.stdin.buffer.read()
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=timeout) as r:
            status, headers, data = r.status, dict(r.headers), r.read()
        break
    except urllib.error.HTTPError as e:
        status, headers, data = e.code, dict(e.headers), e.read()
        break
    except (ConnectionError, urllib.error.URLError) as e:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
json.dump({"status": status, "headers": headers, "body": data.decode("utf-8", "replace")}, sys.stdout)
"""


def post_in_network_of(pid: int, url: str, body: bytes, timeout: float = 20.0) -> dict:
    """POST `body` to `url` from inside the network namespace of `pid`, retrying until the server accepts the
    connection; returns {"status", "headers", "body"}."""
    result = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "--", sys.executable, "-c", _HTTP_CLIENT, url, str(timeout)],
        input=body,
        capture_output=True,
        timeout=timeout + 10,
    )
    if result.returncode != 0:
        raise AssertionError(f"POST {url} failed: {result.stderr.decode(errors='replace')}")
    return json.loads(result.stdout)
