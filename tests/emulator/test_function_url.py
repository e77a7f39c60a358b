"""`fastric emulate --function-url`: HTTP requests become payload-format-2.0 events; results become responses."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import sys
import textwrap
import time

import pytest
from emulator_process import EXAMPLES, HERE, EmulatorProcess

HANDLER = textwrap.dedent(
    """
    import base64

    def handler(event, context):
        path = event["rawPath"]
        if path == "/custom":
            return {
                "statusCode": 201,
                "headers": {"Content-Type": "text/plain", "My-Header": "custom", "X-Number": 7},
                "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
                "body": "created",
            }
        if path == "/no-type":
            return {"statusCode": 404, "body": "missing"}
        if path == "/binary":
            return {
                "statusCode": 200,
                "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(),
                "isBase64Encoded": True,
            }
        if path == "/list":
            return [1, "two", None]
        if path == "/string":
            return "Hello, world!"
        if path == "/dict":
            return {"message": "no statusCode here"}
        if path == "/error":
            raise ValueError("boom")
        if path == "/bad-status":
            return {"statusCode": "teapot"}
        return {"event": event, "requestId": context.aws_request_id}
    """
)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """One emulator serving the handler above as a Function URL, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("url_task")
    (root / "url_app.py").write_text(HANDLER)
    process = EmulatorProcess(["--function-url", "--task-root", str(root), "url_app.handler"], EXAMPLES)
    try:
        yield process
    finally:
        process.stop()


def request(emu, method: str, target: str, body: bytes | None = None, headers=None):
    conn = emu.connection()
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers or []:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def echoed(emu, method: str, target: str, body: bytes | None = None, headers=None) -> dict:
    status, _, raw = request(emu, method, target, body, headers)
    assert status == 200, raw
    return json.loads(raw)


def header(headers, name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


# -- request → event ----------------------------------------------------------------------------
def test_event_shape(url):
    answer = echoed(url, "GET", "/some/path?foo=bar", headers=[("User-Agent", "tester/1.0")])
    event = answer["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path"
    assert event["rawQueryString"] == "foo=bar"
    assert event["queryStringParameters"] == {"foo": "bar"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event and "cookies" not in event
    context = event["requestContext"]
    assert context["accountId"] == "anonymous"
    assert context["routeKey"] == "$default" and context["stage"] == "$default"
    assert context["requestId"] == answer["requestId"]
    assert context["domainPrefix"] == context["apiId"] and len(context["apiId"]) == 32
    assert context["domainName"] == f"127.0.0.1:{url.port}"
    assert context["http"] == {
        "method": "GET",
        "path": "/some/path",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tester/1.0",
    }
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 60
    assert time.strftime("/%Y:", time.gmtime(context["timeEpoch"] / 1000)) in context["time"]
    assert context["time"].endswith(" +0000")
    assert event["headers"]["user-agent"] == "tester/1.0"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-port"] == str(url.port)


def test_repeated_query_keys_and_headers_are_comma_joined(url):
    headers = [("X-Multi", "one"), ("x-multi", "two"), ("X-Single", "Mixed Case Value")]
    event = echoed(url, "GET", "/q?a=1&b=x%20y&a=2&empty=&a=3", headers=headers)["event"]
    assert event["rawQueryString"] == "a=1&b=x%20y&a=2&empty=&a=3"
    assert event["queryStringParameters"] == {"a": "1,2,3", "b": "x y", "empty": ""}
    assert event["headers"]["x-multi"] == "one,two"
    assert event["headers"]["x-single"] == "Mixed Case Value"
    assert all(name == name.lower() for name in event["headers"])


def test_cookies_are_split_out_of_the_cookie_header(url):
    event = echoed(url, "GET", "/", headers=[("Cookie", "a=1; b=two"), ("Cookie", "c=3")])["event"]
    assert event["cookies"] == ["a=1", "b=two", "c=3"]
    assert "cookie" not in event["headers"]


def test_text_body_is_passed_as_text(url):
    body = '{"key": "välue"}'.encode()
    event = echoed(url, "POST", "/", body, [("Content-Type", "application/json; charset=utf-8")])["event"]
    assert event["body"] == '{"key": "välue"}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    event = echoed(url, "PUT", "/", b"plain words", [("Content-Type", "text/plain")])["event"]
    assert (event["body"], event["isBase64Encoded"]) == ("plain words", False)


def test_binary_body_is_base64_encoded(url):
    body = bytes(range(256))
    event = echoed(url, "POST", "/upload", body, [("Content-Type", "image/png")])["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
    # A text type whose bytes are not UTF-8, and a body without a type, are binary too.
    event = echoed(url, "POST", "/", b"\xff\xfe", [("Content-Type", "text/plain")])["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xfe"
    event = echoed(url, "POST", "/", b"a=1&b=2", [("Content-Type", "application/x-www-form-urlencoded")])["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"a=1&b=2"


def test_event_over_the_payload_limit_is_413(url):
    # 5 MB of binary is under the request limit, but its base64 event is over it.
    status, _, body = request(url, "POST", "/", b"\xff" * (5 * 1024 * 1024), [("Content-Type", "image/png")])
    assert status == 413
    assert json.loads(body)["errorType"] == "RequestEntityTooLarge"


def test_invoke_endpoint_still_answers_invokes(url):
    response = url.invoke({"rawPath": "/list"})
    assert response.status == 200
    assert response.json() == [1, "two", None]
    assert response.headers["x-amz-executed-version"] == "$LATEST"


# -- result → response --------------------------------------------------------------------------
def test_status_headers_and_cookies_are_mapped(url):
    status, headers, body = request(url, "GET", "/custom")
    assert status == 201
    assert body == b"created"
    assert header(headers, "Content-Type") == ["text/plain"]
    assert header(headers, "My-Header") == ["custom"]
    assert header(headers, "X-Number") == ["7"]
    assert header(headers, "Set-Cookie") == ["session=abc; Path=/; HttpOnly", "theme=dark"]
    assert len(header(headers, "X-Amzn-RequestId")[0]) == 36


def test_content_type_defaults_to_json(url):
    status, headers, body = request(url, "GET", "/no-type")
    assert (status, body) == (404, b"missing")
    assert header(headers, "Content-Type") == ["application/json"]


def test_base64_result_body_is_decoded(url):
    status, headers, body = request(url, "GET", "/binary")
    assert status == 200
    assert body == bytes(range(256))
    assert header(headers, "Content-Type") == ["application/octet-stream"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/list", [1, "two", None]), ("/string", "Hello, world!"), ("/dict", {"message": "no statusCode here"})],
)
def test_other_results_are_json_bodies(url, path, expected):
    status, headers, body = request(url, "GET", path)
    assert status == 200
    assert header(headers, "Content-Type") == ["application/json"]
    assert json.loads(body) == expected


@pytest.mark.parametrize("path", ["/error", "/bad-status"])
def test_function_error_and_malformed_result_are_502(url, path):
    status, headers, body = request(url, "GET", path)
    assert status == 502
    assert body == b"Internal Server Error"
    assert "X-Amz-Function-Error" not in dict(headers)


def test_head_request_gets_no_body(url):
    status, headers, body = request(url, "HEAD", "/custom")
    assert (status, body) == (201, b"")
    assert header(headers, "My-Header") == ["custom"]


def test_readme_example(emulator):
    emu = emulator("--function-url", "--task-root", str(EXAMPLES), "app.handler")
    status, _, body = request(emu, "GET", "/?foo=bar")
    assert status == 200
    assert b"queryStringParameters" in body and b"foo" in body and b"bar" in body


def test_without_the_option_other_paths_are_404(emulator):
    emu = emulator("--task-root", str(EXAMPLES), "app.handler")
    status, headers, body = request(emu, "GET", "/?foo=bar")
    assert status == 404
    assert dict((k.lower(), v) for k, v in headers)["x-amzn-errortype"] == "ResourceNotFoundException"
    assert "No route for GET /" in json.loads(body)["message"]


# -- streamed responses -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def streamer():
    """An emulator whose bootstrap answers Function URL requests with streamed responses."""
    process = EmulatorProcess(["--function-url", "--", sys.executable, str(HERE / "url_stream_bootstrap.py")], EXAMPLES)
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def streamed(emu, target: str):
    """The response to GET `target`, as soon as its head is in (the body is read by the caller)."""
    conn = emu.connection(timeout=20)
    try:
        conn.request("GET", target)
        yield conn.getresponse()
    finally:
        conn.close()


def test_streamed_prelude_sends_status_and_headers_before_the_body_ends(streamer, tmp_path):
    gate = tmp_path / "gate"
    with streamed(streamer, f"/prelude?gate={gate}") as response:
        # The bootstrap holds its second chunk until the gate exists: the head and first chunk came live.
        assert response.status == 201
        headers = response.getheaders()
        assert header(headers, "Transfer-Encoding") == ["chunked"]
        assert header(headers, "Content-Type") == ["text/plain"]
        assert header(headers, "X-Stream") == ["yes"]
        assert header(headers, "Set-Cookie") == ["session=abc; Path=/", "theme=dark"]
        assert response.read1(100) == b"first "
        gate.touch()
        assert response.read() == b"second"


def test_stream_without_prelude_is_a_200_with_its_content_type(streamer):
    status, headers, body = request(streamer, "GET", "/plain")
    assert (status, body) == (200, b"plain text")
    assert header(headers, "Content-Type") == ["text/plain"]


def test_stream_error_after_the_head_truncates_the_body(streamer):
    with streamed(streamer, "/prelude-error") as response:
        assert response.status == 201
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
        assert caught.value.partial == b"partial"


def test_malformed_prelude_is_502(streamer):
    status, _, body = request(streamer, "GET", "/bad-prelude")
    assert (status, body) == (502, b"Internal Server Error")
    assert streamer.wait_for(lambda line: "prelude is not JSON" in line)


def test_responses_carry_the_standard_reason_phrase(url):
    """`HTTP/1.1 201 Created`, read off the wire (http.client keeps the reason)."""
    conn = url.connection()
    try:
        conn.request("GET", "/custom")
        response = conn.getresponse()
        response.read()
        assert (response.status, response.reason) == (201, "Created")
        conn.request("GET", "/no-type")
        response = conn.getresponse()
        response.read()
        assert (response.status, response.reason) == (404, "Not Found")
    finally:
        conn.close()
