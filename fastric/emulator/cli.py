"""`fastric emulate` and `fastric invoke`: command-line front ends of the emulator."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys

import orjson

from .config import (
    DEFAULT_FUNCTION_NAME,
    DEFAULT_INIT_TIMEOUT,
    DEFAULT_MEMORY,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT,
    SYSTEM_EXTENSIONS,
    ConfigError,
    FunctionConfig,
    resolve_command,
)
from .invocation import Invocation, StreamSink
from .report import PlatformLog
from .server import Emulator

INVOKE_URL_PATH = "/2015-03-31/functions/function/invocations"


def emulate_main(argv: list[str]) -> int:
    """`fastric emulate [options] [HANDLER | -- COMMAND ...]`: serve until Ctrl-C / SIGTERM, then exit 0."""
    try:
        return _emulate_main(argv)
    except KeyboardInterrupt:  # before the event loop's own handler is in place
        sys.stderr.write("fastric emulate: interrupted\n")
        return 130


def _emulate_main(argv: list[str]) -> int:
    options, command = _split_command(argv)
    args = _parser("emulate").parse_args(options)
    if len(args.targets) > 1:
        return _usage_error("emulate", f"unexpected arguments: {' '.join(args.targets[1:])}")
    try:
        config = _function_config(args, args.targets[0] if args.targets else None, command)
    except ConfigError as error:
        return _usage_error("emulate", str(error))
    return _run(_emulate(config, args.host, args.port, watch=args.watch, function_url=args.function_url))


def invoke_main(argv: list[str]) -> int:
    """`fastric invoke [options] HANDLER [--event JSON | --event-file PATH | -]`: invoke once, print the body.

    Exit status: 0 on success, 1 on a function error (the error document is printed), 2 on bad usage, 130 when
    interrupted (Ctrl-C while reading the event, during init or during the invoke: one line, nothing else).
    """
    try:
        return _invoke_main(argv)
    except KeyboardInterrupt:  # before the event loop's own handler is in place (reading stdin, say)
        return _interrupted(signal.SIGINT)


def _interrupted(signum: int) -> int:
    sys.stderr.write("fastric invoke: interrupted\n")
    sys.stderr.flush()
    return 128 + signum


def _invoke_main(argv: list[str]) -> int:
    options, command = _split_command(argv)
    args = _parser("invoke").parse_args(options)
    targets = list(args.targets)
    from_stdin = "-" in targets
    targets = [target for target in targets if target != "-"]
    if len(targets) > 1:
        return _usage_error("invoke", f"unexpected arguments: {' '.join(targets[1:])}")
    if sum((args.event is not None, args.event_file is not None, from_stdin)) > 1:
        return _usage_error("invoke", "give the event once: --event, --event-file or - (stdin)")
    if args.host is not None or args.port is not None:
        return _usage_error("invoke", INVOKE_NO_ENDPOINT)
    try:
        event = _read_event(args, from_stdin)
        config = _function_config(args, targets[0] if targets else None, command)
    except (ConfigError, OSError) as error:
        return _usage_error("invoke", str(error))
    return _run(_invoke_once(config, event))


# -- argument handling ----------------------------------------------------------------------
def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return list(argv), []


def _seconds(text: str) -> float:
    """A timeout: a finite number of seconds above 0 (`nan` and `inf` would make every invoke hang)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the timeout must be a finite number of seconds above 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _setting(given, env_name: str, parse, default):
    """An option's value: as given on the command line, else from `env_name` (read only then), else `default`."""
    if given is not None:
        return given
    raw = os.environ.get(env_name)
    if not raw:
        return default
    try:
        return parse(raw)
    except argparse.ArgumentTypeError as error:
        raise ConfigError(f"${env_name}: {error}") from None


INVOKE_NO_ENDPOINT = (
    "--host and --port are `fastric emulate` options: invoke serves no endpoint "
    "(the bootstrap's Runtime API listens on a free 127.0.0.1 port)"
)
USAGE = {
    "emulate": "%(prog)s [options] [HANDLER | -- COMMAND ...]",
    "invoke": "%(prog)s [options] [HANDLER] [--event JSON | --event-file PATH | -] [-- COMMAND ...]",
}
INVOKE_EPILOG = (
    " The response body goes to stdout byte for byte (a newline is added after it only when stdout is a "
    "terminal); START / END / REPORT lines and the function's own output go to stderr. "
    + INVOKE_NO_ENDPOINT[0].upper()
    + INVOKE_NO_ENDPOINT[1:]
    + "."
)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"fastric {command}",
        usage=USAGE[command],
        description=(
            "Serve a local Lambda invoke endpoint and Runtime API, running any bootstrap."
            if command == "emulate"
            else "Run a function once locally and print its response body."
        ),
        epilog=(
            "HANDLER runs `python -m fastric HANDLER`; `-- COMMAND ...` runs any program as the bootstrap; "
            "with neither, ./bootstrap (in --task-root) or /var/runtime/bootstrap is run."
            + (INVOKE_EPILOG if command == "invoke" else "")
        ),
    )
    if command == "invoke":  # refused with a clear message rather than argparse's "unrecognized arguments"
        parser.add_argument("--host", help=argparse.SUPPRESS)
        parser.add_argument("--port", help=argparse.SUPPRESS)
    else:
        parser.add_argument("--host", default="127.0.0.1", help="invoke endpoint address (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=9000, help="invoke endpoint port (default 9000; 0 picks one)")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help=f"function timeout (default $AWS_LAMBDA_FUNCTION_TIMEOUT or {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--init-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_INIT_TIMEOUT,
        help=f"init phase limit (default {DEFAULT_INIT_TIMEOUT:g}, Lambda's): the function timeout covers the "
        "invoke phase only, and an init running past this limit counts against the invocation waiting for it",
    )
    parser.add_argument(
        "--memory",
        type=_positive_int,
        metavar="MB",
        help=f"reported memory size (default $AWS_LAMBDA_FUNCTION_MEMORY_SIZE or {DEFAULT_MEMORY})",
    )
    parser.add_argument(
        "--function-name",
        metavar="NAME",
        default=os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or DEFAULT_FUNCTION_NAME,
        help=f"function name (default $AWS_LAMBDA_FUNCTION_NAME or {DEFAULT_FUNCTION_NAME})",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="run up to N invocations at once, passing AWS_LAMBDA_MAX_CONCURRENCY=N "
        "(default $AWS_LAMBDA_MAX_CONCURRENCY; unset: one at a time, queued)",
    )
    parser.add_argument(
        "--task-root",
        metavar="DIR",
        default=os.getcwd(),
        help="function code directory: the bootstrap's cwd and LAMBDA_TASK_ROOT (default .)",
    )
    parser.add_argument(
        "--extensions",
        metavar="DIR",
        help=f"external extensions: the executables in DIR, started before the bootstrap "
        f"(default {SYSTEM_EXTENSIONS} when it exists)",
    )
    parser.add_argument(
        "--import-profile",
        action="store_true",
        help="after the REPORT line with Init Duration, show the handler module's 15 slowest imports "
        "(cumulative and self, ms) and their total, from a Python bootstrap's own import timing (-X importtime)",
    )
    if command == "invoke":
        parser.add_argument("--event", metavar="JSON", help="the event (default {})")
        parser.add_argument("--event-file", metavar="PATH", help="read the event from a file")
        parser.add_argument("targets", nargs="*", metavar="HANDLER | -", help="handler; - reads the event from stdin")
    else:
        parser.add_argument(
            "--watch",
            action="store_true",
            help="start a fresh bootstrap for the next invocation when a file under --task-root changes",
        )
        parser.add_argument(
            "--function-url",
            action="store_true",
            help="serve every other path on the port as a Function URL (payload format 2.0 events)",
        )
        parser.add_argument("targets", nargs="*", metavar="HANDLER", help="handler (module.function)")
    return parser


def _function_config(args: argparse.Namespace, handler: str | None, command: list[str]) -> FunctionConfig:
    timeout = _setting(args.timeout, "AWS_LAMBDA_FUNCTION_TIMEOUT", _seconds, DEFAULT_TIMEOUT)
    memory = _setting(args.memory, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", _positive_int, DEFAULT_MEMORY)
    concurrency = _setting(args.concurrency, "AWS_LAMBDA_MAX_CONCURRENCY", _positive_int, None)
    task_root = os.path.abspath(args.task_root)
    if not os.path.isdir(task_root):
        raise ConfigError(f"--task-root {task_root} is not a directory")
    extensions_dir = os.path.abspath(args.extensions) if args.extensions else None
    if extensions_dir is not None and not os.path.isdir(extensions_dir):
        raise ConfigError(f"--extensions {extensions_dir} is not a directory")
    if extensions_dir is None and os.path.isdir(SYSTEM_EXTENSIONS):
        extensions_dir = SYSTEM_EXTENSIONS
    bootstrap, handler = resolve_command(handler, command, task_root)
    handler = handler or os.environ.get("AWS_LAMBDA_FUNCTION_HANDLER") or os.environ.get("_HANDLER")
    return FunctionConfig(
        command=bootstrap,
        task_root=task_root,
        handler=handler,
        function_name=args.function_name,
        timeout=timeout,
        init_timeout=args.init_timeout,
        memory_mb=memory,
        concurrency=concurrency,
        region=os.environ.get("AWS_REGION") or DEFAULT_REGION,
        extensions_dir=extensions_dir,
        import_profile=args.import_profile,
    )


def _read_event(args: argparse.Namespace, from_stdin: bool) -> bytes:
    if args.event is not None:
        event = args.event.encode()
    elif args.event_file is not None:
        with open(args.event_file, "rb") as file:
            event = file.read()
    elif from_stdin:
        event = sys.stdin.buffer.read()
    else:
        event = b"{}"
    if not event.strip():
        return b"{}"
    try:
        orjson.loads(event)
    except orjson.JSONDecodeError as error:
        raise ConfigError(f"the event is not JSON: {error}") from None
    return event


def _usage_error(command: str, message: str) -> int:
    sys.stderr.write(f"fastric {command}: {message}\n")
    return 2


# -- running --------------------------------------------------------------------------------
def _run(main) -> int:
    import uvloop

    return uvloop.run(main)


class Stop(asyncio.Event):
    """Set by SIGINT or SIGTERM; `signum` says which."""

    signum = 0

    def got(self, signum: int) -> None:
        self.signum = self.signum or signum
        self.set()


def _stop_on_signals() -> Stop:
    stop = Stop()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.got, signum)
    return stop


async def _emulate(
    config: FunctionConfig, host: str, port: int, watch: bool = False, function_url: bool = False
) -> int:
    stop = _stop_on_signals()
    log = PlatformLog()
    emulator = Emulator(config, log, watch=watch, function_url=function_url)
    try:
        await emulator.start(host, port)
    except OSError as error:
        log.note(f"cannot listen on {host}:{port}: {error.strerror or error}")
        await emulator.close()
        return 1
    bound_host, bound_port = emulator.invoke_address or (host, port)
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    log.note(
        f"listening on http://{shown_host}:{bound_port}{INVOKE_URL_PATH} "
        f"(Runtime API for the bootstrap: {emulator.sandbox.runtime_api})"
    )
    if function_url:
        log.note(f"function URL: http://{shown_host}:{bound_port}/ (any other path and method)")
    if watch:
        log.note(f"watching {config.task_root} for changes")
    await stop.wait()
    log.note("stopping")
    await emulator.close()
    return 0


async def _invoke_once(config: FunctionConfig, event: bytes) -> int:
    stop = _stop_on_signals()
    log = PlatformLog(prefix="fastric invoke")
    emulator = Emulator(config, log)
    sink = StreamSink(sys.stdout.buffer, terminal=sys.stdout.isatty())
    starting = asyncio.ensure_future(emulator.start())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([starting, stopper], return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        invocation = Invocation(event, sink)
        emulator.submit(invocation)
        await asyncio.wait([stopper, *emulator.scheduler.running], return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():  # interrupted: no report, no error document for what the emulator itself stops
        sink.mute()
        log.mute()
        emulator.sandbox.mute_output()
        if not starting.done():
            starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await emulator.close()
        return _interrupted(stop.signum)
    stopper.cancel()
    await emulator.close()
    return 1 if sink.function_error else 0
