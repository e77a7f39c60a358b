"""The standard-library response parser against `ResponseParser` (httptools): for any bytes, split anywhere, the
same responses, the same MalformedResponse at the same byte, the same in-progress state, the same partial
request id; plain responses never import httptools; large bodies are received in place."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_parser import ACCEPTED, CHUNKED, NEXT

from fastric.runtime.wire.parser import MalformedResponse, ResponseParser
from fastric.runtime.wire.plainparser import LARGE_BODY, PlainResponseParser

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CLOSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
UNFRAMED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
LARGE = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: big\r\nContent-Length: %d\r\n\r\n" % LARGE_BODY + (
    b"x" * LARGE_BODY
)


def run(parser, data: bytes, cuts) -> list:
    """Everything observable while `data` is fed in pieces, then at the end of the stream."""
    seen: list = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        piece = data[start:cut]
        start = max(start, cut)
        try:
            parser.feed(piece)
        except MalformedResponse as exc:
            seen.append(("malformed", str(exc), exc.request_id, cut))
            return seen
        while (response := parser.next_response()) is not None:
            seen.append(("response", response.status, response.headers, bytes(response.body), response.keep_alive))
        seen.append(("state", parser.in_progress, parser.partial_request_id()))
    seen.append(("eof", parser.eof()))
    while (response := parser.next_response()) is not None:
        seen.append(("response", response.status, response.headers, bytes(response.body), response.keep_alive))
    return seen


def same_as_httptools(data: bytes, cuts=()) -> list:
    plain = run(PlainResponseParser(), data, cuts)
    assert plain == run(ResponseParser(), data, cuts)
    return plain


@pytest.mark.parametrize(
    "stream",
    [
        NEXT + ACCEPTED,
        ACCEPTED + CHUNKED + NEXT,
        CONTINUE + NEXT,
        NEXT + CLOSE,
        NEXT + UNFRAMED,
        LARGE + NEXT,
        b"HTTP/1.1 200 OK\r\nX-A:  spaced \t\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n" + NEXT,
        b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",  # bare LF: httptools' leniency
        b"HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 1\r\n\r\nx",  # obs-fold
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2 \r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: rid-9\r\nX-A: a\x00b\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nX-A: a\x7fb\x01\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 600 Odd\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n",
        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: cut\r\nContent-Length: 10\r\n\r\nonly",
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: cut-in-head\r\nContent-Le",
    ],
)
def test_the_same_as_httptools_split_at_every_byte(stream):
    whole = same_as_httptools(stream)
    for cut in range(1, min(len(stream), 400)):
        same_as_httptools(stream, [cut])
    assert whole  # something was observed


def test_byte_by_byte():
    stream = NEXT + ACCEPTED + CHUNKED + NEXT
    responses = lambda seen: [item for item in seen if item[0] == "response"]
    assert responses(same_as_httptools(stream, range(1, len(stream)))) == responses(same_as_httptools(stream))


def test_a_large_body_is_received_in_place():
    parser = PlainResponseParser()
    head, body = LARGE.split(b"\r\n\r\n", 1)
    parser.feed(head + b"\r\n\r\n" + body[:100])
    assert parser.next_response() is None and parser.partial_request_id() == "big"
    room = parser.body_room()
    assert room is not None and len(room) == LARGE_BODY - 100
    room[:] = body[100:]
    parser.body_received(len(room))
    response = parser.next_response()
    assert response is not None and isinstance(response.body, bytearray) and response.body == body
    assert parser.body_room() is None and not parser.in_progress
    parser.feed(NEXT)
    assert parser.next_response().headers[b"lambda-runtime-aws-request-id"] == b"rid-1"


def test_plain_responses_never_import_httptools():
    code = (
        "import sys; before = set(sys.modules); "
        "from fastric.runtime.wire.plainparser import PlainResponseParser as P; p = P(); "
        f"p.feed({NEXT + ACCEPTED!r}); assert p.next_response() and p.next_response(); "
        "print(sorted(m for m in ('httptools', 'typing', 'collections', 're') if m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


token = st.text("abcdefghijklmnopqrstuvwxyzABC-_.!", min_size=1, max_size=12)
value = st.binary(max_size=30)
statuses = st.sampled_from([100, 200, 202, 204, 299, 304, 400, 403, 413, 500, 502, 599, 600])


@st.composite
def streams(draw):
    """Responses in the plain form and around it (odd values, odd framing, odd line ends)."""
    out = b""
    for _ in range(draw(st.integers(1, 3))):
        status = draw(statuses)
        head = b"HTTP/1.1 %d %s\r\n" % (status, draw(st.sampled_from([b"OK", b"", b"Reason Phrase"])))
        for name, text in draw(st.lists(st.tuples(token, value), max_size=5)):
            head += name.encode() + b":" + draw(st.sampled_from([b" ", b"", b"\t"])) + text + b"\r\n"
        body = draw(st.binary(max_size=80))
        framing = draw(st.sampled_from(["length", "length", "none", "chunked", "close", "odd length"]))
        if framing == "length":
            head += b"Content-Length: %d\r\n" % len(body)
        elif framing == "odd length":
            head += b"Content-Length: %s\r\n" % draw(st.sampled_from([b"%d " % len(body), b"0%d" % len(body), b"x"]))
        elif framing == "chunked":
            head += b"Transfer-Encoding: chunked\r\n"
            body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        elif framing == "close":
            head += b"Connection: close\r\nContent-Length: %d\r\n" % len(body)
        out += head + b"\r\n" + body
        if draw(st.booleans()):
            out = out.replace(b"\r\n", b"\n", draw(st.integers(0, 2)))
    return out


@settings(max_examples=400, deadline=None)
@given(streams(), st.lists(st.integers(0, 2000), max_size=6))
def test_streams_around_the_plain_form_the_same_as_httptools(data, cuts):
    same_as_httptools(data, cuts)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=4))
def test_garbage_the_same_as_httptools(data, cuts):
    same_as_httptools(b"HTTP/1.1 200 OK\r\n" + data, cuts)
    same_as_httptools(data, cuts)


def test_the_check_tables_allow_what_translate_with_deletions_allowed():
    from fastric.runtime.wire import plainparser

    for allowed, table in (
        (plainparser._TOKEN, plainparser._TOKEN_ONLY),
        (plainparser._VALUE, plainparser._VALUE_ONLY),
        (b"0123456789", plainparser._DIGITS_ONLY),
    ):
        for byte in range(256):
            data = b"0" + bytes([byte]) + b"0"  # "0" is allowed in all three
            assert (data.translate(table) is data) == (not data.translate(None, allowed)), (allowed, byte)


def _invocation(number: int) -> bytes:
    """A /next response as Lambda sends them: request id, deadline and trace id new in every one."""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-%012d\r\n"
        b"Lambda-Runtime-Deadline-Ms: %d\r\n"
        b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:f\r\n"
        b"Lambda-Runtime-Trace-Id: Root=1-%08x-%024x;Parent=%016x;Sampled=0\r\n"
        b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: 2\r\n\r\n{}"
    ) % (number, 1767225600000 + number, number, number, number)


def test_lines_new_in_every_invocation_do_not_push_the_repeating_ones_out():
    from fastric.runtime.wire import plainparser

    parser = PlainResponseParser()
    for number in range(300):
        parser.feed(_invocation(number) + ACCEPTED)
        first, second = parser.next_response(), parser.next_response()
        assert first.headers[b"lambda-runtime-aws-request-id"].endswith(b"%012d" % number)
        assert second.status == 202
    arn = b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:f"
    assert arn in plainparser._LINES
    assert not any(
        line.startswith((b"Lambda-Runtime-Aws", b"Lambda-Runtime-Trace", b"Lambda-Runtime-Dead"))
        for line in plainparser._LINES
    )


def test_a_head_seen_again_is_the_same_and_its_own():
    stream = ACCEPTED + _invocation(1) + ACCEPTED + _invocation(2) + ACCEPTED + ACCEPTED
    same_as_httptools(stream)
    parser = PlainResponseParser()
    parser.feed(ACCEPTED)
    parser.feed(ACCEPTED)
    parser.feed(ACCEPTED)
    first = parser.next_response()
    first.headers[b"x-changed"] = b"by the caller"
    assert [b"x-changed" in parser.next_response().headers for _ in range(2)] == [False, False]
    for cuts in ([5], [len(ACCEPTED) + 3], [len(ACCEPTED) * 2 + 10]):
        same_as_httptools(ACCEPTED * 3, cuts)
