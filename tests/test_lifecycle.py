"""Shutdown hooks and after-response work on the wire: fastric as a subprocess against a Runtime API + Extensions
API on 127.0.0.1 (`lambda_api.py`), for both loops."""

from __future__ import annotations

import json
import os

import pytest
from lambda_api import EVENT_NEXT, IDENTIFIER, NEXT, REGISTER, LambdaAPIServer, Runtime, settle

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "lifecycle")
BOTH_LOOPS = pytest.mark.parametrize("loop", ["handler", "async_handler"])


def started(srv: LambdaAPIServer, nexts: int = 2):
    """Wait until fastric has asked for `nexts` invocations (it then waits on the last one)."""
    assert srv.wait_for(lambda reqs: sum(r.path == NEXT for r in reqs) >= nexts)
    settle()


def idle_runtime(srv: LambdaAPIServer, handler: str, env: dict | None = None) -> Runtime:
    """fastric serving one invocation, then waiting on /next."""
    srv.hold_next_when_empty = True
    srv.add_invocation({"op": "echo"})
    runtime = Runtime(handler, srv, FIXTURES, env)
    started(srv)
    return runtime


def lines(output: bytes) -> list[str]:
    return output.decode().splitlines()


# -- registration -------------------------------------------------------------------------------------------------


@BOTH_LOOPS
def test_hooks_register_the_extension_before_the_first_next(loop):
    with LambdaAPIServer() as srv, idle_runtime(srv, f"hooks.{loop}") as runtime:
        assert srv.wait_for(lambda reqs: any(r.path == EVENT_NEXT for r in reqs))
        assert runtime.terminate() == 0
    register, event_next = srv.requests_to(REGISTER)[0], srv.requests_to(EVENT_NEXT)[0]
    assert srv.paths()[0] == REGISTER and srv.paths().index(NEXT) > 0
    assert register.method == "POST" and event_next.method == "GET"
    assert register.header("lambda-extension-name") == "fastric-shutdown-hooks"
    assert register.header("content-type") == "application/json"
    assert json.loads(register.body) == {"events": []}
    assert event_next.header("lambda-extension-identifier") == IDENTIFIER
    assert srv.count(REGISTER) == 1 and srv.count(EVENT_NEXT) == 1
    # the parked event/next has a connection of its own; the invocations keep theirs
    runtime_conns = {r.conn for r in srv.requests if r.path.startswith("/2018-06-01/")}
    assert runtime_conns == {srv.requests_to(NEXT)[0].conn}
    assert event_next.conn not in runtime_conns


@BOTH_LOOPS
def test_nothing_is_registered_without_hooks_or_a_sigterm_handler(loop):
    with LambdaAPIServer() as srv, idle_runtime(srv, f"plain.{loop}") as runtime:
        assert runtime.terminate() == -15  # SIGTERM's default action, untouched
    assert not [p for p in srv.paths() if p.startswith("/2020-01-01/")]


@BOTH_LOOPS
def test_a_refused_registration_is_one_log_line_and_the_runtime_goes_on(loop):
    with LambdaAPIServer(register_status=403) as srv:
        runtime = idle_runtime(srv, f"hooks.{loop}")
        with runtime:
            assert runtime.terminate() == 0
    (line,) = [x for x in lines(runtime.stdout) if "fastric-shutdown-hooks" in x]
    assert "LAMBDA_RUNTIME Extension fastric-shutdown-hooks not registered" in line and "403" in line
    assert srv.count(EVENT_NEXT) == 0
    assert [r.json() for r in srv.requests if r.method == "POST" and "/runtime/" in r.path] == [{"op": "echo"}]
    assert "hook first" in lines(runtime.stdout)  # the hooks still run on a SIGTERM


def test_snapstart_registers_before_the_snapshot():
    with LambdaAPIServer() as srv:
        srv.hold_next_when_empty = True
        srv.add_invocation({"op": "echo"})
        with Runtime("hooks.handler", srv, FIXTURES, {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}) as runtime:
            started(srv, 1)
            assert runtime.terminate() == 0
    paths = srv.paths()
    assert paths.index(REGISTER) < paths.index("/2018-06-01/runtime/restore/next") < paths.index(NEXT)


# -- SIGTERM ------------------------------------------------------------------------------------------------------


def test_sigterm_while_idle_runs_sync_hooks_in_order_then_async_ones():
    with LambdaAPIServer() as srv, idle_runtime(srv, "hooks.handler") as runtime:
        assert runtime.terminate() == 0
    assert lines(runtime.stdout) == ["hook first", "hook second", "async hook done, on the handler's loop: False"]


def test_async_hooks_run_on_the_async_handlers_loop():
    with LambdaAPIServer() as srv, idle_runtime(srv, "hooks.async_handler") as runtime:
        assert runtime.terminate() == 0
    assert lines(runtime.stdout) == ["hook first", "hook second", "async hook done, on the handler's loop: True"]


@BOTH_LOOPS
def test_sigterm_in_the_middle_of_an_invocation_runs_the_hooks_and_exits_0(loop):
    with LambdaAPIServer() as srv:
        srv.hold_next_when_empty = True
        srv.add_invocation({"op": "sleep"})
        with Runtime(f"hooks.{loop}", srv, FIXTURES) as runtime:
            assert srv.wait_for(lambda reqs: any(r.path == "/test/started" for r in reqs))
            settle()
            assert runtime.terminate() == 0
    assert lines(runtime.stdout)[:2] == ["hook first", "hook second"]
    assert lines(runtime.stdout)[2].startswith("async hook done")
    assert not [r for r in srv.requests if r.method == "POST" and "/runtime/" in r.path]  # abandoned


@BOTH_LOOPS
def test_a_hook_that_overruns_the_budget_is_abandoned_with_a_log_line(loop):
    with LambdaAPIServer() as srv:
        runtime = idle_runtime(srv, f"hooks.{loop}", {"HOOKS": "first,slow,second"})
        with runtime:
            assert runtime.terminate() == 0
    out = lines(runtime.stdout)
    assert out[:2] == ["hook first", "hook slow begins"]
    assert (
        "LAMBDA_RUNTIME on_shutdown hook slow did not finish within 450 ms of SIGTERM: abandoned, exiting" in (out[2])
    )
    assert "hook second" not in out and "hook slow ends" not in out


@BOTH_LOOPS
def test_an_async_hook_that_overruns_is_abandoned_and_the_others_finish(loop):
    with LambdaAPIServer() as srv:
        runtime = idle_runtime(srv, f"hooks.{loop}", {"HOOKS": "async_slow,async,first"})
        with runtime:
            assert runtime.terminate() == 0
    out = lines(runtime.stdout)
    assert out[0] == "hook first" and out[1].startswith("async hook done")
    assert out[2].endswith("LAMBDA_RUNTIME on_shutdown hook async_slow did not finish within 450 ms: abandoned")
    assert "async slow ends" not in out


def test_a_loop_blocked_by_the_invocation_cannot_delay_the_exit():
    """An async handler blocking its loop in a sync call: the async hooks cannot run; the budget still holds."""
    with LambdaAPIServer() as srv:
        srv.hold_next_when_empty = True
        srv.add_invocation({"op": "block"})
        with Runtime("hooks.async_handler", srv, FIXTURES) as runtime:
            assert srv.wait_for(lambda reqs: any(r.path == "/test/started" for r in reqs))
            settle()
            assert runtime.terminate() == 0
    out = lines(runtime.stdout)
    assert out[:2] == ["hook first", "hook second"]
    assert "async on_shutdown hooks async_close did not finish within 450 ms of SIGTERM" in out[2]


@BOTH_LOOPS
def test_a_failing_hook_is_logged_and_the_next_one_runs(loop):
    with LambdaAPIServer() as srv:
        runtime = idle_runtime(srv, f"hooks.{loop}", {"HOOKS": "failing,first"})
        with runtime:
            assert runtime.terminate() == 0
    out = runtime.stdout.decode()
    assert "[ERROR] RuntimeError: on_shutdown hook failing failed: hook broke" in out
    assert out.index("hook broke") < out.index("hook first")


@BOTH_LOOPS
def test_a_sigterm_handler_of_the_functions_own_registers_and_runs_as_installed(loop):
    with LambdaAPIServer() as srv:
        runtime = idle_runtime(srv, f"own_sigterm.{loop}", {"OWN_EXIT": "3"})
        with runtime:
            assert srv.wait_for(lambda reqs: any(r.path == EVENT_NEXT for r in reqs))
            assert runtime.terminate() == 3
    assert srv.paths()[0] == REGISTER
    assert lines(runtime.stdout) == ["own handler ran"]


@BOTH_LOOPS
def test_hooks_run_before_the_functions_own_sigterm_handler(loop):
    with LambdaAPIServer() as srv:
        runtime = idle_runtime(srv, f"own_sigterm.{loop}", {"BOTH": "1", "OWN_EXIT": "0"})
        with runtime:
            assert runtime.terminate() == 0
    assert srv.count(REGISTER) == 1
    assert lines(runtime.stdout) == ["hook ran", "own handler ran"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_workers_register_once_and_each_runs_its_hooks(workers):
    """Plain handlers: N processes. Async handlers: FASTRIC_WORKERS processes with N/K invocations each in flight."""
    env = {"AWS_LAMBDA_MAX_CONCURRENCY": "2", "FASTRIC_WORKERS": workers}
    with LambdaAPIServer() as srv:
        srv.hold_next_when_empty = True
        for handler, processes in (("hooks.handler", 2), ("hooks.async_handler", int(workers))):
            srv.requests.clear()
            with Runtime(handler, srv, FIXTURES, env) as runtime:
                assert srv.wait_for(lambda reqs: sum(r.path == NEXT for r in reqs) == 2)
                settle()
                assert runtime.terminate() == 0
            assert srv.count(REGISTER) == 1, handler
            assert srv.paths().index(REGISTER) < srv.paths().index(NEXT)
            assert lines(runtime.stdout).count("hook first") == processes
            assert lines(runtime.stdout).count("hook second") == processes


# -- after_response -----------------------------------------------------------------------------------------------


def runtime_paths(srv: LambdaAPIServer) -> list[str]:
    """The requests in order, invocation ids and the runtime prefix shortened."""
    short = []
    for r in srv.requests:
        path = r.path.replace("/2018-06-01/runtime", "")
        short.append(path.rsplit("/", 1)[-1] if path.startswith("/invocation/rid") else path)
    return short


@BOTH_LOOPS
@pytest.mark.parametrize("op", ["callable", "awaitable"])
def test_after_response_work_runs_between_the_post_and_the_next_next(loop, op):
    with LambdaAPIServer() as srv:
        srv.add_invocation({"op": op})
        srv.add_invocation({"op": "none"})
        with Runtime(f"after.{loop}", srv, FIXTURES) as runtime:
            runtime.wait()
    assert runtime_paths(srv) == [
        "/invocation/next",
        "response",
        "/test/work-1",
        "/test/work-2",
        "/invocation/next",
        "response",
        "/invocation/next",
    ]
    first_post = srv.requests[1]
    assert first_post.buffered_after == 0  # no /next pipelined behind the POST: it waits for the work
    assert [r.json() for r in srv.requests if r.method == "POST"] == [{"result": op}, {"result": "none"}]


@BOTH_LOOPS
def test_after_response_work_runs_after_an_error_is_posted_too(loop):
    with LambdaAPIServer() as srv:
        srv.add_invocation({"op": "callable", "raise": True})
        with Runtime(f"after.{loop}", srv, FIXTURES) as runtime:
            runtime.wait()
    assert runtime_paths(srv) == ["/invocation/next", "error", "/test/work-1", "/test/work-2", "/invocation/next"]


@BOTH_LOOPS
def test_failing_after_response_work_is_logged_with_the_request_id_and_changes_nothing(loop):
    with LambdaAPIServer() as srv:
        rid = srv.add_invocation({"op": "failing"}, request_id="rid-failing-work")
        srv.add_invocation({"op": "none"})
        with Runtime(f"after.{loop}", srv, FIXTURES) as runtime:
            runtime.wait()
    assert runtime_paths(srv) == [
        "/invocation/next",
        "response",
        "/test/work-after-failure",
        "/invocation/next",
        "response",
        "/invocation/next",
    ]
    assert [r.json() for r in srv.requests if r.method == "POST"] == [{"result": "failing"}, {"result": "none"}]
    out = runtime.stdout.decode()
    assert f"[ERROR] ValueError: after_response work broken failed (request {rid}): work broke: on purpose" in out
    assert "after.py" in out  # the stack trace


@BOTH_LOOPS
def test_failing_after_response_work_in_json_logs_carries_the_request_id(loop):
    with LambdaAPIServer() as srv:
        rid = srv.add_invocation({"op": "failing"}, request_id="rid-json")
        with Runtime(f"after.{loop}", srv, FIXTURES, {"AWS_LAMBDA_LOG_FORMAT": "JSON"}) as runtime:
            runtime.wait()
    (record,) = [json.loads(x) for x in lines(runtime.stdout) if x.startswith("{") and "work broke" in x]
    assert record["requestId"] == rid and record["errorType"] == "ValueError" and record["level"] == "ERROR"


def test_with_invocations_in_flight_at_once_work_runs_after_its_own_response():
    """Managed Instances (an async handler, AWS_LAMBDA_MAX_CONCURRENCY=2 in one process): the slow invocation's
    work waits for the slow invocation's response, even though the fast one posts and drains first."""
    with LambdaAPIServer() as srv:
        srv.hold_next_when_empty = True
        slow = srv.add_invocation({"op": "mine", "name": "slow", "delay": 0.5})
        fast = srv.add_invocation({"op": "mine", "name": "fast", "delay": 0})
        with Runtime("after.async_handler", srv, FIXTURES, {"AWS_LAMBDA_MAX_CONCURRENCY": "2"}) as runtime:
            assert srv.wait_for(lambda reqs: srv.count("/test/work-slow") == 1)
            runtime.terminate()
    order = [r.path.rsplit("/", 1)[-1] for r in srv.requests if r.method == "POST" or r.path.startswith("/test/")]
    assert order == ["response", "work-fast", "response", "work-slow"]
    posts = [r.path for r in srv.requests if r.method == "POST"]
    assert posts == [
        f"/2018-06-01/runtime/invocation/{fast}/response",
        f"/2018-06-01/runtime/invocation/{slow}/response",
    ]


@BOTH_LOOPS
def test_invocations_without_after_response_work_keep_pipelining(loop):
    with LambdaAPIServer() as srv:
        srv.add_invocation({"op": "none"})
        srv.add_invocation({"op": "none"})
        with Runtime(f"after.{loop}", srv, FIXTURES) as runtime:
            runtime.wait()
    posts = [r for r in srv.requests if r.method == "POST"]
    assert posts[0].buffered_after > 0  # the next GET /next came in the POST's write
