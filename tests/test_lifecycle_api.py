"""`fastric.on_shutdown` and `fastric.after_response` in process: the public names, argument checks, the
after-response runners, and what happens where fastric does not run the function (a unit test, say)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import fastric
from fastric.runtime import lifecycle, shutdown


@pytest.fixture
def registries(monkeypatch):
    """Fresh registries (the module's lists are the runtime's own: never leave entries behind)."""
    monkeypatch.setattr(lifecycle, "shutdown_hooks", [])
    lifecycle.pending.clear()
    yield lifecycle
    lifecycle.pending.clear()


def test_the_public_names_are_the_runtimes():
    assert fastric.on_shutdown is lifecycle.on_shutdown
    assert fastric.after_response is lifecycle.after_response
    assert {"on_shutdown", "after_response"} <= set(dir(fastric))
    with pytest.raises(AttributeError):
        fastric.no_such_name  # noqa: B018


def test_import_fastric_then_a_public_name_loads_no_loop():
    code = (
        "import sys, fastric; fastric.on_shutdown; fastric.after_response; "
        "print(sorted(m for m in ('orjson', 'httptools', 'uvloop', 'asyncio') if m in sys.modules), "
        "[m for m in sys.modules if m.startswith('fastric.emulator')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"


def test_on_shutdown_is_a_decorator_that_registers(registries):
    @fastric.on_shutdown
    def flush():
        pass

    async def close():
        pass

    assert fastric.on_shutdown(close) is close
    assert registries.shutdown_hooks == [flush, close]
    with pytest.raises(TypeError, match="takes a callable"):
        fastric.on_shutdown("flush")


def test_on_shutdown_after_an_init_that_armed_nothing_says_it_will_not_run(registries, monkeypatch, capfd):
    monkeypatch.setattr(lifecycle, "state", lifecycle.UNARMED)
    fastric.on_shutdown(print)
    assert "on_shutdown(print) after init: it will not run" in capfd.readouterr().out


def test_after_response_checks_its_arguments(registries, monkeypatch):
    monkeypatch.setattr(lifecycle, "state", lifecycle.IMPORTING)
    with pytest.raises(TypeError, match="callable or an awaitable"):
        fastric.after_response(42)
    coroutine = asyncio.sleep(0)
    with pytest.raises(TypeError, match="only with a callable"):
        fastric.after_response(coroutine, 1)
    coroutine.close()
    assert registries.pending == []


def test_the_runner_calls_in_order_awaits_and_logs_failures(registries, monkeypatch, capfd):
    monkeypatch.setattr(lifecycle, "state", lifecycle.IMPORTING)
    done = []

    async def later(name):
        done.append(name)

    def fail():
        raise ValueError("nope")

    fastric.after_response(done.append, "a")
    fastric.after_response(fail)
    fastric.after_response(later("b"))
    fastric.after_response(later, "c")  # a coroutine function: what it returns is awaited
    fastric.after_response(lambda **kw: done.append(kw), k=1)
    lifecycle.run_after_response(lifecycle.pending, "rid-7", asyncio.run)
    assert done == ["a", "b", "c", {"k": 1}]
    assert registries.pending == []
    out = capfd.readouterr().out
    assert "[ERROR] ValueError: after_response work test_the_runner_calls_in_order_awaits_and_logs_failures" in out
    assert ".<locals>.fail failed (request rid-7): nope" in out


def test_the_async_runner_awaits_on_the_running_loop(registries, monkeypatch):
    monkeypatch.setattr(lifecycle, "state", lifecycle.IMPORTING)
    loops = []

    async def where():
        loops.append(asyncio.get_running_loop())

    async def main():
        fastric.after_response(where())
        fastric.after_response(where)
        await lifecycle.run_after_response_async(lifecycle.pending, "rid")
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert loops == [loop, loop]


def test_work_added_by_work_runs_in_the_same_drain(registries, monkeypatch):
    monkeypatch.setattr(lifecycle, "state", lifecycle.IMPORTING)
    done = []
    fastric.after_response(lambda: fastric.after_response(done.append, "second"))
    lifecycle.run_after_response(lifecycle.pending, "rid", asyncio.run)
    assert done == ["second"]


def test_each_task_that_takes_its_own_list_gets_its_own_work(registries, monkeypatch):
    """Several invocations in flight at once (Managed Instances): work belongs to the task that serves it."""
    monkeypatch.setattr(lifecycle, "state", lifecycle.IMPORTING)
    monkeypatch.setattr(lifecycle, "invocation_work", None)

    async def serve(name):
        work = lifecycle.own_work()
        await asyncio.sleep(0)
        fastric.after_response(print, name)
        await asyncio.sleep(0)
        return [args for _, args, _ in work]

    async def main():
        return await asyncio.gather(serve("a"), serve("b"))

    assert asyncio.run(main()) == [[("a",)], [("b",)]]
    fastric.after_response(print, "c")  # where no task took a list: the shared one
    assert [args for _, args, _ in registries.pending] == [("c",)]


def test_outside_fastric_the_work_runs_at_once(registries, capfd):
    assert lifecycle.state == lifecycle.OUTSIDE
    done = []

    async def later():
        done.append("awaited")

    fastric.after_response(done.append, "called")
    fastric.after_response(later())
    fastric.after_response(lambda: 1 / 0)
    assert done == ["called", "awaited"]
    assert "ZeroDivisionError: after_response work" in capfd.readouterr().out

    async def handler():
        fastric.after_response(later())  # inside a running loop: scheduled on it
        await asyncio.sleep(0.01)

    asyncio.run(handler())
    assert done == ["called", "awaited", "awaited"]
    assert registries.pending == []


@pytest.mark.parametrize("code, status", [(None, 0), (0, 0), (3, 3), ("bye", 1)])
def test_exit_status(code, status):
    assert shutdown.exit_status(SystemExit(code)) == status
