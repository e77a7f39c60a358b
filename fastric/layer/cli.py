"""`fastric layer build`: build the layer zip and print how to apply it to a function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastric.layer.builder import Layer, build
from fastric.layer.target import ARCHITECTURES, PYTHONS, WRAPPER_PATH, Target, running_python
from fastric.layer.wheels import BuildError


def main(argv: list[str]) -> int:
    """`fastric layer build [--python X.Y] [--arch x86_64|arm64] [-o PATH]`; exit 0, 1 on failure, 2 on bad usage."""
    if not argv:
        _parser().print_usage(sys.stderr)
        sys.stderr.write("fastric layer: say what to do: `fastric layer build` (fastric layer build --help)\n")
        return 2
    args = _parser().parse_args(argv)
    try:
        target = Target(args.python, args.arch)
    except ValueError as error:
        sys.stderr.write(f"fastric layer build: {error}\n")
        return 2
    output = args.output or Path(target.zip_name())
    try:
        layer = build(target, output)
    except BuildError as error:
        sys.stderr.write(f"fastric layer build: {error}\n")
        return 1
    sys.stdout.write(summary(layer))
    return 0


def summary(layer: Layer) -> str:
    """What was built, and the two settings that put it to work."""
    target = layer.target
    lines = [
        f"{layer.path}: {_mb(layer.size)} ({_mb(layer.unpacked_size)} unpacked), for {target.runtime} on {target.arch}",
        f"  {', '.join(layer.packages)}",
    ]
    if layer.bytecode_note:
        lines.append(f"  note: {layer.bytecode_note}")
    lines += [
        "Publish it:",
        f"  aws lambda publish-layer-version --layer-name fastric-{target.runtime.replace('.', '')}-{target.arch}"
        f" --zip-file fileb://{layer.path} --compatible-runtimes {target.runtime}"
        f" --compatible-architectures {target.arch}",
        f"Then set on the function ({target.runtime}, {target.arch}):",
        "  1. Layers: add the LayerVersionArn printed by publish-layer-version",
        f"  2. Environment: AWS_LAMBDA_EXEC_WRAPPER={WRAPPER_PATH}",
    ]
    return "\n".join(lines) + "\n"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastric layer",
        description="Build a Lambda layer that runs fastric on the managed Python runtimes (zip functions).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="build")
    build_parser = commands.add_parser(
        "build",
        help="build the layer zip from PyPI wheels",
        description="Build a layer zip: python/ with fastric and its dependencies (PyPI wheels for the target, "
        f"nothing compiled from source) and the wrapper script at its root ({WRAPPER_PATH} on Lambda).",
    )
    build_parser.add_argument(
        "--python",
        metavar="X.Y",
        default=running_python(),
        help=f"the function's runtime version, one of {', '.join(PYTHONS)} (default: this Python, {running_python()})",
    )
    build_parser.add_argument(
        "--arch", choices=list(ARCHITECTURES), default="x86_64", help="the function's architecture (default x86_64)"
    )
    build_parser.add_argument(
        "-o", "--output", type=Path, metavar="PATH", help="the zip to write (default fastric-layer-pythonX.Y-ARCH.zip)"
    )
    return parser
