"""Response streaming (`@fastric.streaming`): the chunked `POST /response` on the wire, against Runtime APIs on
127.0.0.1 (the recording `RuntimeAPIServer`, and `StreamRecorder`, which timestamps every chunk)."""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import sys
import time

import pytest
from runtime_api import RuntimeAPIServer, base_env, client_command, run_client
from stream_recorder import StreamRecorder

import fastric
from fastric.runtime.handler import is_async_generator_handler, is_async_handler
from fastric.runtime.streaming import content_type_of

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "streaming")
BOTH = ["stream_app.sync_stream", "stream_app.async_stream"]
TRAILER = "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
NUL8 = b"\0" * 8
MiB = 1 << 20
NEXT = "/2018-06-01/runtime/invocation/next"


def fastric_run(handler, srv, **kwargs):
    kwargs.setdefault("cwd", FIXTURES)
    return run_client("fastric", handler, srv, **kwargs)


def posts(srv):
    return [r for r in srv.requests if r.method == "POST"]


def trailer_document(request):
    trailers = dict(request.trailers)
    return trailers["Lambda-Runtime-Function-Error-Type"], json.loads(
        base64.b64decode(trailers["Lambda-Runtime-Function-Error-Body"])
    )


# -- the API ---------------------------------------------------------------------------------------------------


def test_import_fastric_stays_light():
    """User code imports fastric at handler import: neither the loops nor orjson, httptools or uvloop come with
    it, not even with the streaming names; the emulator does not pull the runtime in through it."""
    heavy = (
        "fastric.runtime.loop",
        "fastric.runtime.aioloop",
        "fastric.runtime.steps",
        "orjson",
        "httptools",
        "uvloop",
    )
    code = (
        "import sys, fastric; fastric.streaming, fastric.http_prelude; "
        f"print([m for m in sys.modules if m.split('.')[0] in {heavy!r} or m in {heavy!r}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import sys, fastric.emulator.cli; print([m for m in sys.modules if m.startswith('fastric.runtime')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert {"streaming", "http_prelude"} <= set(dir(fastric))
    with pytest.raises(AttributeError):
        fastric.no_such_name  # noqa: B018


def test_a_plain_streaming_handler_runs_without_asyncio():
    """The blocking loop streams a plain generator with neither asyncio nor uvloop imported (they cost
    megabytes of RSS and milliseconds of start-up)."""
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"modules": ["asyncio", "uvloop"]})
        fastric_run("light_app.loaded", srv)
    (post,) = posts(srv)
    assert post.chunks == [b"one ", b"two ", b"none"]


def test_the_decorator_marks_and_returns_the_function():
    def plain(event, context):
        yield b"x"

    assert fastric.streaming(plain) is plain
    assert content_type_of(plain) == "application/octet-stream"
    assert list(plain({}, None)) == [b"x"]  # still a generator for the user's own tests

    @fastric.streaming(content_type="text/event-stream")
    async def sse(event, context):
        yield "data: x\n\n"

    assert content_type_of(sse) == "text/event-stream"
    assert is_async_handler(sse) and is_async_generator_handler(sse)
    assert content_type_of(lambda event, context: None) is None


def test_wrappers_of_a_streaming_handler_stream_too():
    @fastric.streaming(content_type="text/plain")
    def inner(event, context):
        yield "x"

    @functools.wraps(inner)  # what handler decorators (logging, tracing) do: the mark comes along
    def wrapper(event, context):
        return inner(event, context)

    assert content_type_of(wrapper) == "text/plain"
    assert content_type_of(functools.partial(inner)) == "text/plain"
    with pytest.raises(TypeError, match="content_type="):
        fastric.streaming("text/plain")


def test_the_decorator_wraps_what_cannot_carry_the_mark():
    class Model:
        async def stream(self, event, context):
            yield b"token"

    marked = fastric.streaming(Model().stream)  # a bound method takes no attributes
    assert content_type_of(marked) == "application/octet-stream"
    assert is_async_handler(marked)


@pytest.mark.parametrize("content_type", ["text/plain\r\nX-Injected: 1", "tëxt/plain", 42])
def test_a_content_type_that_cannot_be_sent_fails_at_decoration(content_type):
    with pytest.raises(ValueError):
        fastric.streaming(content_type=content_type)


def test_http_prelude_is_json_then_eight_nul_bytes():
    prelude = fastric.http_prelude(status_code=201, headers={"Content-Type": "text/html"}, cookies=["a=b"])
    assert prelude.data.endswith(NUL8)
    assert json.loads(prelude.data[:-8]) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/html"},
        "cookies": ["a=b"],
    }
    assert json.loads(fastric.http_prelude().data[:-8]) == {"statusCode": 200, "headers": {}, "cookies": []}
    with pytest.raises(TypeError):
        fastric.http_prelude(status_code="200")


# -- the streamed POST ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", BOTH)
def test_streamed_post_head_and_chunks(handler):
    with RuntimeAPIServer() as srv:
        rid = srv.add_invocation(
            {"items": ["héllo ✓", {"bytes": "b"}, {"empty": 0}, {"bytearray": "ba"}, {"memoryview": "mv"}]},
            headers={"Lambda-Runtime-Invocation-Id": "inv-7"},
        )
        run = fastric_run(handler, srv)
    assert run.returncode == 1  # the scenario ends with a 500 on /next
    (post,) = posts(srv)
    assert post.path == f"/2018-06-01/runtime/invocation/{rid}/response"
    assert post.header_names() == [
        "host",
        "user-agent",
        "content-type",
        "lambda-runtime-function-response-mode",
        "lambda-runtime-invocation-id",
        "transfer-encoding",
        "trailer",
    ]
    assert post.header("content-type") == "application/octet-stream"
    assert post.header("lambda-runtime-function-response-mode") == "streaming"
    assert post.header("lambda-runtime-invocation-id") == "inv-7"
    assert post.header("transfer-encoding") == "chunked"
    assert post.header("trailer") == TRAILER
    assert post.chunks == ["héllo ✓".encode(), b"b", b"ba", b"mv"]  # one chunk per item; empty items skipped
    assert post.trailers == []
    assert {r.conn for r in srv.requests} == {1}


def test_declared_content_type():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"tokens": ["a", "b"]})
        fastric_run("stream_app.sse", srv)
    (post,) = posts(srv)
    assert post.header("content-type") == "text/event-stream"
    assert post.chunks == [b"data: a\n\n", b"data: b\n\n"]


@pytest.mark.parametrize("handler", BOTH)
def test_http_prelude_first(handler):
    prelude = {"status_code": 201, "headers": {"Content-Type": "text/html"}, "cookies": ["a=b"]}
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"items": [{"prelude": prelude}, "<html>", "</html>"]})
        fastric_run(handler, srv)
    (post,) = posts(srv)
    assert post.header("content-type") == "application/vnd.awslambda.http-integration-response"
    assert post.chunks[0].endswith(NUL8)
    assert json.loads(post.chunks[0][:-8]) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/html"},
        "cookies": ["a=b"],
    }
    assert post.body == post.chunks[0] + b"<html></html>"


@pytest.mark.parametrize("handler", BOTH)
def test_an_empty_stream_is_a_streamed_post_with_no_chunks(handler):
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"items": []})
        fastric_run(handler, srv)
    (post,) = posts(srv)
    assert post.path.endswith("/response") and post.header("transfer-encoding") == "chunked"
    assert post.chunks == [] and post.trailers == []


@pytest.mark.parametrize(
    ("handler", "event", "chunks"),
    [
        ("stream_app.returns_list", {"items": ["a", {"bytes": "b"}]}, [b"a", b"b"]),
        ("stream_app.returns_text", {"text": "whole"}, [b"whole"]),
        ("stream_app.returns_async_iterable", {"items": ["x", "y"]}, [b"x", b"y"]),
        ("stream_app.sync_returns_async_iterable", {"items": ["x", "y"]}, [b"x", b"y"]),
    ],
)
def test_a_streaming_handler_may_return_an_iterable(handler, event, chunks):
    with RuntimeAPIServer() as srv:
        srv.add_invocation(event)
        fastric_run(handler, srv)
    (post,) = posts(srv)
    assert post.chunks == chunks


# -- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", BOTH)
def test_an_error_before_the_first_item_is_posted_to_error(handler):
    with RuntimeAPIServer() as srv:
        rid = srv.add_invocation({"items": [], "raise": "early"})
        run = fastric_run(handler, srv)
    (post,) = posts(srv)
    assert post.path == f"/2018-06-01/runtime/invocation/{rid}/error"
    assert post.header("content-type") == "application/json"
    assert post.header("lambda-runtime-function-xray-error-cause") is not None
    document = post.json()
    assert (document["errorType"], document["errorMessage"], document["requestId"]) == ("ValueError", "early", rid)
    assert b"[ERROR] ValueError: early" in run.stdout


@pytest.mark.parametrize("handler", BOTH)
def test_an_error_after_output_ends_the_stream_with_trailers(handler):
    with RuntimeAPIServer() as srv:
        rid = srv.add_invocation({"items": ["partial ", "output"], "raise": "late"})
        after = srv.add_invocation({"items": ["next"]})
        run = fastric_run(handler, srv)
    first, second = posts(srv)
    assert first.path.endswith(f"/{rid}/response") and first.chunks == [b"partial ", b"output"]
    error_type, document = trailer_document(first)
    assert error_type == "ValueError"
    assert (document["errorType"], document["errorMessage"], document["requestId"]) == ("ValueError", "late", rid)
    assert any("in finish" in frame for frame in document["stackTrace"])
    assert b"[ERROR] ValueError: late" in run.stdout  # logged as any invocation error
    # the loop goes on
    assert second.path.endswith(f"/{after}/response") and second.chunks == [b"next"] and second.trailers == []


@pytest.mark.parametrize("handler", BOTH)
def test_an_item_that_cannot_be_sent(handler):
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"items": [{"int": 7}]})
        srv.add_invocation({"items": ["fine", {"int": 7}]})
        srv.add_invocation({"items": ["fine", {"prelude": {}}]})
        fastric_run(handler, srv)
    refused, late, late_prelude = posts(srv)
    expected = "Unable to marshal response: a streamed item must be bytes, bytearray, memoryview or str, not int"
    assert refused.path.endswith("/error")
    assert (refused.json()["errorType"], refused.json()["errorMessage"]) == ("Runtime.MarshalError", expected)
    error_type, document = trailer_document(late)
    assert late.chunks == [b"fine"] and (error_type, document["errorMessage"]) == ("Runtime.MarshalError", expected)
    error_type, document = trailer_document(late_prelude)
    assert error_type == "Runtime.MarshalError"
    assert document["errorMessage"] == (
        "Unable to marshal response: http_prelude(...) must be the first item a streaming handler yields"
    )


def test_a_stream_abandoned_on_a_refused_item_is_closed():
    with RuntimeAPIServer() as srv:
        rid = srv.add_invocation({})
        run = fastric_run("stream_app.reports_close", srv)
    (post,) = posts(srv)
    assert post.chunks == [b"one"] and trailer_document(post)[0] == "Runtime.MarshalError"
    assert f"closed {rid}".encode() in run.stdout


def test_a_streaming_handler_that_returns_nothing_streamable():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({})
        fastric_run("stream_app.returns_none", srv)
    (post,) = posts(srv)
    assert post.path.endswith("/error") and post.json()["errorType"] == "Runtime.MarshalError"
    assert post.json()["errorMessage"] == (
        "Unable to marshal response: a streaming handler must be a generator or return an iterable, not NoneType"
    )


@pytest.mark.parametrize("handler", ["stream_app.unmarked_generator", "stream_app.unmarked_async_generator"])
def test_an_unmarked_generator_is_refused_as_by_awslambdaric(handler):
    documents = []
    for client in ("fastric", "awslambdaric"):
        with RuntimeAPIServer() as srv:
            srv.add_invocation({})
            run_client(client, handler, srv, cwd=FIXTURES)
        (post,) = posts(srv)
        assert post.path.endswith("/error")
        documents.append({key: post.json()[key] for key in ("errorType", "errorMessage", "stackTrace")})
    assert documents[0] == documents[1]
    assert documents[0]["errorType"] == "Runtime.MarshalError"


@pytest.mark.parametrize("handler", BOTH)
def test_a_refused_streamed_post_is_logged_and_the_loop_goes_on(handler):
    too_large = (
        413,
        {"Content-Type": "application/json"},
        b'{"errorMessage":"too large","errorType":"RequestTooLarge"}',
    )
    respond = lambda r: too_large if r.path.endswith("/response") and not r.chunks[0].startswith(b"ok") else None
    with RuntimeAPIServer(respond) as srv:
        srv.add_invocation({"items": ["big"]})
        srv.add_invocation({"items": ["ok"]})
        run = fastric_run(handler, srv)
    assert [p.chunks for p in posts(srv)] == [[b"big"], [b"ok"]]
    assert b"Failed to post handler success response. Http response code: 413. " in run.stdout
    assert b'{"errorMessage":"too large"' in run.stdout


@pytest.mark.parametrize("handler", ["stream_app.big", "stream_app.async_big"])
def test_an_answer_before_the_stream_ends_is_read_and_logged(handler):
    """A Runtime API that refuses a stream while it is still coming (413, connection closed) breaks the writes;
    the runtime still reads the answer, logs it as for a buffered POST, and goes on on a new connection."""
    refusal = b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 10\r\n\r\ntoo large!"
    with StreamRecorder(on_chunk=lambda post, chunk: refusal) as srv:
        srv.add_invocation({"total": 64 * MiB})
        run = fastric_run(handler, srv)
    assert b"Failed to post handler success response. Http response code: 413. too large!" in run.stdout
    assert srv.paths == [NEXT, srv.posts[0].path, NEXT]  # the next /next came, on a new connection
    assert len(srv.posts[0].chunks) == 1 and not srv.posts[0].done


def test_streams_interleave_under_managed_instances_concurrency():
    """`AWS_LAMBDA_MAX_CONCURRENCY`: async streaming handlers on concurrent pollers, each stream on its own
    connection, a failing one ending in trailers without touching the others."""
    with RuntimeAPIServer() as srv:
        srv.hold_next_when_empty = True
        proc = subprocess.Popen(
            client_command("fastric", "stream_app.async_stream"),
            cwd=FIXTURES,
            env={**base_env(srv.address), "AWS_LAMBDA_MAX_CONCURRENCY": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            ids = [srv.add_invocation({"items": [f"{n}a", f"{n}b", f"{n}c"]}) for n in range(5)]
            failing = srv.add_invocation({"items": ["x"], "raise": "late"})
            assert srv.wait_for(lambda requests: len([r for r in requests if r.method == "POST"]) == 6)
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    by_id = {r.path.split("/")[-2]: r for r in posts(srv)}
    for n, rid in enumerate(ids):
        assert by_id[rid].chunks == [f"{n}a".encode(), f"{n}b".encode(), f"{n}c".encode()]
        assert by_id[rid].trailers == []
    assert by_id[failing].chunks == [b"x"] and trailer_document(by_id[failing])[0] == "ValueError"
    assert len({r.conn for r in posts(srv)}) > 1


# -- pipelining ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", BOTH)
def test_the_next_get_follows_the_last_chunk_in_one_write(handler):
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"items": ["a", "b"]})
        srv.add_invocation({"items": ["c"], "raise": "late"})
        fastric_run(handler, srv)
    assert [r.method for r in srv.requests] == ["GET", "POST", "GET", "POST", "GET"]
    assert [r.buffered_after > 0 for r in posts(srv)] == [True, True]
    assert {r.conn for r in srv.requests} == {1}


@pytest.mark.parametrize("handler", BOTH)
def test_without_a_date_header_the_next_get_waits_for_the_answer(handler):
    with RuntimeAPIServer() as srv:
        srv.send_date = False
        srv.add_invocation({"items": ["a", "b"]})
        srv.add_invocation({"items": ["c"]})
        fastric_run(handler, srv)
    assert [r.method for r in srv.requests] == ["GET", "POST", "GET", "POST", "GET"]
    assert [r.buffered_after for r in srv.requests] == [0, 0, 0, 0, 0]


# -- delivery, backpressure, memory (StreamRecorder) --------------------------------------------------------------


@pytest.mark.parametrize("handler", ["stream_app.gated", "stream_app.async_gated"])
def test_each_item_reaches_the_runtime_api_before_the_next_is_made(handler, tmp_path):
    """The handler waits for the server to acknowledge item i (a file written when its chunk arrived) before it
    makes item i+1: a runtime that held items back would stall it (and fail it, after 10 s)."""
    count = 6

    def acknowledge(post, chunk):
        (tmp_path / f"ack-{len(post.chunks) - 1}").touch()

    with StreamRecorder(on_chunk=acknowledge) as srv:
        srv.add_invocation({"count": count, "dir": str(tmp_path)})
        run = fastric_run(handler, srv)
    (post,) = srv.posts
    assert [chunk.data for chunk in post.chunks] == [f"item {i};".encode() for i in range(count)], run.stdout
    assert post.trailers == {}
    produced = [int((tmp_path / f"produced-{i}").read_text()) for i in range(count)]
    arrived = [chunk.at_ns for chunk in post.chunks]
    for i in range(count):  # made → on the wire → next made, for every item (one monotonic clock on Linux)
        assert produced[i] <= arrived[i]
        if i + 1 < count:
            assert arrived[i] <= produced[i + 1]


@pytest.mark.parametrize("handler", ["stream_app.big", "stream_app.async_big"])
def test_a_runtime_api_that_stops_reading_holds_the_handler_back(handler, tmp_path):
    progress = tmp_path / "progress"
    total = 64 * MiB

    def stop_reading_after_the_first(post, chunk):
        if len(post.chunks) == 1:
            srv.reading.clear()

    with StreamRecorder(keep_data=False, receive_buffer=65536, on_chunk=stop_reading_after_the_first) as srv:
        srv.add_invocation({"total": total, "progress": str(progress)})
        env = base_env(srv.address)
        with subprocess.Popen(client_command("fastric", handler), cwd=FIXTURES, env=env) as proc:
            try:
                produced = _settled(progress)
                srv.reading.set()
                assert srv.wait_for(lambda: srv.posts and srv.posts[0].done, timeout=60)
            finally:
                proc.kill()
    # with the reader stopped, the handler got no further than what socket buffers hold
    print(f"produced {produced} bytes while the reader was stopped")
    assert 0 < produced <= 16 * MiB
    assert srv.posts[0].size == total and srv.posts[0].trailers == {}


def _settled(progress, interval=0.2):
    """The handler's progress (bytes produced) once it has stopped changing."""
    last, same = -1, 0
    for _ in range(300):
        time.sleep(interval)
        value = int(progress.read_bytes() or 0) if progress.exists() else 0
        same = same + 1 if value == last else 0
        if same >= 3 and value:
            return value
        last = value
    raise AssertionError("the handler never stopped producing")


@pytest.mark.parametrize("handler", ["stream_app.big", "stream_app.async_big"])
def test_memory_stays_flat_over_a_64_mib_stream(handler):
    total = 64 * MiB
    with StreamRecorder(keep_data=False) as srv:
        srv.hold_next = True
        srv.add_invocation({"total": total})
        with subprocess.Popen(client_command("fastric", handler), cwd=FIXTURES, env=base_env(srv.address)) as proc:
            try:
                assert srv.wait_for(lambda: len(srv.paths) == 3, timeout=60)  # GET, POST, and the next GET
                with open(f"/proc/{proc.pid}/status") as status:
                    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
            finally:
                srv.release()
                proc.wait(timeout=10)
    (post,) = srv.posts
    assert post.done and post.size == total and len(post.chunks) == total // 65536
    print(f"peak RSS {peak_kb} kB")
    assert peak_kb < 80 * 1024, f"peak RSS {peak_kb} kB"
