"""Unit tests of fastric.runtime.logs: frame encoding, sinks, formatters and error blocks, checked against
awslambdaric's own functions in-process where it has them (its formatter, `log_error`, `to_json`)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest
import simplejson  # awslambdaric's dependency: the encoder its error logs use
from awslambdaric import bootstrap as ric_bootstrap
from awslambdaric import lambda_runtime_log_utils as ric_log_utils
from awslambdaric.lambda_runtime_marshaller import to_json as ric_to_json

from fastric.runtime import logs

TRICKY = 'é € 😀 \x00 \x1f \x7f \u2028 \ud800 "q" \\ \t\r\n'


@pytest.fixture
def isolated(monkeypatch):
    """Restore the root logger, the global converter, sys.stdout/stderr and fastric.runtime.logs' state afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.Formatter.converter, sys.stdout, sys.stderr
    state = {name: getattr(logs.state, name) for name in logs.LogState.__slots__}
    for name in (
        "AWS_LAMBDA_LOG_FORMAT",
        "AWS_LAMBDA_LOG_LEVEL",
        "_LAMBDA_TELEMETRY_LOG_FD",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_LOG_TIMESTAMP_PRECISION",
        "LAMBDA_DISABLE_PREVIEW_WARN",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    try:
        yield
    finally:
        root.handlers[:], _, logging.Formatter.converter, sys.stdout, sys.stderr = saved
        root.setLevel(saved[1])
        logs.use_task_local_ids(False)
        for name, value in state.items():
            setattr(logs.state, name, value)


# -- frames ---------------------------------------------------------------------------------------------------


def test_frame_types_match_the_reference_table():
    assert {level: int.from_bytes(t, "big") for level, t in logs.JSON_FRAME_TYPES.items()} == {
        0: 0xA55A0002,
        10: 0xA55A000A,
        20: 0xA55A000E,
        30: 0xA55A0012,
        40: 0xA55A0016,
        50: 0xA55A001A,
    }
    assert {level: int.from_bytes(t, "big") for level, t in logs.TEXT_FRAME_TYPES.items()} == {
        0: 0xA55A0003,
        10: 0xA55A000B,
        20: 0xA55A000F,
        30: 0xA55A0013,
        40: 0xA55A0017,
        50: 0xA55A001B,
    }
    assert logs.JSON_FRAME_TYPES == ric_log_utils._JSON_FRAME_TYPES
    assert logs.TEXT_FRAME_TYPES == ric_log_utils._TEXT_FRAME_TYPES


def test_encode_frame_is_big_endian_type_length_microseconds_then_utf8():
    frame = logs.encode_frame(logs.TEXT_FRAME_TYPES[50], "crit é", 0x0102030405060708)
    assert frame == bytes.fromhex("a55a001b000000070102030405060708") + "crit é".encode()
    assert logs.decode_frames(frame + logs.encode_frame(logs.DEFAULT_FRAME_TYPE, "", 1)) == [
        (0xA55A001B, 0x0102030405060708, "crit é"),
        (0xA55A0003, 1, ""),
    ]
    with pytest.raises(ValueError):
        logs.decode_frames(frame[:-1])


def test_framed_sink_writes_one_frame_per_message_in_one_write(monkeypatch):
    read_fd, write_fd = os.pipe()
    writes = []
    real_write = os.write

    def counting_write(fd, data):
        writes.append(fd)
        return real_write(fd, data)

    try:
        sink = logs.FramedTelemetryLogSink(write_fd, logs.JSON_FRAME_TYPES[40])
        before = time.time_ns() // 1000
        monkeypatch.setattr(os, "write", counting_write)
        sink.log("[CRITICAL]\t2026-01-01T00:00:00.000Z\trid\tcritical\n")
        sink.log("typed", logs.TEXT_FRAME_TYPES[20])
        sink.log_error(["[ERROR] E: m", "Traceback (most recent call last):", "\u00a0\u00a0File x"])
        monkeypatch.undo()
        after = time.time_ns() // 1000
        frames = logs.decode_frames(os.read(read_fd, 65536))
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert writes == [write_fd] * 3
    assert [(kind, message) for kind, _, message in frames] == [
        (0xA55A0003, "[CRITICAL]\t2026-01-01T00:00:00.000Z\trid\tcritical\n"),
        (0xA55A000F, "typed"),
        (0xA55A0016, "[ERROR] E: m\nTraceback (most recent call last):\n\u00a0\u00a0File x"),
    ]
    assert all(before <= stamp <= after for _, stamp, _ in frames)


def test_awslambdaric_fixture_frame_lengths():
    """The frame sizes awslambdaric's own test asserts for `logger.critical("critical")` (§7.5)."""
    text = logging.Formatter(logs.TEXT_FORMAT, logs.TEXT_DATE_FORMAT)

    def record():
        made = logging.LogRecord("root", logging.CRITICAL, __file__, 1, "critical", None, None)
        made.aws_request_id, made.tenant_id = "", None
        return made

    assert len(logs.encode_frame(logs.DEFAULT_FRAME_TYPE, text.format(record()), 0)) == 62
    assert len(logs.encode_frame(logs.DEFAULT_FRAME_TYPE, logs.JsonFormatter().format(record()), 0)) == 133


def test_create_log_sink_consumes_the_environment_variable(monkeypatch, isolated):
    assert isinstance(logs.create_log_sink(), logs.StandardLogSink)
    read_fd, write_fd = os.pipe()
    try:
        monkeypatch.setenv("_LAMBDA_TELEMETRY_LOG_FD", str(write_fd))
        sink = logs.create_log_sink(logs.JSON_FRAME_TYPES[40])
        assert (sink.fd, sink.error_frame_type) == (write_fd, logs.JSON_FRAME_TYPES[40])
        assert "_LAMBDA_TELEMETRY_LOG_FD" not in os.environ
    finally:
        os.close(read_fd)
        os.close(write_fd)
    monkeypatch.setenv("_LAMBDA_TELEMETRY_LOG_FD", str(write_fd))  # closed now
    with pytest.raises(OSError):
        logs.create_log_sink()


@pytest.mark.parametrize("log_format", [None, "JSON"])
def test_worker_pool_event_is_logged_then_the_telemetry_fd_closed(isolated, monkeypatch, log_format):
    monkeypatch.setattr(logs, "unbuffered", lambda stream: stream)
    read_fd, write_fd = os.pipe()
    try:
        monkeypatch.setenv("_LAMBDA_TELEMETRY_LOG_FD", str(write_fd))
        monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        if log_format:
            monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", log_format)
        logs.emit_worker_pool_event(3)
        with pytest.raises(OSError):
            os.fstat(write_fd)
        [(frame_type, _, message)] = logs.decode_frames(os.read(read_fd, 65536))
    finally:
        os.close(read_fd)
    assert logging.getLogger().handlers == [] and isinstance(logs.state.sink, logs.StandardLogSink)
    event = "{'event': 'runtime_worker_pool_initializing', 'workerCount': 3, 'executionEnvironmentMaxConcurrency': 3}"
    if log_format:
        assert frame_type == 0xA55A000A and message.endswith(
            '"level": "DEBUG", "message": {"event": "runtime_worker_pool_initializing", "workerCount": 3, '
            '"executionEnvironmentMaxConcurrency": 3}, "logger": "root", "requestId": ""}\n'
        )
    else:
        assert frame_type == 0xA55A000B and message.startswith("[DEBUG]\t") and message.endswith(f"\t\t{event}\n")


# -- levels, handlers, set-up ---------------------------------------------------------------------------------


@pytest.mark.parametrize("levelno, bucket", [(-5, 0), (0, 0), (5, 0), (10, 10), (25, 20), (49, 40), (50, 50), (60, 50)])
def test_level_bucket(levelno, bucket):
    assert logs.level_bucket(levelno) == bucket


@pytest.mark.parametrize(
    "value", [None, "", "TRACE", "trace", "debug", "Info", "WARN", "warning", "FATAL", "critical", "NOTSET", "bogus"]
)
def test_parse_log_level_is_awslambdaric_s(value):
    assert logs.parse_log_level(value) == ric_log_utils._get_log_level_from_env_var(value)


@pytest.mark.parametrize(
    "value, is_json", [(None, False), ("", False), ("TEXT", False), ("json", True), ("Json", True), ("JSON ", False)]
)
def test_parse_log_format(value, is_json):
    assert logs.parse_log_format(value) is is_json
    assert is_json == (ric_log_utils.LogFormat.from_str(value) == ric_log_utils.LogFormat.JSON)


@pytest.mark.parametrize(
    "json_format, level, handler_class, root_level",
    [
        (False, "", "LambdaLoggerHandler", logging.WARNING),
        (False, "DEBUG", "LambdaLoggerHandlerWithFrameType", logging.DEBUG),
        (False, "BOGUS", "LambdaLoggerHandlerWithFrameType", logging.WARNING),
        (True, "", "LambdaLoggerHandlerWithFrameType", logging.WARNING),
        (True, "FATAL", "LambdaLoggerHandlerWithFrameType", logging.CRITICAL),
        (True, "NOTSET", "LambdaLoggerHandlerWithFrameType", logging.NOTSET),
    ],
)
def test_configure_logging(isolated, json_format, level, handler_class, root_level):
    root = logging.getLogger()
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    sink = logs.StandardLogSink()
    handler = logs.configure_logging(json_format, level, sink)
    assert root.handlers == [handler] and root.level == root_level
    assert type(handler).__name__ == handler_class and handler.log_sink is sink
    assert type(handler.formatter) is (logs.JsonFormatter if json_format else logging.Formatter)
    assert logging.Formatter.converter is time.gmtime
    assert [type(f).__name__ for f in handler.filters] == ["LambdaLoggerFilter"]


def test_setup_twice_keeps_one_root_handler(isolated, monkeypatch):
    monkeypatch.setattr(logs, "unbuffered", lambda stream: stream)
    logging.getLogger().handlers[:] = []
    logs.setup()
    logs.setup()
    assert len(logging.getLogger().handlers) == 1


class RecordingSink:
    def __init__(self):
        self.logged = []
        self.errors = []

    def log(self, msg, frame_type=None):
        self.logged.append((msg, frame_type))

    def log_error(self, lines):
        self.errors.append(lines)


@pytest.mark.parametrize(
    "json_format, level, expected_types",
    [
        (False, "", [None, None]),
        (False, "INFO", [logs.TEXT_FRAME_TYPES[20], logs.TEXT_FRAME_TYPES[50]]),
        (True, "", [logs.JSON_FRAME_TYPES[20], logs.JSON_FRAME_TYPES[50]]),
    ],
)
def test_records_reach_the_sink_with_request_ids_and_frame_types(isolated, json_format, level, expected_types):
    logging.getLogger().handlers[:] = []
    sink = RecordingSink()
    logs.configure_logging(json_format, level, sink)
    logging.getLogger().setLevel(logging.DEBUG)
    logs.set_request("rid-1", "tenant-1")
    logging.getLogger("t").log(25, "twenty-five")
    logs.set_request("rid-2", None)
    logging.getLogger("t").log(60, "sixty")
    assert [frame_type for _, frame_type in sink.logged] == expected_types
    first, second = (message for message, _ in sink.logged)
    assert "rid-1" in first and "rid-2" in second
    assert ('"tenantId": "tenant-1"' in first) == json_format and "tenantId" not in second


def test_context_log_uses_the_first_root_handler_with_a_sink_else_stdout(isolated):
    root = logging.getLogger()
    sink = RecordingSink()
    root.handlers[:] = [logging.NullHandler(), logs.LambdaLoggerHandler(sink)]
    logs.context_log("hello")
    assert sink.logged == [("hello", None)]
    root.handlers[:] = [logging.NullHandler()]
    sys.stdout = io.StringIO()
    logs.context_log("to stdout")
    assert sys.stdout.getvalue() == "to stdout"


def test_runtime_log_writes_one_raw_line_on_fd_1(capfdbinary):
    before = time.time_ns() // 1_000_000
    logs.runtime_log("Failed to post handler success response. Http response code: 413. \xe9\udcff")
    out = capfdbinary.readouterr().out
    prefix, stamp, rest = out.split(b" ", 2)
    assert prefix == b"[ERROR]" and before <= int(stamp.strip(b"[]")) <= time.time_ns() // 1_000_000
    assert rest == b"LAMBDA_RUNTIME Failed to post handler success response. Http response code: 413. \xc3\xa9\xff\n"


def test_preview_warning(isolated, monkeypatch, caplog):
    assert "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html\r" in logs.preview_runtime_warning()
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    from awslambdaric.lambda_literals import get_lambda_preview_runtime_warning_message

    assert logs.preview_runtime_warning() == get_lambda_preview_runtime_warning_message()
    assert "https://docs.amazonaws.cn/" in logs.preview_runtime_warning()
    for env, disabled, logged in [
        ("AWS_Lambda_python3.14", "", 0),
        ("AWS_Lambda_python3.15", "1", 0),
        ("AWS_Lambda_python3.15", "", 1),
    ]:
        monkeypatch.setenv("AWS_EXECUTION_ENV", env)
        monkeypatch.setenv("LAMBDA_DISABLE_PREVIEW_WARN", disabled)
        caplog.clear()
        logs.warn_preview_runtime()
        assert len(caplog.records) == logged


def test_unhandled_init_warning_text_is_awslambdaric_s():
    from awslambdaric.lambda_literals import lambda_unhandled_exception_warning_message

    assert logs.UNHANDLED_INIT_WARNING == lambda_unhandled_exception_warning_message


# -- JSON formatter -------------------------------------------------------------------------------------------


def _raise_and_capture():
    try:
        {}["missing"]
    except KeyError:
        return sys.exc_info()


RECORD_CASES = {
    "plain": dict(msg="hello %s", args=("world",)),
    "unicode": dict(msg=TRICKY.replace("\ud800", "")),
    "dict": dict(msg={"structured": True, "n": 1, "f": 1.5, "none": None}),
    "dict-with-args": dict(msg={"a": "%s"}, args=("x",)),
    "non-json-values": dict(msg={"t": type, "s": {1}}),
    "level-25": dict(level=25),
    "level-60": dict(level=60),
    "level-5": dict(level=5),
    "exception": dict(exc_info=_raise_and_capture()),
    "extra": dict(
        extra={
            "custom": {"a": [1, None]},
            "obj": object,
            "none_field": None,
            "location": "x",
            "tenantId": "from-extra",
            "requestId": "r",
            # taskName is a LogRecord attribute from 3.12 on, and `extra` may not overwrite it
            **({"taskName": "kept"} if sys.version_info < (3, 12) else {}),
        }
    ),
    "no-tenant": dict(tenant_id=None),
}


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
@pytest.mark.parametrize("milliseconds", [False, True])
def test_json_formatter_matches_awslambdaric(isolated, case, milliseconds):
    logging.Formatter.converter = time.gmtime
    spec = dict(RECORD_CASES[case])
    extra = spec.pop("extra", {})
    tenant_id = spec.pop("tenant_id", "tenant-1")

    def make_record():
        record = logging.getLogger("my.logger").makeRecord(
            "my.logger",
            spec.get("level", logging.WARNING),
            "/var/task/app.py",
            42,
            spec.get("msg", "m"),
            spec.get("args", ()),
            spec.get("exc_info"),
            func="handler",
            extra=extra,
        )
        record.created, record.msecs = 1795611344.384, 384.0
        record.aws_request_id, record.tenant_id = "rid-1", tenant_id
        return record

    theirs, ours = make_record(), make_record()
    expected = ric_log_utils.JsonFormatter().format(theirs)
    actual = logs.JsonFormatter(milliseconds).format(ours)
    if milliseconds:
        assert '"timestamp": "2026-11-25T12:55:44.384Z"' in actual
        actual = actual.replace("44.384Z", "44Z", 1)
    assert actual == expected
    assert (ours.levelno, ours.levelname, ours._frame_type) == (theirs.levelno, theirs.levelname, theirs._frame_type)


def test_json_formatter_raises_where_awslambdaric_does():
    """`logger.exception()` outside an except block: awslambdaric's formatter raises AttributeError."""
    record = logging.LogRecord("x", logging.ERROR, "/p.py", 1, "m", None, (None, None, None))
    record.aws_request_id = ""
    with pytest.raises(AttributeError):
        ric_log_utils.JsonFormatter().format(record)
    with pytest.raises(AttributeError):
        logs.JsonFormatter().format(record)


# -- runtime error blocks -------------------------------------------------------------------------------------

ERROR_DOCUMENTS = {
    "full": {
        "errorMessage": "bad value: 7",
        "errorType": "ValueError",
        "requestId": "rid-1",
        "stackTrace": [
            '  File "/var/task/app.py", line 5, in handler\n    return helper(event.get("x"))\n',
            '  File "/var/task/app.py", line 3, in helper\n    raise ValueError("bad value: %s" % x)\n',
        ],
    },
    "no-type": {"errorMessage": "message only", "errorType": "", "requestId": "", "stackTrace": []},
    "no-message": {"errorMessage": "", "errorType": "Runtime.Fault", "requestId": "", "stackTrace": []},
    "nothing": {"errorMessage": "", "errorType": "", "requestId": "", "stackTrace": []},
    "syntax": {
        "errorMessage": "Syntax error in module 'app': expected ':' (app.py, line 1)",
        "errorType": "Runtime.UserCodeSyntaxError",
        "requestId": "",
        "stackTrace": ['  File "/var/task/app.py" Line 1\n    def handler(e, c)\n'],
    },
    "odd-elements": {
        "errorMessage": "multi\nline",
        "errorType": "E",
        "requestId": "r",
        "stackTrace": ["", "   three spaces\r\n\tтаб\u2028next  \n", "no indent"],
    },
    "frozen": {
        "errorMessage": TRICKY,
        "errorType": "KeyError",
        "requestId": "r",
        "stackTrace": ['  File "<frozen importlib._bootstrap>", line 1204, in _gcd_import\n'],
    },
}


@pytest.mark.parametrize("case", sorted(ERROR_DOCUMENTS))
def test_text_error_lines_match_awslambdaric(case):
    sink = RecordingSink()
    ric_bootstrap.log_error(ERROR_DOCUMENTS[case], sink)  # the TEXT variant (AWS_LAMBDA_LOG_FORMAT unset)
    assert logs.text_error_lines(ERROR_DOCUMENTS[case]) == sink.errors[0]


def test_text_error_block_on_stdout_uses_carriage_returns(isolated):
    sys.stdout = io.StringIO()
    logs.state.sink, logs.state.json_format = logs.StandardLogSink(), False
    logs.log_error(ERROR_DOCUMENTS["full"])
    assert sys.stdout.getvalue() == (
        "[ERROR] ValueError: bad value: 7\rTraceback (most recent call last):\r"
        '\xa0\xa0File "/var/task/app.py", line 5, in handler\r\xa0\xa0\xa0\xa0return helper(event.get("x"))\r'
        '\xa0\xa0File "/var/task/app.py", line 3, in helper\r\xa0\xa0\xa0\xa0raise ValueError("bad value: %s" % x)\n'
    )


@pytest.mark.parametrize(
    "execution_env",
    [None, "AWS_Lambda_python3.11", "AWS_Lambda_python3.12", "AWS_Lambda_python3.15", "AWS_Lambda_Image"],
)
@pytest.mark.parametrize("case", sorted(ERROR_DOCUMENTS))
def test_json_error_line_matches_awslambdaric_to_json(isolated, monkeypatch, case, execution_env):
    if execution_env:
        monkeypatch.setenv("AWS_EXECUTION_ENV", execution_env)
    monkeypatch.setattr(time, "time", lambda: 1795611344.25)
    logging.Formatter.converter = time.gmtime
    expected = ric_to_json({"timestamp": "2026-11-25T12:55:44Z", "level": "ERROR", **ERROR_DOCUMENTS[case]})
    assert logs.json_error_line(ERROR_DOCUMENTS[case]) == expected
    logs.state.milliseconds = True
    assert logs.json_error_line(ERROR_DOCUMENTS[case]) == expected.replace("44Z", "44.250Z", 1)


def test_stdlib_json_and_simplejson_agree_on_strings():
    """json_error_line relies on the stdlib producing simplejson's bytes for str/list values."""
    import json

    value = {"k": [TRICKY, chr(0x10FFFF), "".join(map(chr, range(0x20)))]}
    for ensure_ascii in (True, False):
        assert json.dumps(value, ensure_ascii=ensure_ascii) == simplejson.dumps(value, ensure_ascii=ensure_ascii)


# -- stdout / stderr ------------------------------------------------------------------------------------------


def test_unbuffered_wraps_streams_without_a_descriptor_in_a_flushing_proxy():
    class Counting(io.StringIO):
        flushes = 0

        def flush(self):
            self.flushes += 1

    stream = Counting()
    wrapped = logs.unbuffered(stream)
    wrapped.write("a")
    wrapped.writelines(["b", "c"])
    assert stream.getvalue() == "abc" and stream.flushes == 2 and wrapped.getvalue() == "abc"
    assert logs.unbuffered(wrapped) is wrapped and logs.unbuffered(None) is None


UNBUFFERED_PROBE = textwrap.dedent("""
    import io, os, sys
    from fastric.runtime import logs
    before = sys.stdout
    sys.stdout.write("pending;")  # still in the original buffer: must come out first
    logs.setup()
    out, err = sys.stdout, sys.stderr
    assert isinstance(out, io.TextIOWrapper) and out.write_through and out is not before
    assert (out.encoding, out.errors, out.name, out.mode) == (before.encoding, before.errors, "<stdout>", "w")
    assert err.errors == "backslashreplace" and err.name == "<stderr>"
    assert out.fileno() == 1 and not out.isatty() and out.buffer.fileno() == 1
    print("a", "b")
    err.write("e;")
    size_after_print = os.fstat(1).st_size
    sys.stdout.buffer.write(b"raw;")
    print(size_after_print, os.fstat(1).st_size, os.environ.get("_LAMBDA_TELEMETRY_LOG_FD"))
    os._exit(0)  # no flushing at exit: everything must already be in the file
""")


def test_setup_makes_stdout_and_stderr_reach_their_descriptors_at_once(tmp_path):
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONIOENCODING"] = "utf-8:strict"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        subprocess.run(
            [sys.executable, "-c", UNBUFFERED_PROBE], stdout=out, stderr=err, env=env, check=True, timeout=30
        )
    assert err_path.read_bytes() == b"e;"
    assert out_path.read_bytes() == b"pending;a b\nraw;12 16 None\n"


def test_logging_set_up_imports_neither_json_nor_typing():
    """The package is imported on the way to the first /next: TEXT logging needs neither module (JSON logging
    imports json when its formatter is made), and task-local ids import contextvars only when switched on."""
    probe = (
        "import sys; from fastric.runtime import faults, logs; logs.setup(); logs.set_request('r', None); "
        "logs.log_error({'errorType': 'E'}); print(sorted({'json', 'typing', 'contextvars'} & set(sys.modules)))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_LAMBDA_LOG_FORMAT", "_LAMBDA_TELEMETRY_LOG_FD")}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=30)
    assert run.stdout.splitlines()[-1] == "[]", run.stderr


def test_set_request_sets_the_ids_the_filter_stamps(isolated):
    logs.set_request("rid-9", "t-9")
    assert (logs.state.request_id, logs.state.tenant_id) == ("rid-9", "t-9")
    record = logging.LogRecord("x", logging.INFO, "/p.py", 1, "m", None, None)
    logs.LambdaLoggerFilter().filter(record)
    assert (record.aws_request_id, record.tenant_id) == ("rid-9", "t-9")


# -- task-local ids (many asyncio invocations in one process) -------------------------------------------------


def _interleaved_invocations():
    """Two asyncio Tasks, each setting its ids then logging twice, their steps alternating: A sets, B sets,
    A logs, B logs, A logs, B logs. Returns the messages, in the order they were logged."""
    import asyncio

    async def invocation(name, steps, mine, theirs):
        for step in steps:
            await mine.wait()
            mine.clear()
            if step == "set":
                logs.set_request(f"rid-{name}", f"tenant-{name}")
            else:
                logging.getLogger("app").warning("%s %s", name, step)
            theirs.set()

    async def main():
        a_turn, b_turn = asyncio.Event(), asyncio.Event()
        a_turn.set()
        steps = ["set", "first", "second"]
        await asyncio.gather(invocation("A", steps, a_turn, b_turn), invocation("B", steps, b_turn, a_turn))

    asyncio.run(main())


@pytest.mark.parametrize("json_format", [False, True], ids=["TEXT", "JSON"])
def test_task_local_ids_follow_each_asyncio_task(isolated, json_format):
    import json

    logging.getLogger().handlers[:] = []
    sink = RecordingSink()
    logs.configure_logging(json_format, "", sink)
    logs.set_request("rid-0", None)
    logs.use_task_local_ids()
    _interleaved_invocations()
    logging.getLogger("app").warning("after")
    logs.use_task_local_ids(False)
    logging.getLogger("app").warning("default again")

    messages = [message for message, _ in sink.logged]
    if json_format:
        records = [json.loads(message) for message in messages]
        seen = [(r["message"], r["requestId"], r.get("tenantId")) for r in records]
    else:
        fields = [message.rstrip("\n").split("\t") for message in messages]
        seen = [(f[3], f[2], None) for f in fields]
        assert all(f[0] == "[WARNING]" for f in fields)
    tenant = (lambda name: f"tenant-{name}") if json_format else (lambda name: None)  # TEXT lines have no tenant
    assert seen == [
        ("A first", "rid-A", tenant("A")),
        ("B first", "rid-B", tenant("B")),
        ("A second", "rid-A", tenant("A")),
        ("B second", "rid-B", tenant("B")),
        ("after", "rid-0", None),  # the Tasks' ids stayed in their own contexts
        ("default again", "rid-0", None),
    ]
    assert type(logs.state) is logs.LogState


def test_by_default_the_ids_are_process_wide(isolated):
    """awslambdaric's behaviour, kept by default: the last `set_request` wins, in every Task and thread."""
    import threading

    logging.getLogger().handlers[:] = []
    sink = RecordingSink()
    logs.configure_logging(False, "", sink)
    _interleaved_invocations()
    thread = threading.Thread(target=logging.getLogger("app").warning, args=("from a thread",))
    thread.start()
    thread.join()
    assert [message.split("\t")[2] for message, _ in sink.logged] == ["rid-B"] * 5
    assert type(logs.state) is logs.LogState


def test_switching_to_task_local_ids_keeps_the_current_ids(isolated):
    logs.set_request("rid-1", "t-1")
    logs.use_task_local_ids()
    logs.use_task_local_ids()  # twice: no change
    assert (logs.state.request_id, logs.state.tenant_id) == ("rid-1", "t-1")
    logs.set_request("rid-2", None)
    logs.use_task_local_ids(False)
    assert (logs.state.request_id, logs.state.tenant_id) == ("rid-2", None)
    record = logging.LogRecord("x", logging.INFO, "/p.py", 1, "m", None, None)
    logs.LambdaLoggerFilter().filter(record)
    assert (record.aws_request_id, record.tenant_id) == ("rid-2", None)
