"""`fastric emulate` and `fastric invoke`: command-line front ends of the emulator."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import orjson

from .config import (
    DEFAULT_FUNCTION_NAME,
    DEFAULT_MEMORY,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT,
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

    Exit status: 0 on success, 1 on a function error (the error document is printed), 2 on bad usage.
    """
    options, command = _split_command(argv)
    args = _parser("invoke").parse_args(options)
    targets = list(args.targets)
    from_stdin = "-" in targets
    targets = [target for target in targets if target != "-"]
    if len(targets) > 1:
        return _usage_error("invoke", f"unexpected arguments: {' '.join(targets[1:])}")
    if sum((args.event is not None, args.event_file is not None, from_stdin)) > 1:
        return _usage_error("invoke", "give the event once: --event, --event-file or - (stdin)")
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


def _env_number(name: str, kind: type, default):
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise SystemExit(f"fastric: {name}={value!r} is not a number") from None


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"fastric {command}",
        description=(
            "Serve a local Lambda invoke endpoint and Runtime API, running any bootstrap."
            if command == "emulate"
            else "Run a function once locally and print its response body."
        ),
        epilog=(
            "HANDLER runs `python -m fastric HANDLER`; `-- COMMAND ...` runs any program as the bootstrap; "
            "with neither, ./bootstrap (in --task-root) or /var/runtime/bootstrap is run."
        ),
    )
    unused = " (accepted for symmetry; invoke opens no endpoint)" if command == "invoke" else ""
    parser.add_argument("--host", default="127.0.0.1", help=f"invoke endpoint address (default 127.0.0.1){unused}")
    parser.add_argument(
        "--port", type=int, default=9000, help=f"invoke endpoint port (default 9000; 0 picks one){unused}"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=_env_number("AWS_LAMBDA_FUNCTION_TIMEOUT", float, DEFAULT_TIMEOUT),
        help=f"function timeout (default $AWS_LAMBDA_FUNCTION_TIMEOUT or {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--memory",
        type=int,
        metavar="MB",
        default=_env_number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", int, DEFAULT_MEMORY),
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
        type=int,
        metavar="N",
        default=_env_number("AWS_LAMBDA_MAX_CONCURRENCY", int, None),
        help="run up to N invocations at once, passing AWS_LAMBDA_MAX_CONCURRENCY=N "
        "(default $AWS_LAMBDA_MAX_CONCURRENCY; unset: one at a time, queued)",
    )
    parser.add_argument(
        "--task-root",
        metavar="DIR",
        default=os.getcwd(),
        help="function code directory: the bootstrap's cwd and LAMBDA_TASK_ROOT (default .)",
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
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    task_root = os.path.abspath(args.task_root)
    if not os.path.isdir(task_root):
        raise ConfigError(f"--task-root {task_root} is not a directory")
    bootstrap, handler = resolve_command(handler, command, task_root)
    handler = handler or os.environ.get("AWS_LAMBDA_FUNCTION_HANDLER") or os.environ.get("_HANDLER")
    return FunctionConfig(
        command=bootstrap,
        task_root=task_root,
        handler=handler,
        function_name=args.function_name,
        timeout=args.timeout,
        memory_mb=args.memory,
        concurrency=args.concurrency,
        region=os.environ.get("AWS_REGION") or DEFAULT_REGION,
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


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
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
    emulator = Emulator(config, PlatformLog(prefix="fastric invoke"))
    await emulator.start()
    sink = StreamSink(sys.stdout.buffer)
    invocation = Invocation(event, sink)
    emulator.submit(invocation)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopper, *emulator.scheduler.running], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    await emulator.close()
    if not invocation.finished:
        return 130
    sink.finish_line()
    return 1 if sink.function_error else 0
