"""In-process tests of the sans-I/O response parser: bytes in, complete responses out, split anywhere."""

import pytest

from fastric.runtime.wire.parser import HEAD_LIMIT, MalformedResponse, ResponseParser

NEXT = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Lambda-Runtime-Aws-Request-Id: rid-1\r\n"
    b"lambda-runtime-aws-request-id: second-ignored\r\n"
    b"Lambda-Runtime-Deadline-Ms: 1542409706888\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 GMT\r\n"
    b"Content-Length: 13\r\n"
    b"\r\n"
    b'{"hello":"x"}'
)
ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n'
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


def parse_all(data: bytes, cuts=()):
    parser = ResponseParser()
    responses = []
    start = 0
    for cut in [*cuts, len(data)]:
        parser.feed(data[start:cut])
        start = cut
        while (response := parser.next_response()) is not None:
            responses.append(response)
    return parser, responses


def summary(responses):
    return [(r.status, r.headers, r.body, r.keep_alive) for r in responses]


def test_one_response_headers_lowercased_first_occurrence_wins():
    _, [response] = parse_all(NEXT)
    assert response.status == 200
    assert response.headers[b"lambda-runtime-aws-request-id"] == b"rid-1"
    assert response.headers[b"content-type"] == b"application/json"
    assert response.body == b'{"hello":"x"}'
    assert response.keep_alive


@pytest.mark.parametrize("stream", [NEXT + ACCEPTED, CHUNKED + NEXT, ACCEPTED + CHUNKED + ACCEPTED])
def test_split_at_every_byte_boundary_parses_the_same(stream):
    _, whole = parse_all(stream)
    assert len(whole) >= 2
    for cut in range(1, len(stream)):
        _, pieces = parse_all(stream, [cut])
        assert summary(pieces) == summary(whole), cut


def test_byte_by_byte():
    stream = NEXT + CHUNKED + ACCEPTED
    _, whole = parse_all(stream)
    _, single = parse_all(stream, range(1, len(stream)))
    assert summary(single) == summary(whole)
    assert [r.body for r in whole] == [b'{"hello":"x"}', b"hello world", b'{"status":"OK"}\n']


def test_pipelined_responses_come_out_in_order():
    _, responses = parse_all(ACCEPTED + NEXT)
    assert [r.status for r in responses] == [202, 200]


@pytest.mark.parametrize(
    "interim", [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]
)
def test_interim_responses_are_skipped(interim):
    _, responses = parse_all(interim + ACCEPTED + interim + NEXT)
    assert [r.status for r in responses] == [202, 200]


def test_close_delimited_body_completes_at_eof():
    parser, responses = parse_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    assert responses == []
    assert parser.in_progress
    assert parser.eof() is True
    response = parser.next_response()
    assert response.body == b"until the end" and not response.keep_alive


def test_eof_without_a_response_in_progress_completes_nothing():
    parser, _ = parse_all(ACCEPTED)
    assert not parser.in_progress
    assert parser.eof() is False


def test_eof_inside_a_framed_body_completes_nothing():
    parser, responses = parse_all(NEXT[:-3])
    assert responses == [] and parser.in_progress
    assert parser.eof() is False


def test_connection_close_header_clears_keep_alive():
    _, [response] = parse_all(b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert response.keep_alive is False


@pytest.mark.parametrize(
    "garbage",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_garbage_raises_malformed_response(garbage):
    with pytest.raises(MalformedResponse):
        parse_all(garbage)


def test_head_is_capped():
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nX-Big: ")
    with pytest.raises(MalformedResponse, match="larger than"):
        for _ in range(HEAD_LIMIT // 65536 + 2):
            parser.feed(b"a" * 65536)


def test_large_body_is_not_capped():
    body = b"x" * (3 * HEAD_LIMIT)
    _, [response] = parse_all(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body, range(1, len(body), 65536)
    )
    assert response.body == body
