"""The invocation core (`fastric/runtime/core.py`) in process, through every path that drives it.

One table of cases — a success, a handler error, an unserialisable result, each kind of malformed event, events
nested past every limit, refused and failed POSTs, a lost connection, a stream that fails midway — runs through
every driver: the first invocation (standard library codec), the warm blocking loop, the uvloop loop, a Managed
Instances poller, and streamed replies on both loops. A scripted fake transport stands in for the socket: it
parses what the driver writes with httptools and answers from the script, so the same expectations hold for
all paths. Error messages are compared with awslambdaric 4.2.2's own marshaller, on this interpreter.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os

import httptools
import pytest
import uvloop
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller
from json_cases import MALFORMED_EVENTS, TOO_DEEP

from fastric.runtime import aioloop, lifecycle, logs, loop
from fastric.runtime.concurrent import TaskLocalEnviron, use_task_local_environ
from fastric.runtime.core import POLLER, Session, make_answer, make_async_answer
from fastric.runtime.marshal import HOT
from fastric.runtime.plainjson import FIRST
from fastric.runtime.streaming import content_type_of, for_async_loop, for_blocking_loop, streaming
from fastric.runtime.wire.connection import ConnectionLost
from fastric.runtime.wire.parser import Response
from fastric.runtime.wire.protocol import Requests

ADDRESS = "127.0.0.1:9001"
REQUEST_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


class Done(BaseException):
    """The script has no more invocations: the driver is stopped from outside, not by its own decision."""


class Recorded:
    """One request the driver wrote, as the fake transport parsed it."""

    def __init__(self) -> None:
        self.method = ""
        self.url = ""
        self.headers: dict[str, str] = {}
        self.body = b""

    def on_url(self, url: bytes) -> None:
        self.url += url.decode()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body


class Script:
    """The Runtime API's side: `/next` answers in order (then Done), and a status for each POST (202 by default;
    "lost" for a connection that drops while the POST is sent)."""

    def __init__(self, events: list[bytes], post_statuses: list[int | str] | None = None, date: bool = True):
        self.events = list(events)
        self.post_statuses = list(post_statuses or [])
        self.date = date
        self.requests: list[Recorded] = []
        self._written = bytearray()
        self._parser = httptools.HttpRequestParser(self)
        self._current: Recorded | None = None
        self._answered = 0

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._current = Recorded()

    def on_url(self, url: bytes) -> None:
        assert self._current is not None
        self._current.on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._current is not None
        self._current.on_header(name, value)

    def on_body(self, body: bytes) -> None:
        assert self._current is not None
        self._current.on_body(body)

    def on_message_complete(self) -> None:
        assert self._current is not None
        self._current.method = self._parser.get_method().decode()
        self.requests.append(self._current)

    def write(self, pieces: list) -> None:
        data = b"".join(bytes(piece) for piece in pieces)
        self._parser.feed_data(data)

    def answer(self) -> Response:
        if self._answered >= len(self.requests):
            raise AssertionError("the driver waits for a response to a request it has not written")
        request = self.requests[self._answered]
        self._answered += 1
        date = {b"date": b"Sun, 06 Dec 2026 06:00:00 GMT"} if self.date else {}
        if request.method == "GET":
            if not self.events:
                raise Done
            headers = {
                b"lambda-runtime-aws-request-id": REQUEST_ID.encode(),
                b"lambda-runtime-deadline-ms": b"9999999999999",
                b"lambda-runtime-invoked-function-arn": b"arn:aws:lambda:us-east-1:1:function:f",
                b"lambda-runtime-trace-id": b"Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=1;Sampled=1",
                b"content-type": b"application/json",
                **date,
            }
            return Response(200, headers, self.events.pop(0))
        status = self.post_statuses.pop(0) if self.post_statuses else 202
        if status == "lost":
            raise ConnectionLost("the Runtime API closed the connection: reset by the script")
        return Response(int(status), date, b'{"status":"OK"}' if status == 202 else b'{"errorType":"Refused"}')

    def posts(self) -> list[Recorded]:
        return [request for request in self.requests if request.method == "POST"]


class FakeConnection:
    """The blocking `Connection`'s interface over a Script."""

    def __init__(self, script: Script):
        self.script = script
        self.address = ADDRESS

    def request(self, request: list, then: list | None = None) -> Response:
        self.send([*request, *(then or ())])
        return self.receive()

    def response_to(self, request: list) -> Response:
        return self.receive()

    def send(self, request: list) -> None:
        self.script.write(request)

    def receive(self) -> Response:
        return self.script.answer()

    def close(self) -> None:
        pass


class FakeAsyncConnection(FakeConnection):
    """The `AsyncConnection`'s interface over a Script."""

    async def request(self, request: list, then: list | None = None) -> Response:  # type: ignore[override]
        self.script.write([*request, *(then or ())])
        return self.script.answer()

    async def response_to(self, request: list) -> Response:  # type: ignore[override]
        return self.script.answer()

    async def send(self, request: list) -> None:  # type: ignore[override]
        self.script.write(request)

    async def drain(self) -> None:
        pass

    async def receive(self) -> Response:  # type: ignore[override]
        return self.script.answer()


# -- the function under test --------------------------------------------------------------------------------------


def handler(event, context):
    """What the event asks for."""
    op = event.get("op") if isinstance(event, dict) else None
    if op == "raise":
        raise ValueError("bad value")
    if op == "set":
        return {"a": {1, 2}}
    return {"event": event, "request_id": context.aws_request_id, "trace": os.environ.get("_X_AMZN_TRACE_ID")}


async def async_handler(event, context):
    await asyncio.sleep(0)
    return handler(event, context)


@streaming(content_type="application/json")
def streaming_handler(event, context):
    result = handler(event, context)  # an error here is before the first item: a plain /error
    yield json.dumps(result, separators=(",", ":"))
    if isinstance(event, dict) and event.get("op") == "midway":
        raise RuntimeError("failed midway")


@streaming(content_type="application/json")
async def async_streaming_handler(event, context):
    for item in streaming_handler(event, context):
        await asyncio.sleep(0)
        yield item


# -- the paths ----------------------------------------------------------------------------------------------------


def run_first(script: Script) -> int | None:
    """As `startup.serve_plain`: the first invocation on the standard library's codec, then the hot path."""
    connection, requests = FakeConnection(script), Requests(ADDRESS)
    session = Session(requests)
    code = loop.serve_first(connection, session, make_answer(requests, handler, FIRST, loop.run_coroutine))
    if code is not None:
        return code
    return run_blocking(script, handler, connection, session)


def run_blocking(script: Script, function=handler, connection=None, session=None) -> int | None:
    connection = connection or FakeConnection(script)
    requests = Requests(ADDRESS)
    session = session or Session(requests)
    answer = make_answer(
        requests, for_blocking_loop(function, content_type_of(function), loop.run_coroutine), HOT, loop.run_coroutine
    )
    try:
        return loop.serve(connection, session, answer)
    except Done:
        return None


def run_async(script: Script, function=async_handler, policy=None) -> int | None:
    requests = Requests(ADDRESS)
    session = Session(requests) if policy is None else Session(requests, policy=policy)
    answer = make_async_answer(requests, for_async_loop(function, content_type_of(function)), HOT)

    async def main():
        work = lifecycle.own_work() if policy is not None else lifecycle.pending
        return await aioloop.serve(FakeAsyncConnection(script), session, answer, work)

    try:
        return uvloop.new_event_loop().run_until_complete(main())
    except Done:
        return None


def run_poller(script: Script) -> int | None:
    """A Managed Instances poller: the POLLER policy, task-local ids and trace id (restored after)."""
    logs.use_task_local_ids()
    use_task_local_environ()
    try:
        return run_async(script, async_handler, POLLER)
    finally:
        logs.use_task_local_ids(False)
        os.environ.__class__ = os._Environ


PATHS = {
    "first": run_first,
    "warm": lambda script: run_blocking(script),
    "async": lambda script: run_async(script),
    "poller": run_poller,
    "streamed": lambda script: run_blocking(script, streaming_handler),
    "streamed-async": lambda script: run_async(script, async_streaming_handler),
}

# -- the table ----------------------------------------------------------------------------------------------------

MALFORMED = [*MALFORMED_EVENTS, b"", b"\xff\xfe", b'{"a": 1} trailing', TOO_DEEP]
NESTED_OK = [b"[" * 300 + b"]" * 300, b'{"a":' * 200 + b"1" + b"}" * 200]  # past orjson's 254 levels


def awslambdaric_error(event: bytes) -> tuple[str, str]:
    """awslambdaric 4.2.2's error type and message for an event it cannot decode."""
    try:
        LambdaMarshaller().unmarshal_request(event)
    except Exception as exc:
        return exc.exception_type, exc.msg  # type: ignore[attr-defined]
    raise AssertionError(f"awslambdaric decodes {event[:40]!r}")


def outcome(post: Recorded) -> tuple:
    """A POST as ("response", decoded body) or ("error", errorType, errorMessage); a stream ended by error
    trailers as ("response+error", body, errorType, errorMessage)."""
    assert post.url.startswith(f"/2018-06-01/runtime/invocation/{REQUEST_ID}/"), post.url
    if post.url.endswith("/error"):
        document = json.loads(post.body)
        assert document["requestId"] == REQUEST_ID
        return ("error", document["errorType"], document["errorMessage"])
    assert post.url.endswith("/response")
    if "lambda-runtime-function-error-type" in post.headers:
        document = json.loads(base64.b64decode(post.headers["lambda-runtime-function-error-body"]))
        assert document["errorType"] == post.headers["lambda-runtime-function-error-type"]
        return ("response+error", json.loads(post.body), document["errorType"], document["errorMessage"])
    return ("response", json.loads(post.body))


def expected_success(event: dict) -> tuple:
    trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=1;Sampled=1"
    return ("response", {"event": event, "request_id": REQUEST_ID, "trace": trace})


@pytest.fixture(autouse=True)
def _runtime_state(monkeypatch):
    """The runtime's process-wide state, as a runtime process has it, restored after each test."""
    monkeypatch.setattr(lifecycle, "state", lifecycle.Phase.UNARMED)
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    saved = {name: getattr(logs.state, name) for name in logs.LogState.__slots__}
    try:
        yield
    finally:
        logs.use_task_local_ids(False)
        for name, value in saved.items():
            setattr(logs.state, name, value)


@pytest.mark.parametrize("path", PATHS)
def test_a_success(path):
    script = Script([b'{"op": "echo", "n": 1}'])
    assert PATHS[path](script) is None
    assert [outcome(p) for p in script.posts()] == [expected_success({"op": "echo", "n": 1})]
    assert [r.method for r in script.requests] == ["GET", "POST", "GET"]


@pytest.mark.parametrize("path", PATHS)
def test_a_handler_error(path):
    script = Script([b'{"op": "raise"}', b'{"op": "echo"}'])
    assert PATHS[path](script) is None
    assert [outcome(p) for p in script.posts()] == [
        ("error", "ValueError", "bad value"),
        expected_success({"op": "echo"}),
    ]


@pytest.mark.parametrize("path", [p for p in PATHS if not p.startswith("streamed")])
def test_an_unserialisable_result(path):
    script = Script([b'{"op": "set"}'])
    PATHS[path](script)
    message = "Unable to marshal response: Object of type set is not JSON serializable"
    assert [outcome(p) for p in script.posts()] == [("error", "Runtime.MarshalError", message)]


@pytest.mark.parametrize("event", MALFORMED, ids=lambda e: repr(e[:16]))
@pytest.mark.parametrize("path", PATHS)
def test_a_malformed_event_gets_awslambdarics_exact_error_and_the_loop_goes_on(path, event):
    """(In a fresh process nothing has imported `json` before the first invocation, which changes what the standard
    library's scanner raises on 3.10/3.11: `tests/test_first_invocation.py` checks that case in a subprocess.)"""
    script = Script([event, b'{"op": "echo"}'])
    assert PATHS[path](script) is None
    assert [outcome(p) for p in script.posts()] == [
        ("error", *awslambdaric_error(event)),
        expected_success({"op": "echo"}),
    ]


@pytest.mark.parametrize("event", NESTED_OK, ids=["array300", "object200"])
@pytest.mark.parametrize("path", PATHS)
def test_events_nested_past_orjsons_limit_decode_as_awslambdaric_decodes_them(path, event):
    script = Script([event])
    PATHS[path](script)
    (post,) = script.posts()
    assert outcome(post)[1]["event"] == LambdaMarshaller().unmarshal_request(event)


@pytest.mark.parametrize("status", [400, 403, 413])
@pytest.mark.parametrize("path", PATHS)
def test_a_refused_post_is_logged_and_the_loop_goes_on(path, status, capfd):
    script = Script([b'{"op": "echo"}', b'{"op": "echo"}'], post_statuses=[status])
    assert PATHS[path](script) is None
    assert len(script.posts()) == 2
    assert f"Failed to post handler success response. Http response code: {status}." in capfd.readouterr().out


@pytest.mark.parametrize("failure", [500, "lost"])
@pytest.mark.parametrize("path", PATHS)
def test_a_failed_post_ends_the_process_except_for_a_poller(path, failure, capfd):
    script = Script([b'{"op": "echo"}', b'{"op": "echo"}'], post_statuses=[failure])
    code = PATHS[path](script)
    out = capfd.readouterr().out
    assert "Failed to post handler success response" in out
    if path == "poller":
        assert code is None and len(script.posts()) == 2  # logged; this invocation and the others go on
    else:
        assert code == 1 and len(script.posts()) == 1


@pytest.mark.parametrize("path", PATHS)
def test_a_failed_next_ends_the_process(path, capfd, monkeypatch):
    monkeypatch.setattr(POLLER, "retry_delays", (0.0, 0.0))  # the poller's retries, without the waits
    script = Script([b'{"op": "echo"}'] * 3)
    script.answer = _fail_gets(script.answer, statuses=[500, 502, 503])  # type: ignore[method-assign]
    code = PATHS[path](script)
    out = capfd.readouterr().out
    assert code == 1
    assert "Failed to get next invocation. Http Response code: 500" in out
    if path == "poller":
        assert out.count("Retrying the next invocation") == 2
        assert "Http Response code: 503" in out
    else:
        assert "Retrying" not in out and "503" not in out


def _fail_gets(answer, statuses):
    def failing() -> Response:
        response = answer()
        if response.status == 200 and statuses:
            return Response(statuses.pop(0), {}, b"")
        return response

    return failing


@pytest.mark.parametrize("path", ["streamed", "streamed-async"])
def test_a_stream_that_fails_midway_ends_with_the_error_trailers(path):
    script = Script([b'{"op": "midway"}', b'{"op": "echo"}'])
    assert PATHS[path](script) is None
    posts = script.posts()
    assert posts[0].headers["lambda-runtime-function-response-mode"] == "streaming"
    body = expected_success({"op": "midway"})[1]
    assert outcome(posts[0]) == ("response+error", body, "RuntimeError", "failed midway")
    assert outcome(posts[1]) == expected_success({"op": "echo"})


@pytest.mark.parametrize("path", [p for p in PATHS if p != "first"])
def test_pipelining_follows_the_servers_date_header(path):
    for date, expected in ((True, True), (False, False)):
        script = Script([b'{"op": "echo"}', b'{"op": "echo"}'], date=date)
        written: list[int] = []
        original = script.write

        def write(pieces, original=original, written=written, script=script):
            original(pieces)
            written.append(len(script.requests))

        script.write = write  # type: ignore[method-assign]
        PATHS[path](script)
        # pipelined: the POST and the next GET arrive in one write (two requests complete at once)
        jumps = [b - a for a, b in zip([0, *written], written, strict=False)]
        assert (2 in jumps) is expected, (path, date, jumps)


def test_the_first_invocation_never_pipelines_its_next():
    script = Script([b'{"op": "echo"}', b'{"op": "echo"}', b'{"op": "echo"}'])
    counts: list[int] = []
    original = script.write
    script.write = lambda pieces: (original(pieces), counts.append(len(script.requests)))  # type: ignore[method-assign]
    run_first(script)
    assert counts[:3] == [1, 2, 3]  # GET, POST, GET each alone; pipelining starts from the second invocation
    assert 2 in [b - a for a, b in zip(counts, counts[1:], strict=False)]


def test_under_managed_instances_every_read_of_os_environ_agrees_on_the_tasks_trace_id():
    """`[]`, `get`, `in`, `os.getenv`, iteration, `keys()`, `items()`, `copy()`, `dict(...)`, `len`, `repr`."""
    use_task_local_environ()
    try:
        environ = os.environ
        assert environ.__class__ is TaskLocalEnviron

        async def reads(trace_id):
            if trace_id is not None:
                environ["_X_AMZN_TRACE_ID"] = trace_id
            await asyncio.sleep(0)
            views = [
                environ.get("_X_AMZN_TRACE_ID"),
                os.getenv("_X_AMZN_TRACE_ID"),
                environ.copy().get("_X_AMZN_TRACE_ID"),
                dict(environ).get("_X_AMZN_TRACE_ID"),
                dict(environ.items()).get("_X_AMZN_TRACE_ID"),
                next((v for k, v in environ.items() if k == "_X_AMZN_TRACE_ID"), None),
                trace_id if "_X_AMZN_TRACE_ID" in list(environ) else None,
                trace_id if "_X_AMZN_TRACE_ID" in environ.keys() else None,
                trace_id if "_X_AMZN_TRACE_ID" in environ else None,
            ]
            assert len(environ) == len(list(environ))
            assert ("_X_AMZN_TRACE_ID" in repr(environ)) is (trace_id is not None)
            return views

        async def main():
            return await asyncio.gather(reads("Root=a"), reads("Root=b"), reads(None))

        a, b, none = uvloop.new_event_loop().run_until_complete(main())
        assert a == ["Root=a"] * 9 and b == ["Root=b"] * 9 and none == [None] * 9
        assert "_X_AMZN_TRACE_ID" not in os.environ  # outside any task: none
    finally:
        os.environ.__class__ = os._Environ
