"""The runtime loop: next → handle → post, on one persistent uvloop loop (start-up is in startup.py).

Read top to bottom, this is the Runtime API's sequence. Sync handlers are called as if no event loop were
running (so `asyncio.run()` and friends work inside them); `async def` handlers are awaited on the loop,
which lives as long as the process, so module-level async clients stay usable across invocations.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from asyncio import events
from types import CoroutineType
from typing import Callable

import uvloop

from fastric import logs
from fastric.connection import ConnectionLost, RuntimeConnection
from fastric.context import LambdaContext
from fastric.faults import FaultError, describe_exception, dump_document, error_document
from fastric.marshal import decode_event, encode_result
from fastric.protocol import ProtocolError, Requests, outcome, parse_invocation


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop, not installed as the thread's current loop (user code must not find it)."""
    return uvloop.new_event_loop()


def run_loop(address: str, requests: Requests, handler: Callable, first_next=None,
             snapstart: bool = False) -> int:
    """Serve invocations until the Runtime API ends the process; returns the exit code.

    `first_next` is a connection on which the first `/next` was already sent (see startup.py).
    """
    loop = new_loop()
    connection = RuntimeConnection(loop, address)
    if snapstart:
        from fastric.snapstart import run_snapstart_hooks

        run_snapstart_hooks(loop, connection, requests)
    return loop.run_until_complete(serve(loop, connection, requests, handler, first_next))


def report_init_error(address: str, requests: Requests, exc: Exception) -> int:
    """Log and post an init failure to `/init/error`; returns the exit code, 1."""
    if isinstance(exc, FaultError):
        document = error_document(exc.message, exc.error_type, "", exc.stack)
    else:
        document, _ = describe_exception(exc, "")
    logs.warn_unhandled_init()
    logs.log_error(document)
    loop = new_loop()
    connection = RuntimeConnection(loop, address)
    try:
        response = loop.run_until_complete(
            connection.request(requests.init_error(dump_document(document), document["errorType"])))
    except ConnectionLost as lost:
        logs.runtime_log(f"Failed to post init error: {lost}")
        return 1
    if outcome(response.status) != "ok":
        logs.runtime_log(f"Failed to post init error. Http response code: {response.status}. "
                         f"{response.body.decode('utf-8', 'replace')}")
    return 1


def is_async_handler(handler: Callable) -> bool:
    """True for `async def` functions (and callables whose `__call__` is one)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None))


async def serve(loop: asyncio.AbstractEventLoop, connection: RuntimeConnection, requests: Requests,
                handler: Callable, first_next=None) -> int:
    """The invocation loop. Returns the process exit code when the Runtime API tells the runtime to stop."""
    request = connection.request
    next_request = requests.next
    environ = os.environ
    set_running_loop = events._set_running_loop
    awaited = is_async_handler(handler)
    while True:
        try:
            if first_next is None:
                response = await request(next_request)
            else:
                response = await connection.adopt(first_next, next_request)
                first_next = None
        except ConnectionLost as exc:
            logs.runtime_log(f"Failed to get next invocation. No Response from endpoint ({exc})")
            return 1
        if response.status != 200:
            logs.runtime_log(f"Failed to get next invocation. Http Response code: {response.status}")
            return 1
        try:
            invocation = parse_invocation(response.headers, response.body)
        except ProtocolError as exc:
            logs.runtime_log(str(exc))
            if b"lambda-runtime-aws-request-id" in response.headers:
                continue  # an id we refuse to put on the wire: nothing can be posted for it
            return 1
        request_id = invocation.request_id
        logs.set_request(request_id, invocation.tenant_id)
        if invocation.trace_id is not None:
            environ["_X_AMZN_TRACE_ID"] = invocation.trace_id
        elif "_X_AMZN_TRACE_ID" in environ:
            del environ["_X_AMZN_TRACE_ID"]
        try:
            context = LambdaContext(request_id, invocation.client_context, invocation.cognito_identity,
                                    invocation.deadline_ms, invocation.function_arn, invocation.tenant_id)
            event = decode_event(invocation.body, invocation.content_type)
            if awaited:
                result = await handler(event, context)
            else:
                set_running_loop(None)
                try:
                    result = handler(event, context)
                finally:
                    set_running_loop(loop)
                if result.__class__ is CoroutineType:
                    result = await result
            body, content_type = encode_result(result)
        except Exception as exc:
            document, xray_cause = describe_exception(exc, request_id)
            del exc
            logs.log_error(document)
            post = requests.error(request_id, dump_document(document), xray_cause, invocation.invocation_id)
            what = "error"
        else:
            post = requests.response(request_id, body, content_type, invocation.invocation_id)
            what = "success"
        try:
            posted = await request(post)
        except ConnectionLost as exc:
            logs.runtime_log(f"Failed to post handler {what} response: {exc}")
            return 1
        if posted.status >= 300:
            logs.runtime_log(f"Failed to post handler {what} response. Http response code: {posted.status}. "
                             f"{posted.body.decode('utf-8', 'replace')}")
            if outcome(posted.status) == "fatal":
                return 1
