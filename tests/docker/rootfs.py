"""Make the root file system of a `python:X.Y-slim-RELEASE` base image without a container engine.

The official image is Debian `RELEASE` (a minimal debootstrap, plus ca-certificates, netbase, tzdata and the shared
libraries CPython's extension modules link to) with CPython X.Y built from source and installed under /usr/local,
and pip. Here: `debootstrap --variant=minbase` of the same release with those packages, then a CPython X.Y build
from this machine (pyenv's, also built from source against the same Debian libraries) copied to /usr/local without
its site-packages, `ldconfig`, and pip from that CPython's own `ensurepip`. The result is checked by importing the
extension modules a slim image has.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from namespaces import container_command

# The packages python:*-slim-bookworm keeps besides minbase: its own three, and those providing the shared
# libraries of CPython's extension modules (tkinter aside), as its Dockerfile computes with ldd + dpkg.
SLIM_PACKAGES = {
    "bookworm": [
        "ca-certificates",
        "netbase",
        "tzdata",
        "libffi8",
        "libssl3",
        "libsqlite3-0",
        "libncursesw6",
        "libreadline8",
        "libuuid1",
        "libnsl2",
        "libgssapi-krb5-2",
        "libbz2-1.0",
        "liblzma5",
        "zlib1g",
        "libexpat1",
        "libgdbm6",
        "libdb5.3",
    ],
}

IMPORT_CHECK = "import bz2, ctypes, curses, dbm, hashlib, lzma, readline, sqlite3, ssl, uuid, zlib"


@dataclass
class BaseImage:
    """What a `FROM python:X.Y-slim-RELEASE` starts from: a root directory and the image's configuration."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)


def parse_python_slim(reference: str) -> tuple[str, str]:
    """`python:3.12-slim-bookworm` (optionally `docker.io/library/`-prefixed) → ("3.12", "bookworm")."""
    match = re.fullmatch(r"(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)(?:\.\d+)?-slim-([a-z]+)", reference)
    if not match:
        raise ValueError(f"{reference!r} is not a python:X.Y-slim-RELEASE image; this test can only make those")
    return match.group(1), match.group(2)


def find_cpython(version: str) -> Path | None:
    """The prefix of a CPython `version` (X.Y) built from source on this machine (pyenv), newest patch first."""
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = sorted(
        glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*")),
        key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"[.]", os.path.basename(p))],
        reverse=True,
    )
    for prefix in candidates:
        if re.fullmatch(rf"{re.escape(version)}\.\d+", os.path.basename(prefix)) and os.path.exists(
            os.path.join(prefix, "bin", f"python{version}")
        ):
            return Path(prefix)
    return None


def host_debian_mirror() -> str | None:
    """The Debian mirror this machine's apt uses (so the test reaches the same registry), or None."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        text = Path(path).read_text()
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and any(not s.endswith("-security") for s in suites.group(1).split()):
                return uris.group(1)
    if os.path.exists("/etc/apt/sources.list"):
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            match = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
            if match and not match.group(1).rstrip("/").endswith("-security"):
                return match.group(1)
    return None


def make_python_slim(reference: str, dest: Path, *, cache_dir: Path | None = None) -> BaseImage:
    """Build the root of `reference` (python:X.Y-slim-RELEASE) at `dest`; reuse a tarball in `cache_dir` if any."""
    version, release = parse_python_slim(reference)
    if release not in SLIM_PACKAGES:
        raise ValueError(f"no package list for Debian {release!r}: add one to SLIM_PACKAGES")
    cpython = find_cpython(version)
    if cpython is None:
        raise FileNotFoundError(f"no CPython {version} built from source on this machine (pyenv install {version})")
    image = BaseImage(
        dest,
        env={
            "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "PYTHON_VERSION": cpython.name,
        },
        cmd=["python3"],
    )
    cached = cache_dir / f"python-{cpython.name}-slim-{release}.tar" if cache_dir else None
    if cached and cached.exists():
        dest.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(dest), "--numeric-owner", "-xpf", str(cached)], check=True)
        return image
    _debootstrap(release, dest)
    _install_cpython(cpython, version, image)
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-C", str(dest), "--numeric-owner", "-cf", str(cached), "."], check=True)
    return image


def _debootstrap(release: str, dest: Path) -> None:
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(SLIM_PACKAGES[release])}", release, str(dest)]
    mirror = host_debian_mirror()
    if mirror:
        command.append(mirror)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        log = dest / "debootstrap" / "debootstrap.log"
        detail = log.read_text()[-3000:] if log.exists() else result.stdout[-3000:]
        raise RuntimeError(f"debootstrap failed ({result.returncode}): {result.stderr}\n{detail}")
    for leftover in (dest / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    shutil.rmtree(dest / "var/lib/apt/lists", ignore_errors=True)
    (dest / "var/lib/apt/lists/partial").mkdir(parents=True)


def _install_cpython(cpython: Path, version: str, image: BaseImage) -> None:
    local = image.root / "usr/local"
    site_packages = f"./lib/python{version}/site-packages"
    # What the official image deletes after its build: test suites, bytecode and the static library.
    pruned = ["test", "tests", "idle_test", "*.pyc", "*.pyo", "libpython*.a"]
    pack = subprocess.Popen(
        [
            "tar",
            "-C",
            str(cpython),
            f"--exclude={site_packages}/*",
            "--exclude=./bin/pip*",
            *(f"--exclude={name}" for name in pruned),
            "-cf",
            "-",
            ".",
        ],
        stdout=subprocess.PIPE,
    )
    subprocess.run(["tar", "-C", str(local), "--no-same-owner", "-xf", "-"], stdin=pack.stdout, check=True)
    pack.stdout.close()
    if pack.wait() != 0:
        raise RuntimeError(f"copying {cpython} failed")
    env = dict(image.env, HOME="/root")
    script = f"ldconfig && python3 -m ensurepip --default-pip && python3 -c '{IMPORT_CHECK}'"
    result = subprocess.run(
        container_command(image.root, ["/bin/sh", "-c", script], env=env), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"setting up CPython in the root failed:\n{result.stdout}\n{result.stderr}")
