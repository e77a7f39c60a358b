"""Start-up: everything up to the first `/next`, kept light so that the function's init ends early.

Init is: logging set-up, the handler import, then the first `GET /next`. That request goes out on a plain
socket while the hot loop's modules (runtime.py with orjson; aioruntime.py with uvloop for `async def`
handlers) are imported on a background thread; the loop then takes the socket, and its pending response, over
when that import is done. Init failures and SnapStart import the loop in line.
"""

from __future__ import annotations

import os
import sys
import threading

from fastric.runtime import logs
from fastric.runtime.handler import add_task_root_to_path, is_async_handler, load_handler
from fastric.runtime.wire.connection import open_socket
from fastric.runtime.wire.protocol import Requests

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    import _socket
    from typing import NoReturn


def run(handler_name: str) -> NoReturn:
    """Run the function `handler_name` against `$AWS_LAMBDA_RUNTIME_API` until the Runtime API ends it."""
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("fastric: AWS_LAMBDA_RUNTIME_API is not set (host:port of the Lambda Runtime API)\n")
        sys.exit(1)
    concurrency = os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY")
    if concurrency is not None:
        from fastric.runtime.workers import run_workers

        sys.exit(run_workers(int(concurrency), lambda: run_worker(address, handler_name)))
    logs.setup()
    run_worker(address, handler_name)


def run_worker(address: str, handler_name: str) -> NoReturn:
    """Init (handler import), then the invocation loop, in this process."""
    add_task_root_to_path()
    requests = Requests(address)
    try:
        handler = load_handler(handler_name)
    except Exception as exc:
        from fastric.runtime import loop as runtime

        sys.exit(runtime.report_init_error(address, requests, exc))
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        from fastric.runtime import loop as runtime

        sys.exit(runtime.run_loop(address, requests, handler, snapstart=True))
    loop_module = "fastric.runtime.aioloop" if is_async_handler(handler) else "fastric.runtime.loop"
    importer = threading.Thread(target=_import, args=(loop_module,), name="fastric-import", daemon=True)
    importer.start()
    first = send_first_next(address, requests.next)
    importer.join()
    from fastric.runtime import loop as runtime

    sys.exit(runtime.run_loop(address, requests, handler, first_next=first))


def _import(module: str) -> None:
    try:
        __import__(module)
    except BaseException:  # the main thread imports it again and reports the failure itself
        pass


def send_first_next(address: str, request: bytes) -> _socket.socket | None:
    """Connect and send the first `/next` request; None if that failed (the loop then connects itself)."""
    try:
        sock = open_socket(address)
    except OSError:
        return None
    try:
        sock.sendall(request)
    except OSError:
        sock.close()
        return None
    return sock
