"""Differential log tests: the same functions under awslambdaric 4.2.2 and fastric, same environment, and the
stdout/stderr bytes and decoded telemetry frames must be identical once timestamps are normalised.

Request ids are fixed per invocation and both clients run the same fixture files, so paths in tracebacks agree
without rewriting. The only other normalisation: awslambdaric crashes with a traceback on stderr when the fake
Runtime API ends the scenario (fastric exits quietly), so that final traceback is cut from its stderr.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import tempfile
import time

import pytest
from runtime_api import RuntimeAPIServer, base_env, client_command, run_client

from fastric.runtime.logs import decode_frames

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "logging")
CLIENTS = ("awslambdaric", "fastric")
NO_INHERITED = {"PYTHONUNBUFFERED": None, "TZ": None}  # the test runner's own settings must not leak in

TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
RUNTIME_LINE_MS = re.compile(rb"\[ERROR\] \[\d{13}\] LAMBDA_RUNTIME")
END_OF_SCENARIO = b"[ERROR] [<MS>] LAMBDA_RUNTIME Failed to get next invocation. Http Response code: 500\n"
CLIENT_EXIT_TRACEBACK = re.compile(rb"Traceback \(most recent call last\):\n.*Failed to get next[^\n]*\n\Z", re.S)

TENANT = {"Lambda-Runtime-Aws-Tenant-Id": "tenant-A"}
EMIT_INVOCATIONS = [
    {"event": {"op": "all"}, "request_id": "rid-all"},
    {"event": {"op": "raise"}, "request_id": "rid-raise", "headers": TENANT},
    {"event": {"op": "keyerror"}, "request_id": "rid-keyerror"},
    {"event": {"op": "all"}, "request_id": "rid-tenant", "headers": TENANT},
]


# fastric's one debug record of its own (which HTTP/1.1 pipelining mode it uses): a deliberate difference
PIPELINING_DEBUG = re.compile(rb"[^\n]*HTTP/1\.1 pipelining (?:on|off) \([^)\n]*\)[^\n]*\n?")


def normalise(data: bytes) -> bytes:
    """Timestamps and epoch milliseconds replaced by placeholders (keeping whether milliseconds were there)."""
    data = PIPELINING_DEBUG.sub(b"", data)
    data = TIMESTAMP.sub(lambda m: b"<TS.ms>" if m.group(1) else b"<TS>", data)
    return RUNTIME_LINE_MS.sub(b"[ERROR] [<MS>] LAMBDA_RUNTIME", data)


def _stop_accepting(srv: RuntimeAPIServer) -> None:
    # Closing a listening socket does not wake a thread blocked in accept() on Linux; shutting it down does,
    # which saves RuntimeAPIServer.close() a 5-second join timeout per scenario.
    try:
        srv._sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def run_scenario(client: str, handler: str, invocations: list[dict], env: dict, telemetry: bool, respond=None) -> dict:
    """Run one client; return its exit code, normalised stdout/stderr and decoded frames (timestamps dropped)."""
    env = {**NO_INHERITED, **env}
    with tempfile.TemporaryFile() as frames_file, RuntimeAPIServer(respond=respond) as srv:
        pass_fds: tuple[int, ...] = ()
        if telemetry:
            pass_fds = (frames_file.fileno(),)
            env["_LAMBDA_TELEMETRY_LOG_FD"] = str(frames_file.fileno())
        for invocation in invocations:
            srv.add_invocation(**invocation)
        try:
            run = run_client(client, handler, srv, cwd=FIXTURES, env=env, pass_fds=pass_fds)
        finally:
            _stop_accepting(srv)
        frames_file.seek(0)
        frames = [
            (hex(kind), normalise(message.encode()).decode())
            for kind, _, message in decode_frames(frames_file.read())
            if not PIPELINING_DEBUG.fullmatch(message.encode())
        ]
    stderr = run.stderr
    if client == "awslambdaric":
        stderr = CLIENT_EXIT_TRACEBACK.sub(b"", stderr)
    return {
        "returncode": run.returncode,
        "stdout": normalise(run.stdout),
        "stderr": normalise(stderr),
        "frames": frames,
    }


def assert_same(handler: str, invocations: list[dict], env: dict, telemetry: bool) -> dict:
    """Run both clients and assert identical output; return fastric's for extra checks."""
    expected, actual = (run_scenario(client, handler, invocations, env, telemetry) for client in CLIENTS)
    assert actual["stdout"].decode() == expected["stdout"].decode()
    assert actual["stderr"].decode() == expected["stderr"].decode()
    assert actual["frames"] == expected["frames"]
    assert actual["returncode"] == expected["returncode"]
    return actual


def _env(log_format=None, log_level=None, **extra) -> dict:
    return {"AWS_LAMBDA_LOG_FORMAT": log_format, "AWS_LAMBDA_LOG_LEVEL": log_level, **extra}


@pytest.mark.parametrize("telemetry", [False, True], ids=["stdout", "telemetry-fd"])
@pytest.mark.parametrize("log_level", [None, "DEBUG", "info", "WARN", "TRACE", "FATAL", "bogus"])
@pytest.mark.parametrize("log_format", [None, "json"], ids=["TEXT", "JSON"])
def test_every_record_kind_matches(log_format, log_level, telemetry):
    out = assert_same("emit.handler", EMIT_INVOCATIONS, _env(log_format, log_level), telemetry)
    # The comparison is only as good as the scenario: check it produced what it is meant to exercise.
    text = out["stdout"].decode() + "".join(message for _, message in out["frames"])
    assert "plain print" in out["stdout"].decode() and "to stderr" in out["stderr"].decode()
    assert "ctx log" in text and "ValueError" in text and "KeyError" in text
    assert ("caught" in text) == (log_level != "FATAL")
    assert ("tenantId" in text) == (log_format == "json")
    if telemetry:
        assert out["frames"] and "warning" not in out["stdout"].decode()
    else:
        assert not out["frames"]


@pytest.mark.parametrize("telemetry", [False, True], ids=["stdout", "telemetry-fd"])
@pytest.mark.parametrize(
    "env",
    [
        _env("JSON"),
        _env("Text", "ERROR"),
        _env("json", AWS_EXECUTION_ENV="AWS_Lambda_python3.12"),
        _env(None, AWS_EXECUTION_ENV="AWS_Lambda_python3.12"),
        _env("json", AWS_EXECUTION_ENV="AWS_Lambda_python3.15"),
        _env(None, "INFO", AWS_EXECUTION_ENV="AWS_Lambda_python3.15", AWS_REGION="cn-north-1"),
        _env(None, AWS_EXECUTION_ENV="AWS_Lambda_python3.15", LAMBDA_DISABLE_PREVIEW_WARN="1"),
        _env("JSON", "notset", AWS_EXECUTION_ENV="AWS_Lambda_Image"),
    ],
    ids=[
        "JSON-upper",
        "Text-ERROR",
        "JSON-py3.12",
        "TEXT-py3.12",
        "JSON-preview",
        "TEXT-preview-cn",
        "TEXT-preview-disabled",
        "JSON-NOTSET-image",
    ],
)
def test_format_spellings_and_execution_envs_match(env, telemetry):
    assert_same("emit.handler", EMIT_INVOCATIONS[:3], env, telemetry)


@pytest.mark.parametrize("telemetry", [False, True], ids=["stdout", "telemetry-fd"])
@pytest.mark.parametrize("log_level", [None, "ERROR"])
@pytest.mark.parametrize("log_format", [None, "json"], ids=["TEXT", "JSON"])
def test_init_exception_matches(log_format, log_level, telemetry):
    out = assert_same("init_raise.handler", [], _env(log_format, log_level), telemetry)
    text = out["stdout"].decode() + "".join(message for _, message in out["frames"])
    assert "RuntimeError" in text and ("LAMBDA_WARNING" in text) == (log_level is None)


@pytest.mark.parametrize("telemetry", [False, True], ids=["stdout", "telemetry-fd"])
@pytest.mark.parametrize("log_format", [None, "json"], ids=["TEXT", "JSON"])
@pytest.mark.parametrize("handler", ["init_syntax.handler", "missing_module.handler", "nodots", "emit.nothere"])
def test_init_fault_matches(handler, log_format, telemetry):
    assert_same(handler, [], _env(log_format), telemetry)


@pytest.mark.parametrize("telemetry", [False, True], ids=["stdout", "telemetry-fd"])
@pytest.mark.parametrize("log_format", [None, "json"], ids=["TEXT", "JSON"])
def test_user_logging_configuration_matches(log_format, telemetry):
    ops = ["handlers", "basicConfig", "setLevel", "loggerLevel", "raise", "dictConfig", "raise"]
    invocations = [{"event": {"op": op}, "request_id": f"rid-{i}-{op}"} for i, op in enumerate(ops)]
    out = assert_same("user_config.handler", invocations, _env(log_format, "DEBUG" if telemetry else None), telemetry)
    assert "DICT WARNING|root|root warning after dictConfig\nctx after dictConfig\n" in out["stdout"].decode()


def run_merged(client: str, handler: str, invocations: list[dict], env: dict) -> bytes:
    """Run a client with stderr merged into stdout, to compare how the two streams interleave."""
    with RuntimeAPIServer() as srv:
        for invocation in invocations:
            srv.add_invocation(**invocation)
        full_env = {k: v for k, v in {**base_env(srv.address), **NO_INHERITED, **env}.items() if v is not None}
        proc = subprocess.Popen(
            client_command(client, handler),
            cwd=FIXTURES,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _stop_accepting(srv)
    # Everything after the runtime's last line is awslambdaric's exit traceback (fastric prints nothing).
    head, end, tail = normalise(out).partition(END_OF_SCENARIO)
    assert end and (client == "awslambdaric" or not tail)
    return head + end


@pytest.mark.parametrize("unbuffered_env", [None, "1"], ids=["buffered-python", "PYTHONUNBUFFERED"])
def test_stdout_stderr_interleaving_matches(unbuffered_env):
    env = {"PYTHONUNBUFFERED": unbuffered_env}
    expected, actual = (run_merged(client, "emit.handler", EMIT_INVOCATIONS[:2], env) for client in CLIENTS)
    assert actual.decode() == expected.decode()
    assert b"two\nto stderr\nstderr no newline;env fd: None\n" in actual


def _read_available(stream, wanted: bytes, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("client", CLIENTS)
def test_output_reaches_the_pipe_before_the_next_invocation(client):
    """Writes are flushed at once: visible while the client waits on /next, long before it exits."""
    with RuntimeAPIServer() as srv:
        srv.hold_next_when_empty = True
        srv.add_invocation({"op": "all"}, request_id="rid-1")
        env = {k: v for k, v in {**base_env(srv.address), **NO_INHERITED}.items() if v is not None}
        proc = subprocess.Popen(
            client_command(client, "emit.handler"),
            cwd=FIXTURES,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert srv.wait_for(lambda requests: sum(r.path.endswith("/next") for r in requests) >= 2)
            stdout = _read_available(proc.stdout, b"end of handler\n")
            stderr = _read_available(proc.stderr, b"stderr no newline;")
            assert proc.poll() is None
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            _stop_accepting(srv)
    assert stdout.endswith(b"end of handler\n")
    assert stderr.endswith(b"stderr no newline;")


@pytest.mark.parametrize("telemetry", [False, True], ids=["stdout", "telemetry-fd"])
def test_millisecond_json_timestamps_are_opt_in(telemetry):
    """fastric only (awslambdaric PR #205): the same output, with `.mmm` in every JSON timestamp."""
    env = _env("JSON", AWS_LAMBDA_LOG_TIMESTAMP_PRECISION="milliseconds")
    expected = run_scenario("awslambdaric", "emit.handler", EMIT_INVOCATIONS[:2], env, telemetry)
    actual = run_scenario("fastric", "emit.handler", EMIT_INVOCATIONS[:2], env, telemetry)
    assert b"<TS>" not in actual["stdout"]
    assert all("<TS>" not in message for _, message in actual["frames"])

    def seconds(text):
        return text.replace("<TS.ms>", "<TS>")

    assert seconds(actual["stdout"].decode()) == expected["stdout"].decode()
    assert [(kind, seconds(message)) for kind, message in actual["frames"]] == expected["frames"]
    assert (b"<TS.ms>" in actual["stdout"]) != telemetry


TOO_LARGE = (
    413,
    {"Content-Type": "application/json"},
    b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}',
)


@pytest.mark.parametrize("op, refused", [("all", "/response"), ("raise", "/error")])
def test_refused_post_log_line_matches(op, refused):
    """The runtime's line about a refused POST (awslambdaric then exits; fastric goes on: a documented difference).
    For a refused /error awslambdaric's C library says "success response" (its bug); fastric says "error response"."""

    def respond(request):
        return TOO_LARGE if request.path.endswith(refused) else None

    lines = []
    for client in CLIENTS:
        out = run_scenario(client, "emit.handler", [{"event": {"op": op}, "request_id": "rid-1"}], {}, True, respond)
        lines.append([line for line in out["stdout"].splitlines() if b"LAMBDA_RUNTIME" in line][0])
    expected = lines[0] if refused == "/response" else lines[0].replace(b"success response", b"error response")
    assert lines[1] == expected
    assert lines[0].startswith(
        b"[ERROR] [<MS>] LAMBDA_RUNTIME Failed to post handler success response. Http response code: 413. {"
    )
