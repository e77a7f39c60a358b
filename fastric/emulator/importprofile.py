"""`--import-profile`: where a Python function's init time went, from the interpreter's own import timing.

The bootstrap runs with `PYTHONPROFILEIMPORTTIME=1` (`-X importtime`): CPython then writes one line per
module it imports to stderr, `import time: SELF_US | CUMULATIVE_US | <2 spaces per level>NAME`, in the
order the imports end (children before their parent). The emulator takes these lines out of the function's
output (they never reach its log stream, the console or the Telemetry API) and builds the import tree.

Runtimes import the handler module with `importlib.import_module`, which CPython does not time: the handler
module has no line of its own, and the modules it imports are top-level entries. They are told apart from
the runtime's own by the bootstrap's package (`python -m fastric`, `python -m awslambdaric`, any
`python -m PACKAGE`): the handler's imports are the top-level entries after the runtime's first one that are
not the runtime's. For any other Python bootstrap every import after interpreter start-up is counted, and
the profile says so. A bootstrap that writes no import timing is not Python (or not one that inherits the
environment): the profile is then only a message.

Pure code: no I/O, nothing but the standard library.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

ENVIRONMENT = {"PYTHONPROFILEIMPORTTIME": "1"}
PREFIX = "import time:"
TOP = 15
LINE = re.compile(r"import time:\s*(\d+) \|\s*(\d+) \| ( *)(\S.*)")
STARTUP_LAST = ("site", "runpy")  # the interpreter's start-up imports end with these (runpy for `-m`)
NOT_PYTHON = (
    "no import timing from the bootstrap ({command}): --import-profile reads CPython's -X importtime output, "
    "so it needs a Python bootstrap that keeps the environment it is given"
)


@dataclass
class ImportTime:
    """One module's import: the time spent in it alone (`self_ms`) and with its own imports (`cumulative_ms`).

    `depth` is 0 for a module the handler module imported itself, 1 for one that module imported, and so on.
    """

    module: str
    cumulative_ms: float
    self_ms: float
    depth: int = 0

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass
class ImportProfile:
    """The slowest imports of the handler module (at most 15, by cumulative time) and their total."""

    total_ms: float = 0.0  # every import the handler module made, its own children included
    imports: list[ImportTime] = field(default_factory=list)
    count: int = 0  # modules the handler module imported, directly or not
    init_duration_ms: float | None = None
    handler: str | None = None
    scope: str = "handler"  # "handler", or "bootstrap" when the handler's imports could not be told apart
    message: str | None = None  # why there is no profile (a bootstrap that is not Python)
    first_invoke_ms: float = 0.0  # imports of the handler's during its first invocation (lazy ones), not in init

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_ms": self.total_ms,
            "imports": [vars(item) for item in self.imports],
            "count": self.count,
            "init_duration_ms": self.init_duration_ms,
            "handler": self.handler,
            "scope": self.scope,
            "message": self.message,
            "first_invoke_ms": self.first_invoke_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportProfile:
        fields = dict(data)
        fields["imports"] = [ImportTime(**item) for item in data.get("imports", ())]
        return cls(**fields)

    def lines(self) -> list[str]:
        """The profile as printed beside the REPORT line."""
        init = "" if self.init_duration_ms is None else f" (Init Duration: {self.init_duration_ms:.2f} ms)"
        if self.message:
            return [f"import profile: {self.message}{init}"]
        whose = f"handler {self.handler}" if self.scope == "handler" else "the bootstrap (all its imports)"
        later = f"; {self.first_invoke_ms:.2f} ms more during the first invocation" if self.first_invoke_ms else ""
        if not self.imports:
            return [f"import profile of {whose}: no module imported during the init but the runtime's{init}{later}"]
        head = (
            f"import profile of {whose}: {self.total_ms:.2f} ms importing {self.count} modules during the "
            f"init{init}{later}; the {len(self.imports)} slowest:"
        )
        rows = [f"  {'cumulative':>10}  {'self':>8}  module (ms)"]
        rows += [f"  {item.cumulative_ms:10.2f}  {item.self_ms:8.2f}  {item.module}" for item in self.imports]
        return [head, *rows]

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class _Node:
    name: str
    self_us: int
    cumulative_us: int
    children: list[_Node] = field(default_factory=list)


class ImportTimes:
    """Collects one bootstrap process's import-timing lines (`take` is the log capture's divert hook)."""

    def __init__(self) -> None:
        self.roots: list[_Node] = []
        self.init_roots: int | None = None  # how many of `roots` the init made (None: init not over yet)
        self.seen = False
        self._pending: dict[int, list[_Node]] = {}

    def take(self, line: str) -> bool:
        """Whether `line` is import timing (then it is kept here and out of the function's output)."""
        if not line.startswith(PREFIX):
            return False
        self.seen = True
        match = LINE.fullmatch(line.rstrip())
        if match is None:  # the header line, `import time: self [us] | cumulative | imported package`
            return True
        level = len(match.group(3)) // 2
        node = _Node(match.group(4), int(match.group(1)), int(match.group(2)), self._pending.pop(level + 1, []))
        if level == 0:
            self.roots.append(node)
        else:
            self._pending.setdefault(level, []).append(node)
        return True

    def end_init(self) -> None:
        """The runtime called `/next`: the top-level imports from here on belong to invocations."""
        if self.init_roots is None:
            self.init_roots = len(self.roots)

    def profile(
        self, command: list[str], handler: str | None, init_duration_ms: float | None = None, top: int = TOP
    ) -> ImportProfile:
        """The profile of the handler module's imports (see the module docstring)."""
        init_ms = None if init_duration_ms is None else round(init_duration_ms, 2)
        result = ImportProfile(init_duration_ms=init_ms, handler=handler)
        if not self.seen:
            result.message = NOT_PYTHON.format(command=" ".join(command))
            return result
        package = runtime_package(command)
        split = len(self.roots) if self.init_roots is None else self.init_roots
        init, later = self.roots[:split], self.roots[split:]
        if package is not None and handler:
            roots = handler_roots(init, package)
            later = [root for root in later if root.name.split(".")[0] != package]
        else:
            roots, result.scope = after_startup(init), "bootstrap"
        result.first_invoke_ms = round(sum(root.cumulative_us for root in later) / 1000, 3)
        flat = list(_walk(roots, 0))
        flat.sort(key=lambda item: item.cumulative_ms, reverse=True)
        result.total_ms = round(sum(root.cumulative_us for root in roots) / 1000, 3)
        result.count = len(flat)
        result.imports = flat[:top]
        return result


def runtime_package(command: list[str]) -> str | None:
    """The top-level package of a `python ... -m PACKAGE` bootstrap; None for any other command."""
    if len(command) < 3 or not os.path.basename(command[0]).startswith("python"):
        return None
    for index, word in enumerate(command[1:-1], start=1):
        if word == "-m":
            return command[index + 1].split(".")[0]
    return None


def handler_roots(roots: list[_Node], package: str) -> list[_Node]:
    """The top-level imports after the runtime package's first one that are not the runtime's own."""
    started = False
    found: list[_Node] = []
    for root in roots:
        own = root.name.split(".")[0] == package
        started = started or own
        if started and not own:
            found.append(root)
    return found


def after_startup(roots: list[_Node]) -> list[_Node]:
    """The top-level imports after the interpreter's start-up ones."""
    last = max((index for index, root in enumerate(roots) if root.name in STARTUP_LAST), default=-1)
    return roots[last + 1 :]


def _walk(nodes: list[_Node], depth: int):
    for node in nodes:
        yield ImportTime(node.name, node.cumulative_us / 1000, node.self_us / 1000, depth)
        yield from _walk(node.children, depth + 1)
