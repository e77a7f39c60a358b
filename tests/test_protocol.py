"""Unit tests of the sans-I/O Runtime API layer."""

import pytest

from fastric.runtime.wire.protocol import (
    ProtocolError,
    Requests,
    is_safe_id,
    outcome,
    parse_deadline,
    parse_invocation,
    split_address,
)


def headers(**values):
    base = {b"lambda-runtime-aws-request-id": b"rid-1", b"content-type": b"application/json"}
    base.update({k.replace("_", "-").encode(): v for k, v in values.items()})
    return base


def test_parse_invocation_reads_every_header():
    inv = parse_invocation(
        {
            b"lambda-runtime-aws-request-id": b"rid-1",
            b"lambda-runtime-deadline-ms": b"1542409706888",
            b"lambda-runtime-invoked-function-arn": b"arn:aws:lambda:us-east-1:1:function:f",
            b"lambda-runtime-trace-id": b"Root=1-5bef4de7",
            b"lambda-runtime-client-context": b'{"custom":{}}',
            b"lambda-runtime-cognito-identity": b'{"cognitoIdentityId":"c"}',
            b"lambda-runtime-aws-tenant-id": b"tenant",
            b"lambda-runtime-invocation-id": b"inv-9",
            b"content-type": b"text/plain",
        },
        b"body",
    )
    assert (
        inv.request_id,
        inv.deadline_ms,
        inv.function_arn,
        inv.trace_id,
        inv.client_context,
        inv.cognito_identity,
        inv.tenant_id,
        inv.invocation_id,
        inv.content_type,
        inv.body,
    ) == (
        "rid-1",
        1542409706888,
        "arn:aws:lambda:us-east-1:1:function:f",
        "Root=1-5bef4de7",
        '{"custom":{}}',
        '{"cognitoIdentityId":"c"}',
        "tenant",
        "inv-9",
        "text/plain",
        b"body",
    )


def test_empty_headers_mean_absent():
    inv = parse_invocation(
        headers(
            lambda_runtime_trace_id=b"",
            lambda_runtime_client_context=b"",
            lambda_runtime_cognito_identity=b" ",
            lambda_runtime_aws_tenant_id=b"",
            lambda_runtime_invocation_id=b"",
        ),
        b"",
    )
    assert (inv.trace_id, inv.client_context, inv.cognito_identity, inv.tenant_id, inv.invocation_id) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert inv.function_arn == "" and inv.deadline_ms == 0


@pytest.mark.parametrize(
    "raw, value", [(None, 0), (b"", 0), (b"0", 0), (b"12abc", 12), (b"abc", 0), (b" 1542409706888 ", 1542409706888)]
)
def test_deadline_parsing(raw, value):
    assert parse_deadline(raw) == value


@pytest.mark.parametrize(
    "value, safe",
    [
        ("8476a536-e9f4-11e8-9739-2dfe598c3fcd", True),
        ("rid-1", True),
        ("a b", False),
        ("a/b", False),
        ("..", False),
        (".", False),
        ("a\r\nX: y", False),
        ("", False),
        ("é", False),
        ("a%2F", False),
    ],
)
def test_safe_ids(value, safe):
    assert is_safe_id(value) is safe


def test_missing_or_unsafe_request_id_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="Failed to find header lambda-runtime-aws-request-id"):
        parse_invocation({}, b"")
    with pytest.raises(ProtocolError, match="Refusing request id"):
        parse_invocation(headers(lambda_runtime_aws_request_id=b"../init/error"), b"")
    with pytest.raises(ProtocolError, match="Refusing invocation id"):
        parse_invocation(headers(lambda_runtime_invocation_id=b"a\x01b"), b"")


@pytest.mark.parametrize("value", [b"a b", b"a/b", b"a%20b", b"../x", "\u00e9t\u00e9".encode(), b"\xff\xfe"])
def test_any_header_legal_invocation_id_is_echoed_as_it_came(value):
    inv = parse_invocation(headers(lambda_runtime_invocation_id=value), b"")
    head, _ = Requests("h:1").response("rid-1", b"{}", b"application/json", inv.invocation_id)
    assert b"\r\nLambda-Runtime-Invocation-Id: " + value + b"\r\n" in head


def test_request_bytes():
    r = Requests("127.0.0.1:9001", user_agent="ua/1")
    assert (
        r.next[0]
        == b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUser-Agent: ua/1\r\n\r\n"
    )
    head, body = r.response("rid", b'{"a":1}', b"application/json", "inv")
    assert (
        head
        == (
            b"POST /2018-06-01/runtime/invocation/rid/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
            b"User-Agent: ua/1\r\nContent-Type: application/json\r\nLambda-Runtime-Invocation-Id: inv\r\n"
            b"Content-Length: 7\r\n\r\n"
        )
        and body == b'{"a":1}'
    )
    head, _ = r.error("rid", b"{}", b'{"x":1}', None)
    assert head == (
        b"POST /2018-06-01/runtime/invocation/rid/error HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
        b"User-Agent: ua/1\r\nContent-Type: application/json\r\n"
        b'Lambda-Runtime-Function-XRay-Error-Cause: {"x":1}\r\nContent-Length: 2\r\n\r\n'
    )
    head, _ = r.init_error(b"{}", "Runtime.ImportModuleError")
    assert head.endswith(b"Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError\r\nContent-Length: 2\r\n\r\n")
    head, _ = r.init_error(b"{}", "Bad\r\nType\u20ac")
    assert b"Lambda-Runtime-Function-Error-Type: Bad??Type?\r\n" in head


@pytest.mark.parametrize(
    "status, result",
    [(202, "ok"), (200, "ok"), (400, "refused"), (403, "refused"), (413, "refused"), (500, "fatal"), (502, "fatal")],
)
def test_outcome(status, result):
    assert outcome(status) == result


@pytest.mark.parametrize(
    "address, parsed",
    [
        ("127.0.0.1:9001", ("127.0.0.1", 9001)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:9001", ("::1", 9001)),
        ("example", ("example", 80)),
    ],
)
def test_split_address(address, parsed):
    assert split_address(address) == parsed
