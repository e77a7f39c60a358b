"""fastric's dependencies as wheels for a target runtime: `pip download` (binary only) and a minimal wheel install."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

from fastric.layer.target import Target


class BuildError(Exception):
    """The layer cannot be built; the message says why."""


def dependencies() -> list[str]:
    """fastric's runtime requirements (`uvloop>=0.19`, ...), from its installed metadata."""
    try:
        requires = metadata.requires("fastric") or []
    except metadata.PackageNotFoundError:
        raise BuildError(
            "fastric's metadata is not installed: install it (pip install -e .) to build a layer"
        ) from None
    return [requirement for requirement in requires if "extra ==" not in requirement]


def download(target: Target, requirements: list[str], dest: Path) -> list[Path]:
    """Download the wheels of `requirements` (and their dependencies) for `target` into `dest`; nothing is built."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input"]
    command += ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python]
    command += ["--abi", target.abi, "--dest", str(dest)]
    for platform in target.platforms():
        command += ["--platform", platform]
    run = subprocess.run([*command, *requirements], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        errors = [line for line in run.stderr.splitlines() if not line.startswith("WARNING:")]
        detail = "\n".join(errors[-5:]) or f"exit status {run.returncode}"
        raise BuildError(f"pip download of the {target.runtime} {target.arch} wheels failed:\n{detail}")
    return sorted(dest.glob("*.whl"))


def install(wheel: Path, site: Path) -> None:
    """Unpack `wheel` into the directory `site`, as pip installs a wheel's importable files.

    `*.data/purelib` and `*.data/platlib` go to `site`; scripts, headers and data files are left out (a layer
    imports packages and runs no console scripts).
    """
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if not parts or info.is_dir():
                continue
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            if ".." in parts or parts[0].startswith("/"):
                raise BuildError(f"{wheel.name}: unsafe path {info.filename!r}")
            path = site.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(info))
