"""The `fastric` command: run a handler (default), `emulate` / `invoke` a function locally, or build a `layer`."""

from __future__ import annotations

import os
import sys

SUBCOMMANDS = ("run", "emulate", "invoke", "layer")
RUN_USAGE = """usage: fastric run [HANDLER]

Run the Lambda runtime loop for HANDLER (module.function; default $_HANDLER) against $AWS_LAMBDA_RUNTIME_API,
which Lambda sets: the same as `fastric HANDLER` and `python -m fastric HANDLER`. To run a function on this
machine, use `fastric invoke` or `fastric emulate` (fastric --help).
"""
USAGE = """usage: fastric HANDLER                 run the Lambda runtime loop for HANDLER (module.function)
       fastric run [HANDLER]           the same; HANDLER defaults to $_HANDLER
       fastric emulate [options] [HANDLER | -- COMMAND ...]
                                       serve a local Runtime API + invoke endpoint (fastric emulate --help)
       fastric invoke [options] [HANDLER | -- COMMAND ...] [--event JSON | --event-file PATH | -]
                                       run a function once locally and print its response (fastric invoke --help)
       fastric layer build [options]   build a Lambda layer for zip functions (fastric layer build --help)
       fastric -V | --version          print the version
       fastric -h | --help             print this help

The runtime loop (HANDLER, run) talks to $AWS_LAMBDA_RUNTIME_API, which Lambda sets; on your own machine,
`fastric invoke` and `fastric emulate` start the function under a local Runtime API instead, e.g.
  fastric invoke --task-root examples app.handler --event '{"queryStringParameters":{"foo":"bar"}}'

Exit status: 0 success; 1 failure (invoke: a function error, its error document printed; the runtime loop: an
init error, or the Runtime API ended it); 2 bad usage; 130 interrupted (Ctrl-C during invoke).
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
    if command == "run" and len(args) > 2 and args[2] in ("-h", "--help"):
        sys.stdout.write(RUN_USAGE)
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
        sys.stderr.write("(fastric --help lists the commands)\n")
        sys.exit(2)
    if not os.environ.get("AWS_LAMBDA_RUNTIME_API"):
        sys.exit(_not_on_lambda(args[1:] or [handler]))
    from fastric.runtime import startup

    startup.run(handler)


def _not_on_lambda(words: list[str]) -> int:
    """No Runtime API to talk to: most likely `invoke` or `emulate` was meant. Says so; returns the exit status."""
    import shlex

    if words and "." not in words[0] and not words[0].startswith("-"):  # a handler is module.function
        import difflib

        close = difflib.get_close_matches(words[0], SUBCOMMANDS, n=1, cutoff=0.6)
        suggestion = f"; did you mean `fastric {shlex.join([close[0], *words[1:]])}`?" if close else ""
        sys.stderr.write(f"fastric: unknown command {words[0]!r}{suggestion} (fastric --help lists the commands)\n")
        return 2
    if words and words[0].startswith("-"):
        sys.stderr.write(f"fastric: unknown option {words[0]} (a subcommand may be missing)\n")
        status = 2
    else:
        sys.stderr.write("fastric: AWS_LAMBDA_RUNTIME_API is not set (host:port of the Lambda Runtime API)\n")
        status = 1
    rest = shlex.join(words)
    sys.stderr.write(
        f"hint: to run the function on this machine, `fastric invoke {rest}` runs it once and prints the response;"
        f" `fastric emulate {rest}` serves it on 127.0.0.1:9000 (fastric --help lists the commands)\n"
    )
    return status
