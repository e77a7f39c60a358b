"""`--import-profile`: the handler module's slowest imports, from the bootstrap's own `-X importtime` output."""

from __future__ import annotations

import http.client
import sys

from emulator_process import EXAMPLES, EmulatorProcess, clean_env
from test_cli_invoke import EXPECTED_SEED_OUTPUT, SEED, fastric_invoke

from fastric.emulator.importprofile import ImportProfile, ImportTimes, runtime_package

# What `python -X importtime -m fastric app.handler` writes, shortened: start-up, the runtime, the handler
# module's imports (top-level: runtimes import it with importlib, which CPython does not time), the runtime again.
TIMING = """\
import time: self [us] | cumulative | imported package
import time:       800 |        800 |   _io
import time:      1500 |       2300 | io
import time:      9000 |       9000 | site
import time:       100 |        100 | runpy
import time:      1700 |       1700 | fastric
import time:       300 |        300 |     socket
import time:      2000 |       2300 |   fastric.runtime.first
import time:      4000 |       6300 | fastric.runtime.startup
import time:       400 |        400 |       botocore.vendored
import time:      3000 |       3400 |     botocore.session
import time:      1000 |       4400 |   boto3.session
import time:      1100 |       5500 | boto3
import time:       200 |        200 | colorsys
import time:      1800 |       1800 | fastric.runtime.loop
""".splitlines()
FASTRIC = [sys.executable, "-m", "fastric", "app.handler"]


def collect(lines: list[str]) -> ImportTimes:
    times = ImportTimes()
    for line in lines:
        assert times.take(line)
    return times


def test_the_handler_modules_imports_ranked_by_cumulative_time():
    profile = collect(TIMING).profile(FASTRIC, "app.handler", 123.456)
    assert [(item.module, item.cumulative_ms, item.self_ms, item.depth) for item in profile.imports] == [
        ("boto3", 5.5, 1.1, 0),
        ("boto3.session", 4.4, 1.0, 1),
        ("botocore.session", 3.4, 3.0, 2),
        ("botocore.vendored", 0.4, 0.4, 3),
        ("colorsys", 0.2, 0.2, 0),
    ]  # not the runtime's own imports (fastric.*, and socket under them), not the interpreter's start-up
    assert (profile.total_ms, profile.count, profile.init_duration_ms, profile.scope) == (5.7, 5, 123.46, "handler")
    text = str(profile)
    assert text.startswith("import profile of handler app.handler: 5.70 ms importing 5 modules during the init")
    assert "Init Duration: 123.46 ms" in text and "5.50      1.10  boto3" in text
    assert ImportProfile.from_dict(profile.to_dict()) == profile


def test_imports_after_the_first_next_belong_to_the_first_invocation():
    times = collect(TIMING[:-2])  # up to boto3: the runtime then called /next
    times.end_init()
    for line in TIMING[-2:] + ["import time:       700 |        700 | fastric.runtime.hot"]:
        assert times.take(line)
    profile = times.profile(FASTRIC, "app.handler", 100.0)
    assert (profile.total_ms, profile.first_invoke_ms) == (5.5, 0.2)  # colorsys (lazy), not the runtime's own
    assert "5.50 ms importing 4 modules during the init (Init Duration: 100.00 ms); 0.20 ms more during" in str(profile)


def test_at_most_15_and_the_same_rule_for_awslambdaric():
    lines = ["import time:       100 |        100 | awslambdaric.bootstrap"]
    lines += [f"import time:      {n:4d} |       {n:4d} | module{n}" for n in range(1, 31)]
    profile = collect(lines).profile([sys.executable, "-m", "awslambdaric", "app.handler"], "app.handler")
    assert len(profile.imports) == 15 and profile.count == 30
    assert profile.imports[0].module == "module30" and profile.imports[-1].module == "module16"


def test_any_other_python_bootstrap_counts_everything_after_start_up():
    profile = collect(TIMING).profile([sys.executable, "bootstrap.py"], "app.handler")
    assert profile.scope == "bootstrap" and profile.imports[0].module == "fastric.runtime.startup"
    assert "all its imports" in str(profile)


def test_lines_that_are_not_import_timing_are_left_alone():
    times = ImportTimes()
    assert not times.take("import timer: 3")
    assert not times.take("hello")
    profile = times.profile(["./bootstrap"], None, 12.0)
    assert profile.message and "needs a Python bootstrap" in profile.message and not profile.imports
    assert str(profile).startswith("import profile: no import timing from the bootstrap (./bootstrap)")


def test_runtime_package():
    assert runtime_package([sys.executable, "-X", "importtime", "-m", "awslambdaric.x", "h.f"]) == "awslambdaric"
    assert runtime_package(["/var/lang/bin/python3.12", "-m", "fastric", "h.f"]) == "fastric"
    assert runtime_package(["node", "-m", "x", "y"]) is None
    assert runtime_package([sys.executable, "app.py"]) is None


def test_fastric_invoke_prints_the_profile_beside_the_report():
    result = fastric_invoke("--import-profile", "app.handler", "--event", SEED)
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED_SEED_OUTPUT  # the body is untouched
    stderr = result.stderr.decode()
    assert "import time:" not in stderr  # the interpreter's own lines never reach the function's log
    report, profile = stderr.split("\nREPORT RequestId: ", 1)[1].splitlines()[:2]
    assert "Init Duration: " in report
    assert profile.startswith("fastric invoke: import profile of handler app.handler: ")
    assert any(line.endswith("  json") for line in stderr.splitlines())  # examples/app.py imports json


def test_a_bootstrap_that_is_not_python_gets_a_clear_message():
    result = fastric_invoke("--import-profile", "--", "sh", "bootstrap-curl.sh")
    assert result.returncode == 0, result.stderr
    assert "--import-profile reads CPython's -X importtime output, so it needs a Python bootstrap" in (
        result.stderr.decode()
    )


def test_fastric_emulate_profiles_each_cold_start():
    emulator = EmulatorProcess(["--import-profile", "app.handler"], EXAMPLES, clean_env())
    try:
        connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
        for _ in range(2):
            connection.request("POST", "/2015-03-31/functions/function/invocations", body=SEED)
            assert connection.getresponse().read() == EXPECTED_SEED_OUTPUT
        connection.close()
        assert emulator.wait_for(lambda line: "import profile of handler app.handler" in line)
    finally:
        emulator.stop()
    assert sum("import profile of handler" in line for line in emulator.lines) == 1  # the warm one has none
    assert not any(line.startswith("import time:") for line in emulator.lines)
