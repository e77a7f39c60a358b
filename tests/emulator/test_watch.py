"""`fastric emulate --watch`: an edit under the task root gives the next invocation a fresh bootstrap."""

from __future__ import annotations

import os
import textwrap
import threading
import time

import pytest
from emulator_process import EXAMPLES, Response

from fastric.emulator.watch import changed_files, describe, scan

HANDLER = textwrap.dedent(
    """
    import os
    import time

    VERSION = {version!r}

    def handler(event, context):
        if event.get("started"):
            open(event["started"], "w").close()
        gate = event.get("gate")
        while gate and not os.path.exists(gate):
            time.sleep(0.01)
        return {{"version": VERSION, "pid": os.getpid()}}
    """
)


def write_handler(task, version: str) -> None:
    path = task / "app.py"
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(HANDLER.format(version=version))
    if path.stat().st_mtime_ns == before:  # a coarse file-system clock: make the edit visible
        os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def start(emulator, tmp_path, *options: str):
    task = tmp_path / "task"
    task.mkdir()
    write_handler(task, "one")
    return task, emulator("--watch", *options, "--task-root", str(task), "app.handler", cwd=EXAMPLES)


def reloaded(emu, count: int = 1) -> bool:
    """Wait until `count` reload lines naming app.py are on stderr."""
    return bool(emu.wait_for(lambda _: sum("reloading: app.py changed" in line for line in emu.lines) >= count))


def in_background(emu, event) -> tuple[threading.Thread, list[Response]]:
    results: list[Response] = []
    thread = threading.Thread(target=lambda: results.append(emu.invoke(event)), daemon=True)
    thread.start()
    return thread, results


def test_edit_reloads_the_bootstrap(emulator, tmp_path):
    task, emu = start(emulator, tmp_path)
    first = emu.invoke({}).json()
    assert first["version"] == "one"
    write_handler(task, "two")
    assert reloaded(emu), emu.stderr
    second = emu.invoke({}).json()
    assert second["version"] == "two"
    assert second["pid"] != first["pid"]


@pytest.mark.parametrize("options", [(), ("--concurrency", "2")], ids=["classic", "concurrent"])
def test_edit_during_an_invocation_lets_it_finish(emulator, tmp_path, options):
    task, emu = start(emulator, tmp_path, *options)
    assert emu.invoke({}).json()["version"] == "one"  # imported: the edit below cannot reach this bootstrap
    started, gate = tmp_path / "started", tmp_path / "gate"  # outside the task root: creating them is no edit
    held, held_results = in_background(emu, {"started": str(started), "gate": str(gate)})
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    write_handler(task, "two")
    assert reloaded(emu), emu.stderr
    waiting, waiting_results = in_background(emu, {})
    gate.touch()
    held.join(30)
    waiting.join(30)
    assert held_results[0].status == 200, held_results[0].body
    assert held_results[0].json()["version"] == "one"
    assert waiting_results[0].json()["version"] == "two"
    assert waiting_results[0].json()["pid"] != held_results[0].json()["pid"]


def test_a_broken_edit_fails_until_fixed(emulator, tmp_path):
    task, emu = start(emulator, tmp_path)
    assert emu.invoke({}).json()["version"] == "one"
    (task / "app.py").write_text("def handler(event, context:\n")
    assert reloaded(emu), emu.stderr
    broken = emu.invoke({})
    assert broken.status == 502
    assert broken.json()["errorType"] == "Runtime.UserCodeSyntaxError"
    write_handler(task, "three")
    assert reloaded(emu, 2), emu.stderr
    assert emu.invoke({}).json()["version"] == "three"


def test_scan_skips_caches_and_sees_edits(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    for skipped in ("__pycache__", ".git", ".venv", "node_modules"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "file.py").write_text("")
    (tmp_path / "app.py.swp").write_text("")
    before = scan(str(tmp_path))
    assert sorted(before) == [os.path.join("pkg", "mod.py")]
    (tmp_path / "pkg" / "mod.py").write_text("x = 22\n")
    (tmp_path / "new.py").write_text("")
    (tmp_path / "__pycache__" / "file.py").write_text("changed")
    assert changed_files(before, scan(str(tmp_path))) == ["new.py", os.path.join("pkg", "mod.py")]


def test_describe_names_the_first_files():
    assert describe(["a.py"]) == "a.py"
    assert describe(["a.py", "b.py", "c.py", "d.py", "e.py"]) == "a.py, b.py, c.py and 2 more"
