"""The `fastric` command: run a handler (default), `emulate` / `invoke` a function locally, or build a `layer`."""

from __future__ import annotations

import os
import sys

USAGE = """usage: fastric HANDLER                 run the Lambda runtime loop for HANDLER (module.function)
       fastric run [HANDLER]           the same; HANDLER defaults to $_HANDLER
       fastric emulate [options] ...   serve a local Runtime API + invoke endpoint (fastric emulate --help)
       fastric invoke [options] ...    run a function once locally and print its response (fastric invoke --help)
       fastric layer build [options]   build a Lambda layer for zip functions (fastric layer build --help)
"""


def main(args: list[str] | None = None) -> None:
    """Entry point shared by `python -m fastric` and the `fastric` console script.

    As with `awslambdaric.__main__.main(args)`, `args[1]` is the handler string.
    """
    if args is None:
        args = sys.argv
    command = args[1] if len(args) > 1 else None
    if command in ("emulate", "invoke"):
        from fastric.emulator import cli as emulator_cli

        sys.exit(getattr(emulator_cli, f"{command}_main")(list(args[2:])))
    if command == "layer":
        from fastric.layer import cli as layer_cli

        sys.exit(layer_cli.main(list(args[2:])))
    if command in ("-h", "--help"):
        sys.stdout.write(USAGE)
        sys.exit(0)
    if command in ("-V", "--version"):
        from fastric import __version__

        sys.stdout.write(f"fastric {__version__}\n")
        sys.exit(0)
    if command == "run":
        args = args[1:]
    handler = args[1] if len(args) > 1 else os.environ.get("_HANDLER")
    if not handler:
        sys.stderr.write("fastric: no handler given: pass it as the first argument (module.function) or set _HANDLER\n")
        sys.exit(1)
    from fastric.runtime import startup

    startup.run(handler)
