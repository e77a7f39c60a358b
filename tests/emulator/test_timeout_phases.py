"""The function timeout covers the invoke phase; init has its own limit (Lambda's 10 s, `--init-timeout`)."""

from __future__ import annotations

from emulator_process import PROBE, clean_env, function_error
from emulator_process import report_fields as report_fields_of
from test_errors import assert_function_error


def report_fields(emu, response) -> dict[str, str]:
    report = emu.report_for(response.headers["x-amzn-requestid"])
    assert report is not None, emu.stderr
    return dict(field.split(": ", 1) for field in report.split("\t")[1:])


def milliseconds(value: str) -> float:
    return float(value.removesuffix(" ms"))


def test_a_slow_init_does_not_count_against_the_first_invoke(probe):
    result = probe(timeout=1, env={"PROBE_INIT_SLEEP": "1.5"}).invoke({})
    assert result.status_code == 200 and result.function_error is None, result.raw
    assert result.init_duration_ms >= 1000  # shown apart, as today
    assert "Status" not in report_fields_of(result)


def test_a_timeout_reports_the_invoke_phase_as_its_duration(probe):
    result = probe(timeout=1, env={"PROBE_INIT_SLEEP": "0.6"}).invoke({"action": "sleep", "seconds": 30})
    function_error(result, "Sandbox.Timedout")
    # The whole second was the invoke phase (the 0.6 s init is not taken out of it).
    assert result.duration_ms >= 900
    assert result.init_duration_ms >= 500
    assert report_fields_of(result)["Status"] == "timeout"


def test_a_reinit_after_a_crash_runs_inside_the_invoke(probe):
    fn = probe(timeout=1, env={"PROBE_INIT_SLEEP": "1.5"})
    assert fn.invoke({}).status_code == 200
    function_error(fn.invoke({"action": "exit", "code": 3}), "Runtime.ExitError", status=502)
    # The fresh bootstrap's 1.5 s init is a suppressed init: the 1 s timeout covers it.
    result = fn.invoke({})
    function_error(result, "Sandbox.Timedout")
    assert report_fields_of(result)["Status"] == "timeout"


def test_an_init_past_its_limit_counts_against_the_waiting_invoke(emulator):
    env = clean_env(PROBE_INIT_SLEEP="4")
    emu = emulator("--timeout", "0.5", "--init-timeout", "0.5", "--", *PROBE, env=env)
    assert_function_error(emu.invoke({}), "Sandbox.Timedout")
