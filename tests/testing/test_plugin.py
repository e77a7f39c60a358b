"""The `lambda_function` fixture, as a user's test suite meets it: inner pytest sessions run by `pytester`.

Each inner session is a `pytest` subprocess, so the plugin is loaded through its `pytest11` entry point as
it is once fastric is installed, and the processes it starts are looked for after it has exited.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

APP = """
import colorsys, os, time
import fastric

def handler(event, context):
    print("handled", context.aws_request_id)
    return {"echo": event, "function_name": context.function_name, "memory": context.memory_limit_in_mb,
            "env": os.environ.get("GREETING"), "leaked": os.environ.get("OUTER_SECRET")}

def fails(event, context):
    raise ValueError("boom")

def sleeps(event, context):
    time.sleep(5)

def returns_a_set(event, context):
    return {1, 2}

def pids(event, context):
    return {"pid": os.getpid()}

@fastric.streaming
def streams(event, context):
    yield b"first,"
    time.sleep(0.5)
    yield b"second"
    if event.get("fail"):
        raise RuntimeError("after two chunks")

def url(event, context):
    return {"statusCode": 201, "headers": {"x-path": event["rawPath"]}, "body": event["body"] or ""}
"""


def run_inner(pytester: pytest.Pytester, source: str, *args: str, **env: str) -> pytest.RunResult:
    pytester.makepyfile(app=APP)
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    for name, value in env.items():
        pytester._monkeypatch.setenv(name, value)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", *args, timeout=120)


def test_outcomes_through_the_real_runtime(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        def test_success(lambda_function):
            fn = lambda_function("app.handler", env={"GREETING": "hi"}, memory=256, function_name="echo")
            result = fn.invoke({"x": 1})
            assert result.status_code == 200 and result.function_error is None and result.error is None
            assert result.payload == {"echo": {"x": 1}, "function_name": "echo", "memory": "256",
                                      "env": "hi", "leaked": None}
            assert result.logs.startswith(f"START RequestId: {result.request_id} ")
            assert f"handled {result.request_id}" in result.logs
            assert result.logs.splitlines()[-1].startswith(f"REPORT RequestId: {result.request_id}\\t")
            assert result.duration_ms > 0 and result.billed_duration_ms >= 1 and result.max_memory_used_mb > 0

        def test_handler_error(lambda_function):
            result = lambda_function("app.fails").invoke()
            assert result.status_code == 200 and result.function_error == "Unhandled"
            assert result.error["errorType"] == "ValueError" and result.error["errorMessage"] == "boom"
            assert result.payload == result.error

        def test_timeout(lambda_function):
            result = lambda_function("app.sleeps", timeout=1).invoke()
            assert result.function_error == "Unhandled"
            assert result.error["errorType"] == "Sandbox.Timedout"
            assert "Task timed out after 1.00 seconds" in result.error["errorMessage"]
            assert "Status: timeout" in result.logs

        def test_marshal_error(lambda_function):
            result = lambda_function("app.returns_a_set").invoke()
            assert result.error["errorType"] == "Runtime.MarshalError"

        def test_stream(lambda_function):
            import time
            fn = lambda_function("app.streams")
            stream = fn.stream({})
            arrivals = []
            for chunk in stream:
                arrivals.append((chunk, time.monotonic()))
            assert [chunk for chunk, _ in arrivals] == [b"first,", b"second"]
            assert arrivals[1][1] - arrivals[0][1] > 0.3  # relayed as it came, not at the end
            assert stream.function_error is None and stream.error is None
            assert stream.logs.startswith("START") and "REPORT" in stream.logs

            failing = fn.stream({"fail": True})
            assert list(failing) == [b"first,", b"second"]
            assert failing.function_error == "Unhandled"
            invoked = fn.invoke({"fail": True})
            assert failing.error["errorType"] == invoked.error["errorType"] == "RuntimeError"
            assert set(failing.error) == set(invoked.error)  # the same document from stream and invoke

        def test_function_url(lambda_function):
            response = lambda_function("app.url").http("POST", "/items/7?q=1", body="hello",
                                                      headers={"content-type": "text/plain"})
            assert response.status == 201
            assert response.headers["X-Path"] == "/items/7" and response.body == b"hello"

        def test_same_payload_under_awslambdaric(lambda_function):
            ours = lambda_function("app.handler").invoke({"k": [1, 2]})
            theirs = lambda_function("app.handler", runtime="awslambdaric").invoke({"k": [1, 2]})
            assert ours.payload == theirs.payload

        def test_cold_then_warm(lambda_function):
            fn = lambda_function("app.handler")
            cold, warm = fn.invoke(), fn.invoke()
            assert cold.init_duration_ms > 0 and warm.init_duration_ms is None
            assert "Init Duration" in cold.logs and "Init Duration" not in warm.logs
            fn.restart()
            assert fn.invoke().init_duration_ms > 0

        def test_import_profile(lambda_function):
            fn = lambda_function("app.handler", import_profile=True)
            cold, warm = fn.invoke(), fn.invoke()
            assert cold.import_profile is not None and warm.import_profile is None
            assert cold.import_profile.init_duration_ms == cold.init_duration_ms
            assert "import time:" not in cold.logs
            assert "colorsys" in [item.module for item in cold.import_profile.imports]
            assert cold.import_profile.total_ms >= cold.import_profile.imports[0].cumulative_ms > 0
        """,
        OUTER_SECRET="from the test process",
        AWS_LAMBDA_FUNCTION_TIMEOUT="0.001",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="999",
    )
    result.assert_outcomes(passed=9)


def test_under_xdist_and_pytest_benchmark(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_parallel(lambda_function, n):
            fn = lambda_function("app.handler")
            assert fn.invoke({"n": n}).payload["echo"] == {"n": n}

        def test_benchmark(lambda_function, benchmark):
            fn = lambda_function("app.handler")
            result = benchmark(fn.invoke, {"warm": True})
            assert result.payload["echo"] == {"warm": True}
        """,
        "-n",
        "2",
        "--benchmark-disable",
    )
    result.assert_outcomes(passed=5)


def test_awslambdaric_missing_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(sitecustomize="import sys; sys.modules['awslambdaric'] = None")  # find_spec fails
    result = run_inner(
        pytester,
        """
        def test_other_runtime(lambda_function):
            lambda_function("app.handler", runtime="awslambdaric")
        """,
        "-rs",
        PYTHONPATH=str(pytester.path),
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*runtime='awslambdaric' needs awslambdaric installed*"])


def test_teardown_after_a_failing_test_leaves_no_process(pytester: pytest.Pytester) -> None:
    record = pytester.path / "pids.json"
    result = run_inner(
        pytester,
        f"""
        import json, os

        def alive(pid):
            try:
                with open(f"/proc/{{pid}}/stat") as stat:
                    return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
            except OSError:
                return False

        def test_fails(lambda_function):
            fn = lambda_function("app.pids")
            pids = [fn.pid, fn.invoke().payload["pid"]]
            with open({str(record)!r}, "w") as out:
                json.dump(pids, out)
            assert all(alive(pid) for pid in pids)
            raise AssertionError("this test fails on purpose")

        def test_then_nothing_is_left():
            with open({str(record)!r}) as recorded:
                assert not [pid for pid in json.load(recorded) if alive(pid)]
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    for pid in json.loads(record.read_text()):
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_loading_the_plugin_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    script = (
        "import sys, pytest\n"
        "before = set(sys.modules)\n"
        "import fastric.testing.plugin\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    result = pytester.run(sys.executable, "-c", script)
    assert result.ret == 0
    loaded = set(eval(result.stdout.lines[-1]))
    assert loaded <= {"fastric", "fastric.testing", "fastric.testing.plugin"}, loaded
