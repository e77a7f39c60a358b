"""Differential tests: the same scenario through awslambdaric 4.2.2 and fastric against the recording Runtime API.

What the Lambda service sees (paths, error documents, error-type headers, X-Ray causes, JSON values of responses)
and what the handler sees (context values) must agree, except for the deliberate differences listed in
docs/architecture.md ("Compatibility policy"), each asserted explicitly here.
"""

from __future__ import annotations

import importlib.util
import json
import os

import pytest
from json_cases import MALFORMED_EVENTS, TOO_DEEP
from runtime_api import RuntimeAPIServer, run_client

# The installed package's own directory (a checkout is often named fastric too, so no "/fastric/" substring).
PACKAGE_DIR = os.path.join(importlib.util.find_spec("fastric").submodule_search_locations[0], "")

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "core")
CLIENTS = ("awslambdaric", "fastric")


def scenario(handler: str, invocations: list[dict], env: dict | None = None, respond=None):
    """Run `handler` under both clients; return {client: (run, server requests)}."""
    results = {}
    for client in CLIENTS:
        with RuntimeAPIServer(respond=respond) as srv:
            for inv in invocations:
                srv.add_invocation(**inv)
            run = run_client(client, handler, srv, cwd=FIXTURES, env=env)
        results[client] = (run, srv.requests)
    return results


def posts(requests):
    """The POSTs a client made, as (kind, request id, parsed body, request)."""
    out = []
    for r in requests:
        if r.method != "POST":
            continue
        parts = r.path.split("/")
        kind = parts[-1]
        rid = parts[-2] if kind in ("response", "error") else None
        try:
            body = json.loads(r.body)
        except ValueError:
            body = r.body
        out.append((kind, rid, body, r))
    return out


def normalise_trace(document):
    """Stack frames that belong to the runtime client itself differ by nature (file and line)."""
    doc = dict(document)
    doc["stackTrace"] = [f for f in doc["stackTrace"] if "awslambdaric" not in f and PACKAGE_DIR not in f]
    return doc


MALFORMED = [*MALFORMED_EVENTS, TOO_DEEP]


@pytest.mark.parametrize("handler", ["nojson_app.handler", "nojson_app.async_handler"])
@pytest.mark.parametrize("body", MALFORMED, ids=lambda b: b[:20].decode("latin-1"))
def test_a_malformed_event_first_and_warm_gets_awslambdarics_error(handler, body):
    """First invocation (nothing has imported `json`) and a warm one: awslambdaric's error document, exactly."""
    invocations = [{"body": body, "request_id": "rid-first"}, {"body": body, "request_id": "rid-warm"}]
    results = scenario(handler, invocations)
    a_posts, f_posts = posts(results["awslambdaric"][1]), posts(results["fastric"][1])
    assert [(k, rid) for k, rid, _, _ in f_posts] == [("error", i["request_id"]) for i in invocations]
    assert [(k, rid) for k, rid, _, _ in a_posts] == [(k, rid) for k, rid, _, _ in f_posts]
    for (_, _, a_doc, _), (_, _, f_doc, _) in zip(a_posts, f_posts, strict=True):
        assert f_doc["errorType"] == "Runtime.UnmarshalError"
        assert normalise_trace(f_doc) == normalise_trace(a_doc)


def test_success_and_error_documents_agree():
    invocations = [
        {"event": {"op": "echo", "x": [1, 2.5, "é€😀", None, True]}, "request_id": "rid-echo"},
        {"event": {"op": "raise", "x": 7}, "request_id": "rid-raise"},
        {"event": {"op": "keyerror"}, "request_id": "rid-key"},
        {"event": {"op": "nested", "x": "y"}, "request_id": "rid-nested"},
        {"event": {"op": "set"}, "request_id": "rid-set"},
        {"body": b"{not json", "request_id": "rid-badjson"},
        {"body": b"", "request_id": "rid-empty"},
        {"event": {"op": "echo"}, "request_id": "rid-badctx", "headers": {"Lambda-Runtime-Client-Context": "{bad"}},
        {
            "event": {"op": "echo"},
            "request_id": "rid-badcognito",
            "headers": {"Lambda-Runtime-Cognito-Identity": "[1,"},
        },
        {"event": {"op": "echo", "after": "errors"}, "request_id": "rid-last"},
    ]
    results = scenario("app.handler", invocations)
    a_posts, f_posts = posts(results["awslambdaric"][1]), posts(results["fastric"][1])
    assert [(k, rid) for k, rid, _, _ in a_posts] == [(k, rid) for k, rid, _, _ in f_posts]
    assert [k for k, _, _, _ in f_posts] == [
        "response",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "response",
    ]
    for (kind, rid, a_body, a_req), (_, _, f_body, f_req) in zip(a_posts, f_posts, strict=True):
        if kind == "response":
            assert a_body == f_body, rid
            continue
        assert normalise_trace(a_body) == normalise_trace(f_body), rid
        # neither sends an error-type header on invocation errors; both send application/json
        assert a_req.header("lambda-runtime-function-error-type") is None
        assert f_req.header("lambda-runtime-function-error-type") is None
        assert f_req.header("content-type") == a_req.header("content-type") == "application/json"
        a_cause = json.loads(a_req.header("lambda-runtime-function-xray-error-cause"))
        f_cause = json.loads(f_req.header("lambda-runtime-function-xray-error-cause"))
        for cause in (a_cause, f_cause):
            cause["paths"] = sorted(p for p in cause["paths"] if "awslambdaric" not in p and PACKAGE_DIR not in p)
            for exc in cause["exceptions"]:
                exc["stack"] = [
                    s for s in exc["stack"] if "awslambdaric" not in s["path"] and PACKAGE_DIR not in s["path"]
                ]
        assert a_cause == f_cause, rid
    by_id = {rid: body for _, rid, body, _ in f_posts}
    assert by_id["rid-raise"]["errorType"] == "ValueError"
    assert by_id["rid-raise"]["stackTrace"] and "line" in by_id["rid-raise"]["stackTrace"][0]
    assert by_id["rid-key"]["errorMessage"] == "'missing'"
    assert by_id["rid-set"] == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": "rid-set",
        "stackTrace": [],
    }
    assert by_id["rid-empty"]["errorMessage"] == "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"
    assert by_id["rid-badctx"]["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert by_id["rid-badctx"]["errorMessage"].startswith("Unable to parse Client Context JSON: ")
    assert by_id["rid-badcognito"]["errorMessage"].startswith("Unable to parse Cognito Identity JSON: ")
    assert results["awslambdaric"][0].returncode == results["fastric"][0].returncode == 1


def test_context_values_agree():
    client_context = {
        "custom": {"k": "v"},
        "env": {"e": "1"},
        "client": {"installation_id": "i1", "app_title": "t", "extra": "dropped"},
        "w3c": {"traceparent": "00-abc-def-01", "tracestate": 5, "other": "x"},
    }
    headers = {
        "Lambda-Runtime-Client-Context": json.dumps(client_context),
        "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"}),
        "Lambda-Runtime-Aws-Tenant-Id": "tenant-A",
        "Lambda-Runtime-Invocation-Id": "inv-123",
    }
    invocations = [
        {"event": {"op": "context"}, "request_id": "rid-full", "headers": headers, "deadline_ms": 4102444800000},
        {
            "event": {"op": "context"},
            "request_id": "rid-bare",
            "deadline_ms": 4102444800000,
            "headers": {"Lambda-Runtime-Invoked-Function-Arn": None, "Lambda-Runtime-Trace-Id": None},
        },
        {
            "event": {"op": "context"},
            "request_id": "rid-empty-headers",
            "deadline_ms": 4102444800000,
            "headers": {
                "Lambda-Runtime-Client-Context": "",
                "Lambda-Runtime-Cognito-Identity": "",
                "Lambda-Runtime-Aws-Tenant-Id": "",
                "Lambda-Runtime-Trace-Id": "",
            },
        },
    ]
    results = scenario("app.handler", invocations)
    a_posts, f_posts = posts(results["awslambdaric"][1]), posts(results["fastric"][1])
    assert len(a_posts) == len(f_posts) == 3
    for (_, rid, a_body, _), (_, _, f_body, _) in zip(a_posts, f_posts, strict=True):
        assert a_body == f_body, rid
    full = f_posts[0][2]
    assert full["tenant_id"] == "tenant-A"
    assert full["w3c"] == {"traceparent": "00-abc-def-01"}
    assert full["types"] == ["str", "str"]
    assert full["trace_env"].startswith("Root=1-")
    assert full["repr"].startswith("LambdaContext([aws_request_id=rid-full,log_group_name=/aws/lambda/fn,")
    bare = f_posts[1][2]
    assert bare["invoked_function_arn"] == "" and bare["trace_env"] is None
    assert bare["identity"] == "CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None])"
    assert f_posts[2][2]["tenant_id"] is None and f_posts[2][2]["client_context"] == "None"


@pytest.mark.parametrize(
    "handler, error_type, message",
    [
        (
            "nodots",
            "Runtime.MalformedHandlerName",
            "Bad handler 'nodots': not enough values to unpack (expected 2, got 1)",
        ),
        ("sys.handler", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module"),
        ("nomod.handler", "Runtime.ImportModuleError", "Unable to import module 'nomod': No module named 'nomod'"),
        (
            "import_error.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'import_error': No module named 'nonexistent_dep'",
        ),
        ("a/b.handler", "Runtime.ImportModuleError", "Unable to import module 'a/b': No module named 'a'"),
        ("syntax_error.handler", "Runtime.UserCodeSyntaxError", None),
        ("imports_syntax_error.handler", "Runtime.UserCodeSyntaxError", None),
        ("app.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'app'"),
        ("app.", "Runtime.HandlerNotFound", "Handler '' missing on module 'app'"),
        ("raise_at_import.handler", "RuntimeError", "boom at import"),
        (".handler", "ValueError", "Empty module name"),
    ],
)
def test_init_errors_agree(handler, error_type, message):
    results = scenario(handler, [{"event": {}}])
    docs = {}
    for client, (run, requests) in results.items():
        assert run.returncode == 1, (client, run.stderr)
        init = [r for r in requests if r.path == "/2018-06-01/runtime/init/error"]
        assert len(init) == 1, client
        assert init[0].header("lambda-runtime-function-error-type") == error_type
        assert init[0].header("lambda-runtime-function-xray-error-cause") is None
        assert not [r for r in requests if r.path.endswith("/invocation/next")], client
        docs[client] = json.loads(init[0].body)
    assert normalise_trace(docs["awslambdaric"]) == normalise_trace(docs["fastric"])
    assert docs["fastric"]["errorType"] == error_type and docs["fastric"]["requestId"] == ""
    if message is not None:
        assert docs["fastric"]["errorMessage"] == message
    if error_type == "Runtime.UserCodeSyntaxError":
        assert (
            docs["fastric"]["stackTrace"][0].startswith('  File "') and '" Line 1\n' in docs["fastric"]["stackTrace"][0]
        )
    if error_type == "RuntimeError":
        assert any("importlib" in frame for frame in docs["fastric"]["stackTrace"])
        assert 'raise RuntimeError("boom at import")' in docs["fastric"]["stackTrace"][-1]


def test_slash_handler_imports_dotted_module():
    results = scenario("sub/mod.handler", [{"event": {}, "request_id": "rid-s"}])
    for client, (_run, requests) in results.items():
        assert posts(requests)[0][2] == {"slash": "sub.mod"}, client


@pytest.mark.parametrize("op, code", [("exit", 3), ("kbint", -2)])
def test_base_exceptions_end_the_process_without_posting(op, code):
    results = scenario("app.handler", [{"event": {"op": op, "code": 3}}, {"event": {"op": "echo"}}])
    for client, (run, requests) in results.items():
        assert run.returncode == code, (client, run.stderr)
        assert posts(requests) == [], client


def test_exit_at_import_posts_nothing():
    results = scenario("exit_at_import.handler", [{"event": {}}])
    for client, (run, requests) in results.items():
        assert run.returncode == 7, client
        assert posts(requests) == [], client


def test_not_callable_and_wrong_arity_are_type_errors():
    results = scenario("app.NOT_CALLABLE", [{"event": {}, "request_id": "r1"}])
    docs = {c: posts(reqs)[0][2] for c, (_, reqs) in results.items()}
    assert docs["awslambdaric"]["errorType"] == docs["fastric"]["errorType"] == "TypeError"
    assert docs["awslambdaric"]["errorMessage"] == docs["fastric"]["errorMessage"] == "'int' object is not callable"
    # with no user frame at all, the runtime's own frame is kept (awslambdaric's filter does the same)
    assert len(docs["fastric"]["stackTrace"]) == 1 and PACKAGE_DIR in docs["fastric"]["stackTrace"][0]
    results = scenario("app.one_arg", [{"event": {}, "request_id": "r1"}])
    docs = {c: posts(reqs)[0][2] for c, (_, reqs) in results.items()}
    assert docs["awslambdaric"]["errorMessage"] == docs["fastric"]["errorMessage"]


def test_json_output_differences_are_the_documented_ones():
    """fastric answers compact UTF-8 JSON; awslambdaric (custom image) answers spaced, ASCII-escaped JSON.
    The JSON values are equal."""
    results = scenario("app.handler", [{"event": {"op": "echo", "s": "é€😀"}, "request_id": "r1"}])
    a = results["awslambdaric"][1][1].body
    f = results["fastric"][1][1].body
    assert json.loads(a) == json.loads(f)
    assert b", " in a and b"\\u00e9" in a
    assert f == json.dumps({"op": "echo", "s": "é€😀"}, separators=(",", ":"), ensure_ascii=False).encode()


def test_async_handler_is_awaited_by_fastric_only():
    results = scenario("async_app.handler", [{"event": {}}, {"event": {}}])
    a_posts = posts(results["awslambdaric"][1])
    assert a_posts[0][2]["errorType"] == "Runtime.MarshalError"
    assert "coroutine" in a_posts[0][2]["errorMessage"]
    f_posts = posts(results["fastric"][1])
    assert [p[0] for p in f_posts] == ["response", "response"]


def api_gateway_event(path: str, query: dict) -> dict:
    """An API Gateway REST (v1) proxy event."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": "example.execute-api.us-east-1.amazonaws.com", "Accept": "application/json"},
        "multiValueHeaders": {"Host": ["example.execute-api.us-east-1.amazonaws.com"], "Accept": ["application/json"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "path": "/prod" + path,
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "192.0.2.1", "userAgent": "curl/8"},
            "accountId": "123456789012",
            "apiId": "example",
        },
        "body": None,
        "isBase64Encoded": False,
    }


def test_mangum_fastapi_app_serves_warm_invocations_like_awslambdaric():
    pytest.importorskip("mangum")
    invocations = [
        {"event": api_gateway_event(f"/items/{n}", {"q": f"v{n}"}), "request_id": f"rid-{n}"} for n in range(3)
    ]
    results = scenario("mangum_app.handler", invocations)
    bodies = {client: [p[2] for p in posts(requests)] for client, (_, requests) in results.items()}
    assert bodies["fastric"] == bodies["awslambdaric"]
    assert [json.loads(b["body"]) for b in bodies["fastric"]] == [{"item_id": n, "q": f"v{n}"} for n in range(3)]
    assert all(b["statusCode"] == 200 for b in bodies["fastric"])
