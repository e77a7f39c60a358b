"""Assemble a fastric layer zip: `python/` (fastric and its dependencies for the target) and the wrapper at the root."""

from __future__ import annotations

import compileall
import contextlib
import io
import os
import py_compile
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import fastric
from fastric.layer.target import Target, running_python
from fastric.layer.wheels import dependencies, download, install

WRAPPER = "fastric-wrapper"  # at the layer's root: /opt/fastric-wrapper
MARKER = "fastric-layer.target"  # in python/: the "X.Y MACHINE" the wrapper checks its interpreter against
ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same zip (and the same CodeSha256)
LAMBDA_SITE = "/opt/python"  # where python/ lands on Lambda: the source path recorded in the .pyc files


@dataclass
class Layer:
    """A built layer zip and what it holds."""

    path: Path
    target: Target
    size: int  # bytes of the zip
    unpacked_size: int  # bytes once unpacked (Lambda's 250 MB limit counts the function and all its layers)
    packages: list[str]  # "name version", sorted
    bytecode_note: str | None  # why the layer has no precompiled bytecode; None when it has


def build(target: Target, output: Path) -> Layer:
    """Build the layer for `target` and write it to `output`."""
    with tempfile.TemporaryDirectory(prefix="fastric-layer-") as tmp:
        root = Path(tmp, "layer")
        site = root / "python"
        site.mkdir(parents=True)
        wheels = Path(tmp, "wheels")
        for wheel in download(target, dependencies(), wheels):
            install(wheel, site)
        copy_fastric(site)
        (site / MARKER).write_text(target.marker())
        shutil.copyfile(Path(__file__).with_name(WRAPPER), root / WRAPPER)
        note = byte_compile(site, target)
        unpacked = sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
        write_zip(root, output)
        packages = sorted(" ".join(path.name[: -len(".dist-info")].split("-", 1)) for path in site.glob("*.dist-info"))
    return Layer(output, target, output.stat().st_size, unpacked, packages, note)


def copy_fastric(site: Path) -> None:
    """Copy the running fastric package (a checkout or an installed wheel alike) into `site`, with its metadata."""
    shutil.copytree(
        Path(fastric.__file__).parent, site / "fastric", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    dist_info = site / f"fastric-{fastric.__version__}.dist-info"
    dist_info.mkdir()
    requires = "".join(f"Requires-Dist: {requirement}\n" for requirement in dependencies())
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fastric\nVersion: {fastric.__version__}\n{requires}"
    )
    (dist_info / "INSTALLER").write_text("fastric layer build\n")


def byte_compile(site: Path, target: Target) -> str | None:
    """Precompile `site` for the target's Python; return why not, if it could not be done.

    Lambda unpacks layers read-only, so without `.pyc` files every cold start compiles the modules again. The
    `.pyc` files are unchecked-hash ones: valid whatever modification times the unpacked sources get.
    """
    if running_python() == target.python and sys.implementation.name == "cpython":
        report = io.StringIO()
        with contextlib.redirect_stdout(report):  # compileall prints each failure (quiet=1: failures only)
            ok = compileall.compile_dir(
                site, ddir=LAMBDA_SITE, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
        if ok:
            return None
        return f"some modules did not compile ({_why(report.getvalue())}); those compile at every cold start"
    interpreter = shutil.which(target.runtime)
    if interpreter is None:
        return (
            f"no {target.runtime} on PATH to precompile with: the modules compile at every cold start "
            f"(rebuild with {target.runtime} installed for a faster init)"
        )
    command = [interpreter, "-m", "compileall", "-qq", "-d", LAMBDA_SITE, "--invalidation-mode", "unchecked-hash"]
    command.append(str(site))
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        return (
            f"{interpreter} -m compileall failed ({_why(result.stdout + result.stderr)}): "
            "the modules compile at every cold start"
        )
    return None


def _why(output: str, lines: int = 3) -> str:
    """The gist of compileall's output: its last few non-empty lines, on one line."""
    found = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("Listing ")]
    if not found:
        return "no reason given"
    named = [line for line in found if line.startswith("***")][:lines]  # "*** Error compiling 'PATH'..."
    return " / ".join([*named, *[line for line in found[-1:] if line not in named]])


def write_zip(root: Path, output: Path) -> None:
    """Zip the tree under `root` into `output`: readable by everyone, the wrapper executable, fixed timestamps."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root).as_posix()
            if path.is_dir():
                info = zipfile.ZipInfo(name + "/", ZIP_DATE)
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # 0x10: the MS-DOS directory flag
                archive.writestr(info, b"")
                continue
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.external_attr = (stat.S_IFREG | (0o755 if name == WRAPPER else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix: unzip applies the modes above
            archive.writestr(info, path.read_bytes())
    os.replace(partial, output)
