"""Wire tests: fastric as a subprocess against the recording Runtime API on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from runtime_api import RuntimeAPIServer, base_env, run_client

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "core")
NEXT = "/2018-06-01/runtime/invocation/next"
# The installed package's own directory (not a "/fastric/" substring: a checkout is often named fastric too).
PACKAGE_DIR = os.path.join(importlib.util.find_spec("fastric").submodule_search_locations[0], "")


def fastric(handler, srv, **kwargs):
    kwargs.setdefault("cwd", FIXTURES)
    return run_client("fastric", handler, srv, **kwargs)


def post_paths(srv):
    return [r.path for r in srv.requests if r.method == "POST"]


def test_success_request_bytes():
    with RuntimeAPIServer() as srv:
        rid = srv.add_invocation({"op": "echo"}, request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd")
        run = fastric("app.handler", srv)
    assert run.returncode == 1  # the scenario ends with a 500 on /next
    first, post, last = srv.requests
    py = "%d.%d.%d" % sys.version_info[:3]
    assert (
        first.raw_head
        == (
            f"GET {NEXT} HTTP/1.1\r\nHost: {srv.address}\r\nUser-Agent: aws-lambda-python/{py} fastric/0.1.0\r\n\r\n"
        ).encode()
    )
    assert post.method == "POST" and post.path == f"/2018-06-01/runtime/invocation/{rid}/response"
    assert post.header_names() == ["host", "user-agent", "content-type", "content-length"]
    assert post.header("content-type") == "application/json"
    assert int(post.header("content-length")) == len(post.body)
    assert post.json() == {"op": "echo"}
    # one keep-alive connection for the whole life of the process
    assert {r.conn for r in srv.requests} == {1}
    assert last.path == NEXT
    assert b"Failed to get next invocation. Http Response code: 500" in run.stdout


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_without_a_date_header_each_response_is_awaited(handler):
    """A Runtime API that does not identify as a full HTTP/1.1 server (no Date header) gets strict
    request/response, as from awslambdaric: the GET /next is written only after the POST's answer."""
    with RuntimeAPIServer() as srv:
        srv.send_date = False
        srv.add_invocation({"op": "echo"})
        srv.add_invocation({"op": "raise"})
        fastric(handler, srv)
    assert [r.method for r in srv.requests] == ["GET", "POST", "GET", "POST", "GET"]
    assert [r.buffered_after for r in srv.requests] == [0, 0, 0, 0, 0]


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_a_server_that_reads_one_request_per_recv_still_works(handler):
    """A hand-rolled fake that treats each recv() as one request (dropping anything after it) and sends no
    Date header must see fastric behave exactly as awslambdaric: one request at a time."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen, events = [], [b'{"op": "echo", "n": 1}', b'{"op": "echo", "n": 2}']

    def serve():
        conn, _ = listener.accept()
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                head, _, body = data.partition(b"\r\n\r\n")
                line = head.split(b"\r\n")[0].decode()
                seen.append(line)
                if line.startswith("GET"):
                    if not events:
                        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                        return
                    event = events.pop(0)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: rid-%d\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(seen), len(event), event)
                    )
                else:
                    conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        env = base_env(f"127.0.0.1:{listener.getsockname()[1]}")
        proc = subprocess.run(
            [sys.executable, "-m", "fastric", handler], cwd=FIXTURES, env=env, capture_output=True, timeout=30
        )
        thread.join(timeout=10)
    finally:
        listener.close()
    assert proc.returncode == 1, proc.stderr
    assert seen == [
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1",
        "POST /2018-06-01/runtime/invocation/rid-1/response HTTP/1.1",
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1",
        "POST /2018-06-01/runtime/invocation/rid-3/response HTTP/1.1",
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1",
    ]


def test_posts_carry_the_next_request_in_the_same_write():
    """Plain def handlers: each /response or /error is followed by the next GET /next in one write
    (HTTP/1.1 pipelining), on the same connection; but the first invocation's, which start-up posts alone
    before it imports the hot path (nothing may run between a /next and its answer)."""
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "echo"})
        srv.add_invocation({"op": "raise"})
        srv.add_invocation({"op": "echo"})
        fastric("app.handler", srv)
    get1, post1, get2, post2, get3, post3, get4 = srv.requests
    assert [r.method for r in srv.requests] == ["GET", "POST", "GET", "POST", "GET", "POST", "GET"]
    assert post1.buffered_after == 0
    assert post2.buffered_after == post3.buffered_after == len(get2.raw_head)
    assert get2.raw_head == get1.raw_head and {r.conn for r in srv.requests} == {1}


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_invocation_id_is_echoed_on_response_and_error_only_when_present(handler):
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "echo"}, headers={"Lambda-Runtime-Invocation-Id": "inv-1"})
        srv.add_invocation({"op": "raise"}, headers={"Lambda-Runtime-Invocation-Id": "inv-2"})
        srv.add_invocation({"op": "echo"}, headers={"Lambda-Runtime-Invocation-Id": ""})
        srv.add_invocation({"op": "raise"})
        fastric(handler, srv)
    posted = [r for r in srv.requests if r.method == "POST"]
    assert [r.header("lambda-runtime-invocation-id") for r in posted] == ["inv-1", "inv-2", None, None]
    assert [r.path.rsplit("/", 1)[1] for r in posted] == ["response", "error", "response", "error"]


def test_error_post_headers():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "raise", "x": 1}, request_id="rid-e")
        fastric("app.handler", srv)
    err = srv.requests[1]
    assert err.path == "/2018-06-01/runtime/invocation/rid-e/error"
    assert err.header("content-type") == "application/json"
    assert err.header("lambda-runtime-function-error-type") is None
    cause = json.loads(err.header("lambda-runtime-function-xray-error-cause"))
    assert cause["working_directory"] == FIXTURES
    assert cause["exceptions"][0]["type"] == "ValueError"
    assert cause["exceptions"][0]["stack"][0]["label"] == "handler"
    assert cause["paths"] == [os.path.join(FIXTURES, "app.py")]
    assert err.json()["errorMessage"] == "bad value: 1"
    assert int(err.header("content-length")) == len(err.body)


def test_xray_cause_is_dropped_at_one_mebibyte():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "raise", "x": "z" * (1024 * 1024)})
        srv.add_invocation({"op": "raise", "x": "z" * 1000})
        fastric("app.handler", srv)
    big, small = [r for r in srv.requests if r.method == "POST"]
    assert big.header("lambda-runtime-function-xray-error-cause") is None
    assert len(big.json()["errorMessage"]) > 1024 * 1024
    assert small.header("lambda-runtime-function-xray-error-cause") is not None


@pytest.mark.parametrize("status", [400, 403, 413])
@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_refused_post_is_logged_and_the_loop_goes_on(status, handler):
    def respond(request):
        if request.method == "POST" and "/rid-refused/" in request.path:
            return status, {"Content-Type": "application/json"}, b'{"errorMessage":"no","errorType":"Refused"}'
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        srv.add_invocation({"op": "echo"}, request_id="rid-refused")
        srv.add_invocation({"op": "echo"}, request_id="rid-ok")
        run = fastric(handler, srv)
    # never an /error after a refused /response; the next invocation is served
    assert post_paths(srv) == [
        "/2018-06-01/runtime/invocation/rid-refused/response",
        "/2018-06-01/runtime/invocation/rid-ok/response",
    ]
    lines = [line for line in run.stdout.splitlines() if b"LAMBDA_RUNTIME" in line]
    assert len(lines) == 2
    assert re.fullmatch(
        rb"\[ERROR\] \[\d+\] LAMBDA_RUNTIME Failed to post handler success response\. "
        rb"Http response code: %d\. .*Refused.*" % status,
        lines[0],
    )


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_oversized_response_gets_413_and_the_loop_goes_on(handler):
    limit = 6 * 1024 * 1024 + 100

    def respond(request):
        if request.path.endswith("/response") and len(request.body) > limit:
            return (
                413,
                {},
                b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
                b'"errorType":"RequestEntityTooLarge"}',
            )
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        srv.add_invocation({"op": "big", "n": 7_000_000})
        srv.add_invocation({"op": "echo"}, request_id="rid-after")
        run = fastric(handler, srv)
    assert post_paths(srv)[-1] == "/2018-06-01/runtime/invocation/rid-after/response"
    assert not [p for p in post_paths(srv) if p.endswith("/error")]
    assert b"Http response code: 413" in run.stdout


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_500_on_post_exits_promptly(handler):
    def respond(request):
        if request.method == "POST":
            return 500, {}, b'{"errorType":"Container error"}'
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        srv.add_invocation({"op": "echo"})
        srv.add_invocation({"op": "echo"})
        run = fastric(handler, srv)
    assert run.returncode == 1
    assert len(post_paths(srv)) == 1  # the second invocation is never handled
    assert b"Http response code: 500" in run.stdout


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_dropped_connection_is_reopened_once(handler):
    drops = {"n": 0}

    def respond(request):
        if request.path == NEXT and drops["n"] < 1:
            drops["n"] += 1
            return "drop"
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        srv.add_invocation({"op": "echo"}, request_id="rid-1")
        run = fastric(handler, srv)
    assert post_paths(srv) == ["/2018-06-01/runtime/invocation/rid-1/response"]
    assert [r.conn for r in srv.requests] == [1, 2, 2, 2]
    assert run.returncode == 1  # ended by the scenario's final 500


def test_connection_dropped_twice_exits_with_a_clear_line():
    def respond(request):
        return "drop" if request.path == NEXT else None

    with RuntimeAPIServer(respond=respond) as srv:
        srv.add_invocation({"op": "echo"})
        run = fastric("app.handler", srv)
    assert run.returncode == 1
    assert len(srv.requests) == 2 and {r.conn for r in srv.requests} == {1, 2}
    assert b"Failed to get next invocation. No Response from endpoint" in run.stdout


def test_unreachable_runtime_api_exits_1():
    with RuntimeAPIServer() as srv:
        address = srv.address
    env = base_env(address)
    proc = subprocess.run(
        [sys.executable, "-m", "fastric", "app.handler"], cwd=FIXTURES, env=env, capture_output=True, timeout=30
    )
    assert proc.returncode == 1
    assert b"No Response from endpoint" in proc.stdout


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_server_closing_after_each_response_is_followed(handler):
    def respond(request):
        if request.path == NEXT:
            return None
        return 202, {"Connection": "close"}, b'{"status":"OK"}'

    with RuntimeAPIServer(respond=respond) as srv:
        srv.add_invocation({"op": "echo", "n": 1})
        srv.add_invocation({"op": "echo", "n": 2})
        fastric(handler, srv)
    assert len(post_paths(srv)) == 2
    assert [r.conn for r in srv.requests] == [1, 1, 2, 2, 3]


def test_body_delimited_by_connection_close():
    served = {"n": 0}

    def respond(request):
        if request.path == NEXT and served["n"] == 0:
            served["n"] += 1
            return (
                200,
                {
                    "Lambda-Runtime-Aws-Request-Id": "rid-eof",
                    "Content-Type": "application/json",
                    "Content-Length": None,
                    "Connection": "close",
                },
                b'{"op": "echo", "eof": true}',
            )
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        fastric("app.handler", srv)
    assert srv.requests[1].path == "/2018-06-01/runtime/invocation/rid-eof/response"
    assert srv.requests[1].json() == {"op": "echo", "eof": True}
    assert srv.requests[1].conn == 2


def test_missing_content_type_means_json_and_odd_deadlines_mean_zero():
    with RuntimeAPIServer() as srv:
        srv.add_invocation(
            {"op": "context", "show_remaining": True},
            content_type=None,
            request_id="r1",
            headers={"Lambda-Runtime-Deadline-Ms": None},
        )
        srv.add_invocation({"op": "context", "show_remaining": True}, request_id="r2", deadline_ms=0)
        srv.add_invocation(
            {"op": "context", "show_remaining": True}, request_id="r3", headers={"Lambda-Runtime-Deadline-Ms": "12abc"}
        )
        run = fastric("app.handler", srv)
    bodies = [r.json() for r in srv.requests if r.method == "POST"]
    assert [b["remaining"] for b in bodies] == [0, 0, 0]
    assert [b["deadline"] for b in bodies] == [0, 0, 12]
    assert run.returncode == 1


def test_non_json_content_type_reaches_the_handler_as_bytes():
    with RuntimeAPIServer() as srv:
        srv.add_invocation(body=b"a=1&b=2", content_type="application/x-www-form-urlencoded")
        srv.add_invocation(body=b'{"op": "echo"}', content_type="application/json; charset=utf-8")
        fastric("app.handler", srv)
    bodies = [r.json() for r in srv.requests if r.method == "POST"]
    assert bodies == [{"type": "bytes", "value": "a=1&b=2"}, {"type": "bytes", "value": '{"op": "echo"}'}]


def test_bytes_result_is_sent_raw_as_application_unknown():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "bytes"})
        fastric("app.handler", srv)
    post = srv.requests[1]
    assert post.header("content-type") == "application/unknown"
    assert post.body == b"\x00\x01raw\xff"


@pytest.mark.parametrize("request_id", ["a b", "../x", "r\x7fid", "..", "rid/../../init"])
def test_unsafe_request_id_is_never_spliced_into_a_request_line(request_id):
    def respond(request):
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        srv.add_invocation({"op": "echo"}, request_id=request_id)
        srv.add_invocation({"op": "echo"}, request_id="rid-safe")
        run = fastric("app.handler", srv)
    assert post_paths(srv) == ["/2018-06-01/runtime/invocation/rid-safe/response"]
    assert b"Refusing request id" in run.stdout  # logged, never dropped silently
    assert [r.conn for r in srv.requests] == [1, 1, 1, 1]


def test_missing_request_id_exits():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "echo"}, headers={"Lambda-Runtime-Aws-Request-Id": None})
        run = fastric("app.handler", srv)
    assert run.returncode == 1 and post_paths(srv) == []
    assert b"Failed to find header lambda-runtime-aws-request-id" in run.stdout


def test_async_handler_keeps_module_state_and_loop_across_invocations():
    with RuntimeAPIServer() as srv:
        for _ in range(3):
            srv.add_invocation({})
        srv.add_invocation({"raise": True})
        srv.add_invocation({})
        fastric("async_app.handler", srv)
    posted = [r for r in srv.requests if r.method == "POST"]
    bodies = [r.json() for r in posted]
    assert [b.get("calls") for b in bodies] == [1, 2, 3, None, 5]
    assert all(b["same_loop"] and b["ticker_alive"] and b["ticks_positive"] for b in bodies if "calls" in b)
    assert [b["queued"] for b in bodies if "calls" in b] == [1, 2, 3, 5]
    assert bodies[3]["errorType"] == "ValueError" and bodies[3]["errorMessage"] == "async boom"
    assert "async_app.py" in bodies[3]["stackTrace"][-1]
    assert all(PACKAGE_DIR not in frame for frame in bodies[3]["stackTrace"])


@pytest.mark.parametrize(
    "order",
    [
        ["asyncio_run", "get_event_loop", "new_event_loop"],
        ["get_event_loop", "new_event_loop", "asyncio_run"],
        ["new_event_loop", "asyncio_run", "get_event_loop", "asyncio_run", "get_event_loop"],
    ],
)
def test_sync_handlers_run_as_if_no_loop_were_running(order):
    """asyncio.run, get_event_loop().run_until_complete and new_event_loop behave as under awslambdaric
    (plain Python), in every order -- including get_event_loop failing after asyncio.run on 3.10-3.13."""
    bodies = {}
    for client in ("awslambdaric", "fastric"):
        with RuntimeAPIServer() as srv:
            for op in order:
                srv.add_invocation({"op": op}, request_id=f"rid-{len(srv.queue)}")
            run_client(client, "app.handler", srv, cwd=FIXTURES, env={"PYTHONWARNINGS": "ignore"})
        bodies[client] = [r.json() for r in srv.requests if r.method == "POST"]
        for body in bodies[client]:
            if isinstance(body, dict):
                body["stackTrace"] = [f for f in body["stackTrace"] if "/awslambdaric/" not in f]
    assert bodies["fastric"] == bodies["awslambdaric"]
    assert bodies["fastric"][0] == f"{order[0].replace('asyncio_run', 'asyncio.run')} ok"


@pytest.mark.parametrize("handler", ["app.handler", "async_app.sigterm"])
def test_sigterm_reaches_user_code_while_waiting_for_next(handler):
    with RuntimeAPIServer() as srv:
        srv.hold_next_when_empty = True
        srv.add_invocation({"op": "sigterm_handler"})
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastric", handler],
            cwd=FIXTURES,
            env=base_env(srv.address),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert srv.wait_for(lambda reqs: len([r for r in reqs if r.path == NEXT]) == 2)
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
            proc.wait()
    assert b"GOT SIGTERM" in out, err
    assert proc.returncode == 0


def test_megabytes_of_output_do_not_lose_the_invocation():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "print_big", "n": 5_000_000})
        srv.add_invocation({"op": "echo"}, request_id="rid-after")
        run = fastric("app.handler", srv)
    assert [r.json() for r in srv.requests if r.method == "POST"] == ["printed", {"op": "echo"}]
    assert len(run.stdout) > 5_000_000


def test_handler_from_env_and_task_root(tmp_path):
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "echo"})
        env = base_env(srv.address)
        env.update({"_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": FIXTURES})
        proc = subprocess.run(
            [sys.executable, "-m", "fastric"], cwd=str(tmp_path), env=env, capture_output=True, timeout=30
        )
    assert proc.returncode == 1
    assert [r.json() for r in srv.requests if r.method == "POST"] == [{"op": "echo"}]


def test_no_handler_and_no_runtime_api_fail_clearly():
    env = {k: v for k, v in os.environ.items() if k not in ("_HANDLER", "AWS_LAMBDA_RUNTIME_API")}
    proc = subprocess.run([sys.executable, "-m", "fastric"], env=env, capture_output=True, timeout=30)
    assert proc.returncode == 2 and b"no handler given" in proc.stderr  # a usage error
    proc = subprocess.run([sys.executable, "-m", "fastric", "app.handler"], env=env, capture_output=True, timeout=30)
    assert proc.returncode == 1 and b"AWS_LAMBDA_RUNTIME_API is not set" in proc.stderr


def test_init_error_is_posted_once_then_exit_1():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({})
        run = fastric("import_error.handler", srv)
    assert run.returncode == 1
    (init,) = srv.requests
    assert init.raw_head.startswith(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n")
    assert init.header("lambda-runtime-function-error-type") == "Runtime.ImportModuleError"
    assert init.json() == {
        "errorMessage": "Unable to import module 'import_error': No module named 'nonexistent_dep'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert b"LAMBDA_WARNING: Unhandled exception." in run.stdout
    assert b"[ERROR] Runtime.ImportModuleError: Unable to import module" in run.stdout


def test_multi_concurrency_forks_workers_with_their_own_connections():
    with RuntimeAPIServer() as srv:
        srv.hold_next_when_empty = True
        for n in range(6):
            srv.add_invocation({"op": "echo", "n": n})
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastric", "app.handler"],
            cwd=FIXTURES,
            env={**base_env(srv.address), "AWS_LAMBDA_MAX_CONCURRENCY": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert srv.wait_for(lambda reqs: len([r for r in reqs if r.method == "POST"]) == 6)
            assert srv.wait_for(lambda reqs: len({r.conn for r in reqs if r.path == NEXT}) == 2)
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    assert sorted(r.json()["n"] for r in srv.requests if r.method == "POST") == list(range(6))


def test_snapstart_restore_sequence_matches_awslambdaric():
    seen = {}
    for client in ("awslambdaric", "fastric"):
        with RuntimeAPIServer() as srv:
            srv.add_invocation({"op": "echo"}, request_id="rid-snap")
            run = run_client(
                client, "snap_app.handler", srv, cwd=FIXTURES, env={"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
            )
        seen[client] = (
            [r.path for r in srv.requests],
            run.stdout.decode().splitlines()[:4],
            srv.requests[0].conn != srv.requests[1].conn,
        )
    assert seen["fastric"] == seen["awslambdaric"]
    assert seen["fastric"][0][:2] == ["/2018-06-01/runtime/restore/next", NEXT]
    assert seen["fastric"][1] == ["before 2", "before 1", "after 1", "after 2"]


@pytest.mark.parametrize(
    "fail, code, path, error_type",
    [
        ("before", 64, "/2018-06-01/runtime/init/error", "Runtime.BeforeSnapshotError"),
        ("after", 65, "/2018-06-01/runtime/restore/error", "Runtime.AfterRestoreError"),
    ],
)
def test_snapstart_hook_failures_match_awslambdaric(fail, code, path, error_type):
    seen = {}
    for client in ("awslambdaric", "fastric"):
        with RuntimeAPIServer() as srv:
            srv.add_invocation({"op": "echo"})
            run = run_client(
                client,
                "snap_app.handler",
                srv,
                cwd=FIXTURES,
                env={"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start", "SNAP_FAIL": fail},
            )
        posted = [r for r in srv.requests if r.method == "POST"]
        assert run.returncode == code, (client, run.stderr)
        assert [r.path for r in posted] == [path]
        assert posted[0].header("lambda-runtime-function-error-type") == error_type
        doc = posted[0].json()
        doc["stackTrace"] = [f for f in doc["stackTrace"] if "snap_app.py" in f]
        seen[client] = doc
    assert seen["fastric"] == seen["awslambdaric"]
    assert seen["fastric"]["errorType"] == "ValueError"


def test_plain_def_handler_returning_a_coroutine_is_awaited():
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"n": 1})
        srv.add_invocation({"op": "raise", "x": 2})
        srv.add_invocation({"n": 3})
        fastric("async_app.returns_coroutine", srv)
    bodies = [r.json() for r in srv.requests if r.method == "POST"]
    assert bodies[0] == {"n": 1} and bodies[2] == {"n": 3}
    assert bodies[1]["errorType"] == "ValueError" and "async_app.py" in bodies[1]["stackTrace"][-1]


def test_sync_handlers_never_import_an_event_loop():
    """Plain def handlers run on a blocking socket: neither asyncio nor uvloop is loaded for them."""
    with RuntimeAPIServer() as srv:
        srv.add_invocation({})
        fastric("plain_app.handler", srv)
    loaded = srv.requests[1].json()
    assert loaded == {"asyncio": False, "uvloop": False}


@pytest.mark.parametrize("handler", ["app.handler", "async_app.echo"])
def test_dropped_post_is_sent_again_with_its_pipelined_next(handler):
    drops = {"n": 0}

    def respond(request):
        if request.method == "POST" and drops["n"] < 1:
            drops["n"] += 1
            return "drop"
        return None

    with RuntimeAPIServer(respond=respond) as srv:
        for n in range(3):
            srv.add_invocation({"op": "echo", "n": n}, request_id=f"rid-{n}")
        run = fastric(handler, srv)
    posts = [(r.conn, r.path.split("/")[-2], r.json()["n"]) for r in srv.requests if r.method == "POST"]
    # the first POST is sent twice (the connection died under it); no invocation is lost or answered twice
    assert posts == [(1, "rid-0", 0), (2, "rid-0", 0), (2, "rid-1", 1), (2, "rid-2", 2)]
    assert run.returncode == 1 and b"Http Response code: 500" in run.stdout


def test_main_is_callable_like_awslambdaric_main():
    """Wrappers call `awslambdaric.__main__.main([anything, handler])`; fastric's takes the same arguments."""
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "echo", "via": "main"})
        proc = subprocess.run(
            [sys.executable, "-c", "from fastric.__main__ import main; main(['x', 'app.handler'])"],
            cwd=FIXTURES,
            env=base_env(srv.address),
            capture_output=True,
            timeout=30,
        )
    assert proc.returncode == 1, proc.stderr
    assert [r.json() for r in srv.requests if r.method == "POST"] == [{"op": "echo", "via": "main"}]
