"""Shutdown in Lambda's order, against the real `fastric emulate` on 127.0.0.1: the invoke endpoint stops
accepting, the runtime gets SIGTERM, extensions get SHUTDOWN, and the Runtime and Extensions APIs stay up
until every extension has exited."""

from __future__ import annotations

import socket
import time

from extensions_kit import BOOTSTRAP, add_extension, environment, records

from fastric.emulator.lifecycle import IllegalTransition, Lifecycle, Phase


def test_shutdown_reaches_an_extension_busy_with_its_last_invoke(emulator, tmp_path):
    """SIGTERM 0.2 s into the 0.5 s an extension takes over its INVOKE: it still gets SHUTDOWN, every time."""
    for attempt in range(3):
        record = tmp_path / f"record{attempt}.jsonl"
        directory = tmp_path / f"ext{attempt}"
        add_extension(directory, "slow", EXT_DELAY="0.5")
        emu = emulator("--extensions", str(directory), "--", *BOOTSTRAP, env=environment(record, BOOT_SIGTERM="exit"))
        assert emu.invoke({}).status == 200
        time.sleep(0.2)
        invoke_port = emu.port
        assert emu.stop() == 0, emu.stderr
        answers = records(record, "event")
        assert [a["status"] for a in answers] == [200, 200], (answers, emu.stderr)
        assert answers[-1]["event"]["eventType"] == "SHUTDOWN"
        assert records(record, "done"), emu.stderr  # it finished its INVOKE work before taking SHUTDOWN
        with socket.socket() as probe:  # and the invoke endpoint is gone
            assert probe.connect_ex(("127.0.0.1", invoke_port)) != 0


def test_the_invoke_endpoint_stops_accepting_before_the_extensions_stop(emulator, tmp_path):
    record = tmp_path / "record.jsonl"
    add_extension(tmp_path / "ext", "slow", EXT_DELAY="0.5")
    emu = emulator("--extensions", str(tmp_path / "ext"), "--", *BOOTSTRAP, env=environment(record))
    assert emu.invoke({}).status == 200
    emu.proc.send_signal(15)
    assert emu.wait_for(lambda line: "stopping" in line, timeout=10)
    time.sleep(0.1)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", emu.port)) != 0  # refused while the extension still works
    assert emu.proc.poll() is None or records(record, "done")
    assert emu.stop() == 0
    assert records(record, "event")[-1]["event"]["eventType"] == "SHUTDOWN"


def test_lifecycle_transitions():
    lifecycle = Lifecycle()
    assert lifecycle.phase is Phase.INITIALIZING and lifecycle.takes_work and not lifecycle.refuses_next
    assert lifecycle.enter(Phase.READY)
    assert not lifecycle.enter(Phase.READY)  # already there
    assert lifecycle.enter(Phase.RESETTING) and lifecycle.refuses_next and not lifecycle.takes_work
    assert not lifecycle.enter_if_allowed(Phase.DRAINING)  # a reset is not undone by a reload
    assert lifecycle.enter(Phase.EXITED) and lifecycle.ended_by_emulator
    try:
        lifecycle.enter(Phase.READY)
    except IllegalTransition:
        pass
    else:
        raise AssertionError("EXITED -> READY must be refused")
    assert lifecycle.enter(Phase.STOPPED)
    crashed = Lifecycle()
    crashed.enter(Phase.READY)
    crashed.enter(Phase.EXITED)
    assert not crashed.ended_by_emulator  # a crash: the process went by itself
