""".ci/run finds every Python that Lambda runs without fixed paths: `$(pyenv root)/versions/3.X.*` (the newest patch
release first), else `python3.X` on PATH, and only an interpreter that says it is 3.X (a pyenv shim answers for
versions it cannot run). The function is taken from the script itself and run against made-up interpreters."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "run"


def find_python(version: str, root: Path, path: Path) -> str:
    function = re.search(r"^find_python\(\) \{.*?^\}$", SCRIPT.read_text(), re.S | re.M)
    assert function, "find_python is gone from .ci/run"
    env = {"PATH": f"{path}:/usr/bin:/bin", "PYENV_ROOT": str(root), "HOME": str(root)}
    done = subprocess.run(
        ["bash", "-c", function.group(0) + '\nfind_python "$1"', "find", version],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def interpreter(path: Path, says: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {says}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def machine(tmp_path: Path) -> tuple[Path, Path]:
    root, bin_dir = tmp_path / "pyenv", tmp_path / "bin"
    bin_dir.mkdir()
    (root / "versions").mkdir(parents=True)
    return root, bin_dir


def test_the_newest_patch_release_under_pyenv_root(machine):
    root, bin_dir = machine
    interpreter(root / "versions/3.12.9/bin/python3", "3.12")
    newest = interpreter(root / "versions/3.12.10/bin/python3", "3.12")
    interpreter(root / "versions/3.1.5/bin/python3", "3.1")
    assert find_python("3.12", root, bin_dir) == str(newest)


def test_an_interpreter_that_is_not_the_version_is_passed_over(machine):
    root, bin_dir = machine
    interpreter(root / "versions/3.13.1/bin/python3", "3.11")  # a broken install, or a shim for another version
    on_path = interpreter(bin_dir / "python3.13", "3.13")
    assert find_python("3.13", root, bin_dir) == str(on_path)


def test_python3x_on_path_when_pyenv_has_none(machine):
    root, bin_dir = machine
    on_path = interpreter(bin_dir / "python3.10", "3.10")
    assert find_python("3.10", root, bin_dir) == str(on_path)


def test_nothing_when_the_version_is_missing(machine):
    root, bin_dir = machine
    interpreter(root / "versions/3.12.1/bin/python3", "3.12")
    assert find_python("3.42", root, bin_dir) == ""


def test_a_missing_python_fails_ci_unless_allowed():
    text = SCRIPT.read_text()
    assert 'CI_ALLOW_MISSING_PYTHON:-0}" = "1"' in text and "failed=1" in text
    assert os.access(SCRIPT, os.X_OK)
