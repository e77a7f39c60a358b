"""Property-based tests of the sans-I/O response parser: any valid response stream, split at any byte boundaries,
parses the same; any garbage gives MalformedResponse (or waits for more bytes), never another exception and never a
response that was not sent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fastric.runtime.wire.parser import MalformedResponse, ResponseParser

token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
value = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
statuses = st.sampled_from([200, 202, 400, 403, 404, 413, 500, 502])


@st.composite
def responses(draw):
    """(wire bytes, expected (status, first-seen headers, body)) for one valid response."""
    status = draw(statuses)
    headers = draw(st.lists(st.tuples(token, value), max_size=6))
    headers = [(n, v) for n, v in headers if n not in ("content-length", "transfer-encoding", "connection")]
    body = draw(st.binary(max_size=300))
    chunked = draw(st.booleans())
    head = b"HTTP/1.1 %d Reason\r\n" % status
    for name, text in headers:
        head += f"{name}: {text}\r\n".encode()
    if chunked:
        pieces = draw(st.lists(st.integers(1, 64), max_size=8))
        wire, rest = b"", body
        for size in pieces:
            if not rest:
                break
            wire += b"%x\r\n%s\r\n" % (len(rest[:size]), rest[:size])
            rest = rest[size:]
        if rest:
            wire += b"%x\r\n%s\r\n" % (len(rest), rest)
        data = head + b"Transfer-Encoding: chunked\r\n\r\n" + wire + b"0\r\n\r\n"
    else:
        data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    expected_headers: dict[bytes, bytes] = {}
    for name, text in headers:
        expected_headers.setdefault(name.encode(), text.encode())
    return data, (status, expected_headers, body)


def feed_in_pieces(data: bytes, cuts: list[int]):
    parser = ResponseParser()
    out = []
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        parser.feed(data[start:cut])
        start = max(start, cut)
        while (response := parser.next_response()) is not None:
            out.append(response)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(responses(), min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=12))
def test_valid_streams_parse_the_same_split_anywhere(items, cuts):
    data = b"".join(wire for wire, _ in items)
    parsed = feed_in_pieces(data, cuts)
    assert len(parsed) == len(items)
    for response, (_, (status, headers, body)) in zip(parsed, items, strict=True):
        assert response.status == status
        assert response.body == body
        for name, text in headers.items():
            assert response.headers[name] == text


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 1000), max_size=5))
def test_garbage_never_raises_anything_but_malformed_response(data, cuts):
    try:
        parsed = feed_in_pieces(data, cuts)
    except MalformedResponse:
        return
    for response in parsed:  # whatever was accepted came from a status line that is really in the bytes
        assert b"%d" % response.status in data


@settings(max_examples=200, deadline=None)
@given(responses(), st.binary(min_size=1, max_size=50))
def test_garbage_after_a_valid_response_keeps_the_valid_one(item, garbage):
    wire, (status, _, body) = item
    parser = ResponseParser()
    try:
        parser.feed(wire + garbage)
    except MalformedResponse:
        pass
    first = parser.next_response()
    assert first is not None and first.status == status and first.body == body
