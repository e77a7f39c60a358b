"""Wire tests of the faults a Runtime API can throw at the runtime: both loops, against servers on 127.0.0.1.

No invocation is lost silently: what HTTP lets a client accept is accepted, the rest is logged (with the request
id when it could be read) before the runtime does anything else.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest
from raw_http import read_request
from runtime_api import RuntimeAPIServer, run_client

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "core")
LOOPS = ["app.handler", "async_app.echo"]  # the blocking loop and the uvloop loop


def fastric(handler, srv, **kwargs):
    kwargs.setdefault("cwd", FIXTURES)
    return run_client("fastric", handler, srv, **kwargs)


@pytest.mark.parametrize("handler", LOOPS)
def test_pipelining_can_be_turned_off_and_the_mode_is_said_only_with_fastric_debug(handler):
    with RuntimeAPIServer() as srv:  # sends Date: pipelining would be on
        srv.add_invocation({"op": "echo"})
        srv.add_invocation({"op": "echo"})
        run = fastric(handler, srv, env={"FASTRIC_PIPELINING": "0", "FASTRIC_DEBUG": "1"})
    assert [r.method for r in srv.requests] == ["GET", "POST", "GET", "POST", "GET"]
    assert [r.buffered_after for r in srv.requests] == [0, 0, 0, 0, 0]
    assert run.stdout.count(b"LAMBDA_RUNTIME HTTP/1.1 pipelining off (FASTRIC_PIPELINING is off)") == 1


@pytest.mark.parametrize("handler", LOOPS)
def test_the_function_log_stream_has_no_runtime_diagnostics_at_any_log_level(handler):
    """The function's log stream belongs to the function: AWS_LAMBDA_LOG_LEVEL=DEBUG (JSON or TEXT) does not
    make fastric write its own lines there (awslambdaric writes none); only FASTRIC_DEBUG does."""
    runs = {}
    for name, env in {
        "debug": {"AWS_LAMBDA_LOG_LEVEL": "DEBUG"},
        "json": {"AWS_LAMBDA_LOG_LEVEL": "DEBUG", "AWS_LAMBDA_LOG_FORMAT": "JSON"},
        "asked": {"FASTRIC_DEBUG": "1"},
    }.items():
        with RuntimeAPIServer() as srv:
            srv.add_invocation({"op": "echo"})
            runs[name] = fastric(handler, srv, env=env)
    assert b"pipelining" not in runs["debug"].stdout + runs["debug"].stderr
    assert b"pipelining" not in runs["json"].stdout + runs["json"].stderr
    assert b"[DEBUG] " in runs["asked"].stdout
    assert b"HTTP/1.1 pipelining on (the Runtime API sends Date)" in runs["asked"].stdout


class RawRuntimeAPI:
    """A Runtime API whose answers to `/next` are given as raw bytes, in order; then a 500 ends the run.

    POSTs get a 202. Every request line is recorded with the connection number it came on."""

    def __init__(self, next_answers: list[bytes]):
        self.answers = list(next_answers)
        self.seen: list[tuple[int, str]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        index = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            index += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn, index):
        buffer = b""
        try:
            while True:
                received = read_request(conn, buffer)
                if received is None:
                    return
                request_line, buffer = received
                self.seen.append((index, request_line.decode()))
                if request_line.startswith(b"POST"):
                    conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                elif self.answers:
                    answer = self.answers.pop(0)
                    if answer is None:
                        conn.close()
                        return
                    if answer.endswith(b"#slow"):  # one byte at a time
                        for byte in answer[: -len(b"#slow")]:
                            conn.sendall(bytes([byte]))
                            time.sleep(0.001)
                        continue
                    conn.sendall(answer)
                    if answer.endswith(b"#cut"):
                        conn.shutdown(socket.SHUT_RDWR)
                        conn.close()
                        return
                    if answer.endswith(b"#reset"):  # an RST instead of a FIN
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        conn.close()
                        return
                else:
                    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.listener.close()
        for conn in self._conns:
            conn.close()


def next_answer(request_id: bytes, body: bytes = b'{"op": "echo"}', extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: %s\r\nContent-Type: application/json\r\n%s"
        b"Content-Length: %d\r\n\r\n%s" % (request_id, extra, len(body), body)
    )


def posts(api):
    return [line for _, line in api.seen if line.startswith("POST")]


@pytest.mark.parametrize("handler", LOOPS)
@pytest.mark.parametrize(
    "interim", [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"]
)
def test_interim_responses_are_skipped(handler, interim):
    with RawRuntimeAPI([interim + next_answer(b"rid-1"), interim + interim + next_answer(b"rid-2")]) as api:
        run = fastric(handler, api)
    assert posts(api) == [
        "POST /2018-06-01/runtime/invocation/rid-1/response HTTP/1.1",
        "POST /2018-06-01/runtime/invocation/rid-2/response HTTP/1.1",
    ]
    assert {index for index, _ in api.seen} == {1}
    assert b"Http Response code: 500" in run.stdout


@pytest.mark.parametrize("handler", LOOPS)
@pytest.mark.parametrize(
    "extra",
    [
        b"X-Folded: a\r\n b\r\n",  # obs-fold (RFC 9112 5.2)
        b"Transfer-Encoding: chunked\r\n",  # with Content-Length: chunked wins (RFC 9112 6.3)
    ],
    ids=["obs-fold", "te-and-cl"],
)
def test_what_http_lets_a_client_accept_is_accepted(handler, extra):
    body = b'{"op": "echo"}'
    if b"chunked" in extra:
        answer = (
            b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: rid-1\r\nContent-Length: 99\r\n%s\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n" % (extra, len(body), body)
        )
    else:
        answer = next_answer(b"rid-1", extra=extra)
    with RawRuntimeAPI([answer]) as api:
        fastric(handler, api)
    assert posts(api) == ["POST /2018-06-01/runtime/invocation/rid-1/response HTTP/1.1"]


@pytest.mark.parametrize("handler", LOOPS)
@pytest.mark.parametrize(
    "answer, reason",
    [
        (next_answer(b"rid-nul", extra=b"X-Bad: a\x00b\r\n"), b"NUL in the value of header x-bad (request id rid-nul)"),
        (next_answer(b"rid-dup", extra=b"Content-Length: 14\r\n"), b"Duplicate Content-Length"),
    ],
    ids=["nul", "duplicate-content-length"],
)
def test_a_refused_response_is_logged_before_anything_else(handler, answer, reason):
    with RawRuntimeAPI([answer, next_answer(b"rid-ok")]) as api:
        run = fastric(handler, api)
    assert b"LAMBDA_RUNTIME Malformed response from the Runtime API: " + reason in run.stdout
    assert posts(api) == ["POST /2018-06-01/runtime/invocation/rid-ok/response HTTP/1.1"]


@pytest.mark.parametrize("handler", LOOPS)
def test_a_truncated_body_is_logged_with_its_request_id(handler):
    cut = next_answer(b"rid-cut", body=b'{"op": "echo", "padding": "' + b"x" * 1000 + b'"}')[:-500] + b"#cut"
    with RawRuntimeAPI([cut, next_answer(b"rid-ok")]) as api:
        run = fastric(handler, api)
    assert b"Response from the Runtime API cut short" in run.stdout
    assert b"(request id rid-cut)" in run.stdout
    assert posts(api) == ["POST /2018-06-01/runtime/invocation/rid-ok/response HTTP/1.1"]


@pytest.mark.parametrize("handler", LOOPS)
def test_an_oversized_head_is_refused(handler):
    huge = next_answer(b"rid-huge", extra=b"X-Huge: " + b"h" * (2 << 20) + b"\r\n")
    with RawRuntimeAPI([huge, next_answer(b"rid-ok")]) as api:
        run = fastric(handler, api)
    assert b"response head larger than 1048576 bytes (request id rid-huge)" in run.stdout
    assert posts(api) == ["POST /2018-06-01/runtime/invocation/rid-ok/response HTTP/1.1"]


@pytest.mark.parametrize("handler", LOOPS)
def test_header_legal_invocation_ids_are_echoed(handler):
    with RuntimeAPIServer() as srv:
        srv.add_invocation({"op": "echo"}, headers={"Lambda-Runtime-Invocation-Id": "inv id/with%20odd chars"})
        fastric(handler, srv)
    post = [r for r in srv.requests if r.method == "POST"][0]
    assert post.header("lambda-runtime-invocation-id") == "inv id/with%20odd chars"


@pytest.mark.parametrize("handler", LOOPS)
def test_a_response_arriving_one_byte_at_a_time_is_read_whole(handler):
    with RawRuntimeAPI([next_answer(b"rid-slow") + b"#slow"]) as api:
        fastric(handler, api)
    assert posts(api) == ["POST /2018-06-01/runtime/invocation/rid-slow/response HTTP/1.1"]


@pytest.mark.parametrize("handler", LOOPS)
def test_a_reset_mid_body_is_logged_with_its_request_id(handler):
    cut = next_answer(b"rid-reset", body=b'{"op": "echo", "padding": "' + b"x" * 1000 + b'"}')[:-500] + b"#reset"
    with RawRuntimeAPI([cut, next_answer(b"rid-ok")]) as api:
        run = fastric(handler, api)
    assert b"(request id rid-reset)" in run.stdout
    assert posts(api) == ["POST /2018-06-01/runtime/invocation/rid-ok/response HTTP/1.1"]
