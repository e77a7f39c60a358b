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


def sigterm_when_idle(handler: str, env: dict | None = None, register_status: int = 200):
    """fastric serves one invocation and waits on /next (its extension parked, if registered); then SIGTERM.
    The server (its record), the exit code, and the stopped runtime (its output)."""
    with LambdaAPIServer(register_status=register_status) as srv:
        srv.hold_next_when_empty = True
        srv.add_invocation({"op": "echo"})
        with Runtime(handler, srv, FIXTURES, env) as runtime:
            started(srv)
            if srv.count(REGISTER) and register_status == 200:
                assert srv.wait_for(lambda reqs: srv.count(EVENT_NEXT) == 1)
            code = runtime.terminate()
    return srv, code, runtime


def sigterm_mid_invocation(handler: str, op: str):
    """fastric handles an invocation that marks `/test/started`, then runs for long; SIGTERM then. As above."""
    with LambdaAPIServer() as srv:
        srv.hold_next_when_empty = True
        srv.add_invocation({"op": op})
        with Runtime(handler, srv, FIXTURES) as runtime:
            assert srv.wait_for(lambda reqs: any(r.path == "/test/started" for r in reqs))
            settle()
            code = runtime.terminate()
    return srv, code, runtime


def lines(output: bytes) -> list[str]:
    return output.decode().splitlines()


# -- registration -------------------------------------------------------------------------------------------------


@BOTH_LOOPS
def test_hooks_register_the_extension_before_the_first_next(loop):
    srv, code, _ = sigterm_when_idle(f"hooks.{loop}")
    assert code == 0
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
    srv, code, _ = sigterm_when_idle(f"plain.{loop}")
    assert code == -15  # SIGTERM's default action, untouched
    assert not [p for p in srv.paths() if p.startswith("/2020-01-01/")]


@BOTH_LOOPS
def test_a_refused_registration_is_one_log_line_and_the_runtime_goes_on(loop):
    srv, code, runtime = sigterm_when_idle(f"hooks.{loop}", register_status=403)
    assert code == 0
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
    _, code, runtime = sigterm_when_idle("hooks.handler")
    assert code == 0
    assert lines(runtime.stdout) == ["hook first", "hook second", "async hook done, on the handler's loop: False"]


def test_async_hooks_run_on_the_async_handlers_loop():
    _, code, runtime = sigterm_when_idle("hooks.async_handler")
    assert code == 0
    assert lines(runtime.stdout) == ["hook first", "hook second", "async hook done, on the handler's loop: True"]


@BOTH_LOOPS
def test_sigterm_in_the_middle_of_an_invocation_runs_the_hooks_and_exits_0(loop):
    srv, code, runtime = sigterm_mid_invocation(f"hooks.{loop}", "sleep")
    assert code == 0
    assert lines(runtime.stdout)[:2] == ["hook first", "hook second"]
    assert lines(runtime.stdout)[2].startswith("async hook done")
    assert not [r for r in srv.requests if r.method == "POST" and "/runtime/" in r.path]  # abandoned


@BOTH_LOOPS
def test_a_hook_that_overruns_the_budget_is_abandoned_with_a_log_line(loop):
    srv, code, runtime = sigterm_when_idle(f"hooks.{loop}", {"HOOKS": "first,slow,second"})
    assert code == 0
    out = lines(runtime.stdout)
    assert out[:2] == ["hook first", "hook slow begins"]
    assert (
        "LAMBDA_RUNTIME on_shutdown hook slow did not finish within 450 ms of SIGTERM: abandoned, exiting" in (out[2])
    )
    assert "hook second" not in out and "hook slow ends" not in out


@BOTH_LOOPS
def test_an_async_hook_that_overruns_is_abandoned_and_the_others_finish(loop):
    srv, code, runtime = sigterm_when_idle(f"hooks.{loop}", {"HOOKS": "async_slow,async,first"})
    assert code == 0
    out = lines(runtime.stdout)
    assert out[0] == "hook first" and out[1].startswith("async hook done")
    assert out[2].endswith("LAMBDA_RUNTIME on_shutdown hook async_slow did not finish within 450 ms: abandoned")
    assert "async slow ends" not in out


def test_a_loop_blocked_by_the_invocation_cannot_delay_the_exit():
    """An async handler blocking its loop in a sync call: the async hooks cannot run; the budget still holds."""
    _, code, runtime = sigterm_mid_invocation("hooks.async_handler", "block")
    assert code == 0
    out = lines(runtime.stdout)
    assert out[:2] == ["hook first", "hook second"]
    assert "async on_shutdown hooks async_close did not finish within 450 ms of SIGTERM" in out[2]


@BOTH_LOOPS
def test_a_failing_hook_is_logged_and_the_next_one_runs(loop):
    srv, code, runtime = sigterm_when_idle(f"hooks.{loop}", {"HOOKS": "failing,first"})
    assert code == 0
    out = runtime.stdout.decode()
    assert "[ERROR] RuntimeError: on_shutdown hook failing failed: hook broke" in out
    assert out.index("hook broke") < out.index("hook first")


@BOTH_LOOPS
def test_a_sigterm_handler_of_the_functions_own_registers_and_runs_as_installed(loop):
    srv, code, runtime = sigterm_when_idle(f"own_sigterm.{loop}", {"OWN_EXIT": "3"})
    assert code == 3
    assert srv.paths()[0] == REGISTER
    assert lines(runtime.stdout) == ["own handler ran"]


@BOTH_LOOPS
def test_hooks_run_before_the_functions_own_sigterm_handler(loop):
    srv, code, runtime = sigterm_when_idle(f"own_sigterm.{loop}", {"BOTH": "1", "OWN_EXIT": "0"})
    assert code == 0
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
            # counted in the bytes, not by line: print() writes the text and its newline apart, so the lines of
            # two processes writing at once can interleave
            assert runtime.stdout.count(b"hook first") == processes
            assert runtime.stdout.count(b"hook second") == processes


# -- after_response -----------------------------------------------------------------------------------------------


def runtime_paths(srv: LambdaAPIServer) -> list[str]:
    """The requests in order, invocation ids and the runtime prefix shortened."""
    short = []
    for r in srv.requests:
        path = r.path.replace("/2018-06-01/runtime", "")
        short.append(path.rsplit("/", 1)[-1] if path.startswith("/invocation/rid") else path)
    return short


def run_to_end(handler: str, *events: dict, env: dict | None = None, request_id: str | None = None):
    """fastric answers `events` (the first with `request_id`), then exits at the scenario's end: the server and
    the stopped runtime."""
    with LambdaAPIServer() as srv:
        for index, event in enumerate(events):
            srv.add_invocation(event, request_id=request_id if index == 0 else None)
        with Runtime(handler, srv, FIXTURES, env) as runtime:
            runtime.wait()
    return srv, runtime


def two_invocations_with(*marks: str) -> list[str]:
    """`runtime_paths` of two invocations, with `marks` between the first's response and the second's /next."""
    return ["/invocation/next", "response", *marks, "/invocation/next", "response", "/invocation/next"]


@BOTH_LOOPS
@pytest.mark.parametrize("op", ["callable", "awaitable"])
def test_after_response_work_runs_between_the_post_and_the_next_next(loop, op):
    srv, _ = run_to_end(f"after.{loop}", {"op": op}, {"op": "none"})
    assert runtime_paths(srv) == two_invocations_with("/test/work-1", "/test/work-2")
    first_post = srv.requests[1]
    assert first_post.buffered_after == 0  # no /next pipelined behind the POST: it waits for the work
    assert [r.json() for r in srv.requests if r.method == "POST"] == [{"result": op}, {"result": "none"}]


@BOTH_LOOPS
def test_after_response_work_runs_after_an_error_is_posted_too(loop):
    srv, _ = run_to_end(f"after.{loop}", {"op": "callable", "raise": True})
    assert runtime_paths(srv) == ["/invocation/next", "error", "/test/work-1", "/test/work-2", "/invocation/next"]


@BOTH_LOOPS
def test_failing_after_response_work_is_logged_with_the_request_id_and_changes_nothing(loop):
    rid = "rid-failing-work"
    srv, runtime = run_to_end(f"after.{loop}", {"op": "failing"}, {"op": "none"}, request_id=rid)
    assert runtime_paths(srv) == two_invocations_with("/test/work-after-failure")
    assert [r.json() for r in srv.requests if r.method == "POST"] == [{"result": "failing"}, {"result": "none"}]
    out = runtime.stdout.decode()
    assert f"[ERROR] ValueError: after_response work broken failed (request {rid}): work broke: on purpose" in out
    assert "after.py" in out  # the stack trace


@BOTH_LOOPS
def test_failing_after_response_work_in_json_logs_carries_the_request_id(loop):
    rid = "rid-json"
    _, runtime = run_to_end(f"after.{loop}", {"op": "failing"}, env={"AWS_LAMBDA_LOG_FORMAT": "JSON"}, request_id=rid)
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
    srv, _ = run_to_end(f"after.{loop}", {"op": "none"}, {"op": "none"})
    posts = [r for r in srv.requests if r.method == "POST"]
    # the next GET /next came in the POST's write (not behind a plain handler's first POST: start-up posts that
    # one alone, before it imports the hot path)
    assert posts[1].buffered_after > 0
