"""What a layer is built for: a managed runtime's Python version and a Lambda architecture."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass

PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's name: the machine's (`uname -m`)
WRAPPER_PATH = "/opt/fastric-wrapper"


@dataclass(frozen=True)
class Target:
    """A managed Python runtime (`python3.12`) on one architecture (`x86_64` or `arm64`)."""

    python: str
    arch: str

    def __post_init__(self) -> None:
        if self.python not in PYTHONS:
            raise ValueError(
                f"Python {self.python} has no managed Lambda runtime fastric supports ({', '.join(PYTHONS)})"
            )
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"architecture {self.arch!r} is not one of Lambda's ({', '.join(ARCHITECTURES)})")

    @property
    def runtime(self) -> str:
        """The Lambda runtime identifier, e.g. `python3.12`."""
        return f"python{self.python}"

    @property
    def machine(self) -> str:
        """The architecture as `uname -m` names it on Lambda: `x86_64` or `aarch64`."""
        return ARCHITECTURES[self.arch]

    @property
    def abi(self) -> str:
        """The CPython ABI tag of the runtime's interpreter, e.g. `cp312`."""
        return "cp" + self.python.replace(".", "")

    @property
    def glibc(self) -> int:
        """The minor version of the runtime's glibc 2.x: Amazon Linux 2 (2.26) up to python3.11, AL2023 (2.34) after."""
        return 26 if self.python in ("3.10", "3.11") else 34

    def platforms(self) -> list[str]:
        """pip `--platform` tags of wheels that load on the runtime: every manylinux up to its glibc, newest first."""
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in range(self.glibc, 16, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    def marker(self) -> str:
        """The line the wrapper compares with its interpreter and machine: `X.Y MACHINE`."""
        return f"{self.python} {self.machine}\n"

    def zip_name(self) -> str:
        return f"fastric-layer-{self.runtime}-{self.arch}.zip"


def running_python() -> str:
    """The running interpreter's version, `X.Y`."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def running_arch() -> str | None:
    """The running machine's Lambda architecture name, or None if Lambda has no such architecture."""
    machine = platform.machine().lower()
    for arch, uname in ARCHITECTURES.items():
        if machine in (arch, uname):
            return arch
    return None
