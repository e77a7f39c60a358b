"""The package's shape, as docs/architecture.md describes it: no import cycles (lazy imports included), the runtime
and the emulator never import each other, and `import fastric` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fastric

PACKAGE = Path(fastric.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every fastric module `path` imports, at module level or inside functions (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(), str(path))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("fastric."):
            found.add(node.value)  # a module named in a string: a lazy import table (`fastric/__init__.py`)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                walk(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)


def test_runtime_and_emulator_never_import_each_other():
    for name, targets in graph().items():
        if name.startswith("fastric.runtime"):
            assert not [t for t in targets if t.startswith("fastric.emulator")], name
        if name.startswith("fastric.emulator"):
            assert not [t for t in targets if t.startswith("fastric.runtime")], name


def test_the_graph_sees_lazy_imports():
    assert "fastric.runtime.lifecycle" in graph()["fastric"]
    # the start-up module imports the chosen loop lazily; the scan must see that edge
    startup = graph()["fastric.runtime.startup"]
    assert {"fastric.runtime.loop", "fastric.runtime.aioloop", "fastric.runtime.workers"} <= startup


def test_import_fastric_loads_neither_side():
    code = (
        "import sys, fastric; "
        "heavy = [m for m in sys.modules if m.startswith(('fastric.runtime', 'fastric.emulator')) "
        "or m in ('orjson', 'httptools', 'uvloop', 'asyncio')]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_merge_conflict_markers_in_the_repository():
    root = PACKAGE.parent
    listed = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=False).stdout.split()
    files = [root / name for name in listed] or [p for p in root.rglob("*.md") if ".venv" not in p.parts]
    marked = []
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if any(line.startswith(("<<<<<<< ", ">>>>>>> ")) for line in text.splitlines()):
            marked.append(str(path.relative_to(root)))
    assert marked == []
