"""The documentation against the code: the README stays a front page that keeps its two commands, its links into
the site resolve, and the reference page (docs/reference.md) names every CLI option (from each command's own
`--help`) and every environment variable fastric reads (from the sources). `mkdocs build --strict` (CI, the `docs`
extra) checks the site's own links and anchors."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastric

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(fastric.__file__).resolve().parent
README = (REPO / "README.md").read_text()
REFERENCE = (REPO / "docs" / "reference.md").read_text()

# The README's two commands, verbatim: the Quick start's first block, and the test command (also run by .ci/run).
QUICK_START = (
    "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/fastric invoke --task-root examples app.handler"
    """ --event '{"queryStringParameters":{"foo":"bar"}}'"""
)
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test,bench]' && .venv/bin/python -m pytest"


def sh_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)]


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 250


def test_readme_starts_with_its_two_commands():
    assert README.index("## Quick start") < README.index("```sh")
    assert sh_blocks(README)[:2] == [QUICK_START, TEST_COMMAND]
    assert TEST_COMMAND in (REPO / ".ci" / "run").read_text()
    # the site's home page is the README itself (docs/hooks/readme.py); Getting started repeats the two commands
    assert sh_blocks((REPO / "docs" / "getting-started.md").read_text())[:2] == [QUICK_START, TEST_COMMAND]


def test_readme_links_resolve():
    targets = re.findall(r"\]\(((?!https?:|#)[^)#\s]+)(?:#[^)]*)?\)", README)
    assert "benchmarks/compare.svg" in targets
    assert [target for target in targets if not (REPO / target).exists()] == []


def test_the_site_shows_the_benchmarks_chart():
    """docs/assets/compare.svg is a link to the chart compare.py writes, so the site never shows a stale copy."""
    chart = REPO / "docs" / "assets" / "compare.svg"
    assert chart.is_symlink() and chart.resolve() == (REPO / "benchmarks" / "compare.svg").resolve()
    assert "](assets/compare.svg)" in (REPO / "docs" / "benchmarks.md").read_text()


# -- the reference: every CLI option --------------------------------------------------------------------------------
def help_text(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("_HANDLER", "AWS_LAMBDA_RUNTIME_API")}
    result = subprocess.run(
        [sys.executable, "-m", "fastric", *args, "--help"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def argparse_options(text: str) -> set[str]:
    """The option strings argparse lists: `  -o PATH, --output PATH   help…` gives -o and --output."""
    options = set()
    for line in text.splitlines():
        match = re.match(r"^ {2}(-\S.*?)(?: {2,}|$)", line)
        if match:
            options.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", match.group(1)))
    return options


def documented(name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", REFERENCE) is not None


@pytest.mark.parametrize("command", [("emulate",), ("invoke",), ("layer", "build")], ids=" ".join)
def test_every_option_is_in_the_reference(command):
    options = argparse_options(help_text(*command))
    assert {"-h", "--help"} <= options and len(options) > 3  # the parse found the options
    assert f"fastric {' '.join(command)}" in REFERENCE
    assert sorted(option for option in options if not documented(option)) == []


def test_every_form_of_the_fastric_command_is_in_the_reference():
    usage = help_text()
    forms = re.findall(r"^(?:usage:)?\s+(fastric [^\n]*?)(?: {2,}|$)", usage, re.M)
    assert len(forms) >= 6
    options = {option for form in forms for option in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", form)}
    assert {"-V", "--version", "-h", "--help"} <= options
    assert sorted(option for option in options if not documented(option)) == []
    words = {form.split()[1] for form in forms if not form.split()[1].startswith("-")}
    assert {"run", "emulate", "invoke", "layer"} <= words
    assert sorted(word for word in words if word != "HANDLER" and f"fastric {word}" not in REFERENCE) == []


# -- the reference: every environment variable ----------------------------------------------------------------------
VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*[A-Z0-9]$")
LAMBDA_LIKE = re.compile(r"^(AWS_|_AWS_|LAMBDA_|_LAMBDA_|FASTRIC_|_X_AMZN_|_HANDLER$|TZ$)")
SHELL_ONLY = {"PWD"}  # the shell's own


def variables_in_python(path: Path) -> set[str]:
    """Names read through `os.environ` / `getenv` (any name), and every Lambda-like name the code spells out
    (a variable read through a helper, or passed on to the bootstrap, is one of those)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if VARIABLE.match(node.value) and LAMBDA_LIKE.match(node.value):
                names.add(node.value)
        elif isinstance(node, ast.Call) and node.args and re.search(r"environ|getenv|base_env", ast.unparse(node.func)):
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and VARIABLE.match(first.value):
                names.add(first.value)
        elif isinstance(node, ast.Subscript) and re.search(r"environ", ast.unparse(node.value)):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and VARIABLE.match(key.value):
                names.add(key.value)
    return names


def variables_in_shell(path: Path) -> set[str]:
    return set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", path.read_text())) - SHELL_ONLY


def fastric_variables() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        names |= variables_in_python(path)
    for path in [*PACKAGE.rglob("*.sh"), PACKAGE / "layer" / "fastric-wrapper"]:
        names |= variables_in_shell(path)
    return names


def test_every_environment_variable_is_in_the_reference():
    names = fastric_variables()
    for known in ("AWS_LAMBDA_RUNTIME_API", "FASTRIC_WORKERS", "FASTRIC_PIPELINING", "FASTRIC_NEXT_WRAPPER"):
        assert known in names  # the scan finds the variables
    assert sorted(name for name in names if not documented(name)) == []


def test_the_scan_finds_each_kind_of_read(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom os import environ\n"
        "a = os.environ.get('PLAIN_GET')\nb = os.getenv('GETENV')\nc = environ['SUBSCRIPT']\n"
        "d = os.environ.pop('_LAMBDA_POPPED', None)\ne = _setting(None, 'AWS_THROUGH_A_HELPER', int, 1)\n"
        "f = 'not a variable'.startswith('cn-')\n"
    )
    assert variables_in_python(source) == {"PLAIN_GET", "GETENV", "SUBSCRIPT", "_LAMBDA_POPPED", "AWS_THROUGH_A_HELPER"}
    script = tmp_path / "s.sh"
    script.write_text('x="${FASTRIC_X-}" y="$PWD/$lower" z=$HOSTTYPE\n')
    assert variables_in_shell(script) == {"FASTRIC_X", "HOSTTYPE"}
