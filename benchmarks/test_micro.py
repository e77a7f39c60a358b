"""Micro-benchmarks of the per-invocation hot path, in-process: fastric's pieces against awslambdaric's.

awslambdaric parses `/next` in C (libcurl + aws-lambda-cpp) where it cannot be timed alone; its "parse"
here is the Python side only (`wait_next_invocation` over a stubbed `runtime_client.next()`), so that row
flatters awslambdaric. Everything else calls each runtime's own functions on the same inputs.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.task import payloads

REQUEST_ID = "8476a536-e9f4-11e8-9739-000000000001"
DEADLINE_MS = 1_900_000_000_000
ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"
TRACE = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
TINY = json.dumps(payloads.tiny_event()).encode()
APIGW_EVENT = payloads.apigw_event()
APIGW = json.dumps(APIGW_EVENT).encode()
NEXT_HEADERS = {
    "Lambda-Runtime-Aws-Request-Id": REQUEST_ID,
    "Lambda-Runtime-Deadline-Ms": str(DEADLINE_MS),
    "Lambda-Runtime-Invoked-Function-Arn": ARN,
    "Lambda-Runtime-Trace-Id": TRACE,
    "Content-Type": "application/json",
}
NEXT_RESPONSE = (
    "HTTP/1.1 200 OK\r\n"
    + "".join(f"{k}: {v}\r\n" for k, v in NEXT_HEADERS.items())
    + "Date: Mon, 01 Jan 2026 00:00:00 GMT\r\n"
    + f"Content-Length: {len(TINY)}\r\n\r\n"
).encode() + TINY


def _raise_in_handler():
    def handler(event, context):
        raise ValueError("benchmark error path")

    try:
        handler({}, None)
    except ValueError as exc:
        return exc


# -- fastric --------------------------------------------------------------------------------------------


def _fastric_parse_next():
    """The hot loop's parsing: fastric's sans-I/O ResponseParser (httptools), then protocol.parse_invocation."""
    from fastric.runtime.wire import parser, protocol

    reader = parser.ResponseParser()

    def parse():
        reader.feed(NEXT_RESPONSE)
        response = reader.next_response()
        return protocol.parse_invocation(response.headers, response.body)

    return parse, lambda: None


def _fastric_context():
    from fastric.runtime.context import LambdaContext

    return lambda: LambdaContext(REQUEST_ID, None, None, DEADLINE_MS, ARN, None)


def _fastric_decode(body):
    from fastric.runtime.marshal import decode_event

    return lambda: decode_event(body, "application/json")


def _fastric_encode(value):
    from fastric.runtime.marshal import encode_result

    return lambda: encode_result(value)


def _fastric_error():
    from fastric.runtime.faults import describe_exception, dump_document

    exc = _raise_in_handler()

    def error():
        document, cause = describe_exception(exc, REQUEST_ID)
        return dump_document(document), cause

    return error


# -- awslambdaric ---------------------------------------------------------------------------------------


def _ric_parse_next():
    from awslambdaric import lambda_runtime_client

    class _Stub:
        @staticmethod
        def next():
            return TINY, dict(NEXT_HEADERS)

    real = lambda_runtime_client.runtime_client
    lambda_runtime_client.runtime_client = _Stub
    client = lambda_runtime_client.LambdaRuntimeClient("127.0.0.1:9001", False)

    def restore():
        lambda_runtime_client.runtime_client = real

    return client.wait_next_invocation, restore


def _ric_context():
    from awslambdaric.bootstrap import create_lambda_context

    return lambda: create_lambda_context(None, None, DEADLINE_MS, REQUEST_ID, ARN, None)


def _ric_decode(body):
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

    marshaller = LambdaMarshaller()
    return lambda: marshaller.unmarshal_request(body, "application/json")


def _ric_encode(value):
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

    marshaller = LambdaMarshaller()

    def encode():
        result, content_type = marshaller.marshal_response(value)
        return result.encode("utf-8"), content_type  # as post_invocation_result does

    return encode


def _ric_error():
    import os

    from awslambdaric.bootstrap import extract_traceback, make_error, make_xray_fault
    from awslambdaric.lambda_runtime_marshaller import to_json

    exc = _raise_in_handler()

    def error():  # the `except Exception` branch of bootstrap.handle_event_request
        tb_tuples = extract_traceback(exc.__traceback__)
        xray = make_xray_fault(type(exc).__name__, str(exc), os.getcwd(), tb_tuples)
        import traceback

        document = make_error(str(exc), type(exc).__name__, traceback.format_list(tb_tuples), REQUEST_ID)
        return to_json(document), to_json(xray)

    return error


def _big_result():
    return payloads.big_result(payloads.RESULT_1MB)


# Large events as the Runtime API sends them (compact JSON); fastric decodes a large one from a bytearray.
def _sqs():
    return bytearray(json.dumps(payloads.sqs_event(), separators=(",", ":")).encode())


def _kinesis():
    return bytearray(json.dumps(payloads.kinesis_event(), separators=(",", ":")).encode())


def _dynamodb():
    return bytearray(json.dumps(payloads.dynamodb_event(), separators=(",", ":")).encode())


def _floats():
    return bytearray(json.dumps(payloads.float_records_event(), separators=(",", ":")).encode())


PIECES = {
    # name: (fastric factory, awslambdaric factory); a factory returns fn or (fn, cleanup)
    "parse /next (tiny)": (_fastric_parse_next, _ric_parse_next),
    "build context": (_fastric_context, _ric_context),
    "decode event (2.7 KB API Gateway)": (lambda: _fastric_decode(APIGW), lambda: _ric_decode(APIGW)),
    "decode event (1 MB SQS batch)": (lambda: _fastric_decode(_sqs()), lambda: _ric_decode(bytes(_sqs()))),
    "decode event (1 MB Kinesis batch)": (lambda: _fastric_decode(_kinesis()), lambda: _ric_decode(bytes(_kinesis()))),
    "decode event (1 MB DynamoDB Streams batch)": (
        lambda: _fastric_decode(_dynamodb()),
        lambda: _ric_decode(bytes(_dynamodb())),
    ),
    "decode event (12,000 records of floats)": (
        lambda: _fastric_decode(_floats()),
        lambda: _ric_decode(bytes(_floats())),
    ),
    "encode result (2.7 KB)": (lambda: _fastric_encode(APIGW_EVENT), lambda: _ric_encode(APIGW_EVENT)),
    "encode result (1 MB)": (lambda: _fastric_encode(_big_result()), lambda: _ric_encode(_big_result())),
    "error document (handler raised)": (_fastric_error, _ric_error),
}


@pytest.mark.parametrize("runtime", ["fastric", "awslambdaric"])
@pytest.mark.parametrize("piece", list(PIECES))
def test_hot_path_piece(benchmark, piece, runtime):
    made = PIECES[piece][0 if runtime == "fastric" else 1]()
    fn, cleanup = made if isinstance(made, tuple) else (made, None)
    benchmark.group = f"micro: {piece}"
    try:
        assert fn() is not None
        benchmark(fn)
    finally:
        if cleanup is not None:
            cleanup()
