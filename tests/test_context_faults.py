"""Unit tests of the context object, handler grammar and error documents, against awslambdaric's own classes."""

import os

import pytest
from awslambdaric.lambda_context import LambdaContext as ReferenceContext

from fastric.runtime.context import LambdaContext
from fastric.runtime.faults import FaultError, describe_exception, format_frames
from fastric.runtime.handler import load_handler

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "core")


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    monkeypatch.setenv("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/fn")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]abc")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")


@pytest.mark.parametrize(
    "client_context, identity, tenant",
    [
        (None, None, None),
        (
            {"custom": {"k": "v"}, "env": {"e": "1"}, "client": {"installation_id": "i1", "app_title": "t"}},
            {"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"},
            "tenant-A",
        ),
        ({"custom": None, "w3c": {"traceparent": "tp", "baggage": 1}}, {}, None),
    ],
)
def test_context_matches_awslambdaric(client_context, identity, tenant):
    import copy

    ours = LambdaContext("rid-1", copy.deepcopy(client_context), identity, 4102444800000, "arn:x", tenant)
    ref = ReferenceContext("rid-1", copy.deepcopy(client_context), identity, 4102444800000, "arn:x", tenant)
    assert repr(ours) == repr(ref)
    assert ours.w3c() == ref.w3c()
    for name in (
        "aws_request_id",
        "log_group_name",
        "log_stream_name",
        "function_name",
        "memory_limit_in_mb",
        "function_version",
        "invoked_function_arn",
        "tenant_id",
        "_epoch_deadline_time_in_ms",
    ):
        assert getattr(ours, name) == getattr(ref, name), name
    assert abs(ours.get_remaining_time_in_millis() - ref.get_remaining_time_in_millis()) < 1000


@pytest.mark.parametrize(
    "client_context, identity",
    [
        (None, None),
        (
            '{"custom": {"k": "v"}, "client": {"app_title": "t"}, "w3c": {"traceparent": "tp"}}',
            '{"cognitoIdentityId": "c"}',
        ),
    ],
)
def test_vars_of_the_context_are_awslambdaric_s(client_context, identity):
    """`print(vars(context))` is a common debugging line: the same attributes, in the same order, same values."""
    import json

    def as_dict(value):
        return value if value is None else json.loads(value)

    ours = LambdaContext("rid-1", client_context, identity, 4102444800000, "arn:x", "tenant-A")
    ref = ReferenceContext("rid-1", as_dict(client_context), as_dict(identity), 4102444800000, "arn:x", "tenant-A")
    assert list(vars(ours)) == list(vars(ref))
    assert {k: repr(v) for k, v in vars(ours).items()} == {k: repr(v) for k, v in vars(ref).items()}
    assert ours.__dict__ == vars(ours)
    ours.extra_attribute = ref.extra_attribute = 1  # user code may hang its own attributes on the context
    assert list(vars(ours)) == list(vars(ref))


def test_context_accepts_header_json_and_reports_bad_json():
    ctx = LambdaContext("r", '{"custom": {"a": 1}}', '{"cognitoIdentityId": "c"}', 0, "")
    assert ctx.client_context.custom == {"a": 1} and ctx.identity.cognito_identity_id == "c"
    assert ctx.get_remaining_time_in_millis() == 0
    with pytest.raises(FaultError) as info:
        LambdaContext("r", "{bad", None, 0)
    assert info.value.error_type == "Runtime.LambdaContextUnmarshalError"
    assert info.value.message.startswith("Unable to parse Client Context JSON: Expecting property name")
    ctx.extra_attribute = 1  # user code may hang its own attributes on the context


@pytest.mark.parametrize(
    "handler, error_type",
    [
        ("nodots", "Runtime.MalformedHandlerName"),
        ("", "Runtime.MalformedHandlerName"),
        ("time.handler", "Runtime.BuiltInModuleConflict"),
        ("definitely_missing_mod.h", "Runtime.ImportModuleError"),
        ("app.nothing_here", "Runtime.HandlerNotFound"),
    ],
)
def test_handler_grammar_faults(handler, error_type, monkeypatch):
    monkeypatch.syspath_prepend(FIXTURES)
    with pytest.raises(FaultError) as info:
        load_handler(handler)
    assert info.value.error_type == error_type


def test_handler_grammar_resolves_slash_and_dotted_modules(monkeypatch):
    monkeypatch.syspath_prepend(FIXTURES)
    assert load_handler("sub/mod.handler")({}, None) == {"slash": "sub.mod"}
    assert load_handler("sub.mod.handler").__module__ == "sub.mod"


def test_exception_document_has_no_caret_lines_and_no_fastric_frames():
    def inner():
        return [1][2]

    try:
        inner()
    except IndexError as exc:
        document, cause = describe_exception(exc, "rid")
    assert list(document) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert document["errorType"] == "IndexError" and document["requestId"] == "rid"
    assert all("^" not in frame for frame in document["stackTrace"])
    assert document["stackTrace"][-1].endswith("in inner\n    return [1][2]\n")
    assert b'"type": "IndexError"' in cause


def test_fault_document_and_validation_cause():
    document, cause = describe_exception(FaultError("Runtime.MarshalError", "Unable to marshal response: x"), "r")
    assert document == {
        "errorMessage": "Unable to marshal response: x",
        "errorType": "Runtime.MarshalError",
        "requestId": "r",
        "stackTrace": [],
    }
    assert b'"type": "LambdaValidationError", "stack": []' in cause and b'"paths": []' in cause


def test_format_frames_matches_traceback_format_list_of_tuples():
    import traceback

    try:
        raise ValueError("x")
    except ValueError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    assert format_frames(frames) == traceback.format_list([(f.filename, f.lineno, f.name, f.line) for f in frames])


def test_every_context_reads_the_environment_as_it_is_now(monkeypatch):
    """As awslambdaric: the five variables are read for each context, so a handler's change shows in the next one
    (fastric decodes them again only when their bytes changed)."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "one")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    first = LambdaContext("rid", None, None, 0)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "two")
    second = LambdaContext("rid", None, None, 0)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    third = LambdaContext("rid", None, None, 0)
    assert (first.function_name, first.memory_limit_in_mb) == ("one", "128")
    assert (second.function_name, second.memory_limit_in_mb) == ("two", "128")
    assert (third.function_name, third.memory_limit_in_mb) == ("two", None)
