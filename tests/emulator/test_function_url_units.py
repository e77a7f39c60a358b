"""The sans-I/O pieces of `--function-url`: query strings, headers, body types, result mapping."""

from __future__ import annotations

import pytest

from fastric.emulator.function_url import (
    HTTP_INTEGRATION,
    MalformedResponse,
    buffered_response,
    event_headers,
    is_text,
    query_parameters,
)


def test_query_parameters_join_repeated_keys():
    assert query_parameters("a=1&a=2&b=%E2%9C%93&c") == {"a": "1,2", "b": "✓", "c": ""}


def test_event_headers_split_cookies_and_join_repeats():
    headers, cookies = event_headers([("x-a", "1"), ("cookie", "k=v;  j=w"), ("x-a", "2"), ("cookie", "z=1")])
    assert headers == {"x-a": "1,2"}
    assert cookies == ["k=v", "j=w", "z=1"]


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("text/html; charset=utf-8", True),
        ("application/json", True),
        ("application/vnd.api+json", True),
        ("application/xml", True),
        ("application/javascript", True),
        ("application/x-www-form-urlencoded", False),
        ("application/octet-stream", False),
        ("multipart/form-data; boundary=x", False),
        (None, False),
    ],
)
def test_is_text(content_type, text):
    assert is_text(content_type) is text


def test_mapping_drops_framing_headers_and_keeps_set_cookie_order():
    result = b'{"statusCode":"204","headers":{"Content-Length":"99","X-A":true},"cookies":["a=1","b=2"]}'
    status, headers, body = buffered_response("application/json", result)
    assert status == 204 and body == b""
    assert headers == [
        ("Content-Type", "application/json"),
        ("X-A", "true"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


def test_non_string_body_is_serialized():
    assert buffered_response("application/json", b'{"statusCode":200,"body":{"a":1}}')[2] == b'{"a":1}'


def test_buffered_http_integration_response():
    payload = b'{"statusCode":418,"headers":{"content-type":"text/plain"}}' + b"\0" * 8 + b"tea"
    assert buffered_response(HTTP_INTEGRATION, payload) == (418, [("content-type", "text/plain")], b"tea")


@pytest.mark.parametrize(
    "result",
    [
        b"not json",
        b'{"statusCode":700}',
        b'{"statusCode":true}',
        b'{"statusCode":200,"headers":["x"]}',
        b'{"statusCode":200,"headers":{"X-Bad":"a\\r\\nInjected: 1"}}',
        b'{"statusCode":200,"headers":{"Bad Name":"a"}}',
        b'{"statusCode":200,"headers":{"X-Snow":"\\u2603"}}',
        b'{"statusCode":200,"cookies":"a=1"}',
        b'{"statusCode":200,"body":"***","isBase64Encoded":true}',
    ],
)
def test_malformed_results(result):
    with pytest.raises(MalformedResponse):
        buffered_response("application/json", result)
