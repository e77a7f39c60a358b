"""Deterministic events and results for the benchmark scenarios (stdlib only: client processes import it too)."""

from __future__ import annotations

import base64
import hashlib
import json

_KB = 1024
_MB = 1024 * 1024


def tiny_event() -> dict:
    """A ~100-byte event, as a scheduled or custom trigger sends."""
    return {"id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", "source": "bench", "detail-type": "tick", "detail": {}}


def apigw_event() -> dict:
    """An API Gateway REST proxy event of about 2.5 KB."""
    headers = {
        "Accept": "application/json, text/plain, */*",
        "Accept-Encoding": "gzip, deflate, br",
        "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "CloudFront-Forwarded-Proto": "https",
        "CloudFront-Viewer-Country": "US",
        "Content-Type": "application/json",
        "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "X-Amzn-Trace-Id": "Root=1-5e66d96f-7491f09xmpl79d18acf3d050",
        "X-Forwarded-For": "203.0.113.10, 198.51.100.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    return {
        "resource": "/orders/{orderId}",
        "path": "/orders/12345",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": {"expand": "items", "currency": "EUR"},
        "multiValueQueryStringParameters": {"expand": ["items"], "currency": ["EUR"]},
        "pathParameters": {"orderId": "12345"},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "2gxmpl",
            "resourcePath": "/orders/{orderId}",
            "httpMethod": "POST",
            "extendedRequestId": "JJbxmplHYosFVYQ=",
            "requestTime": "10/Mar/2026:00:03:59 +0000",
            "path": "/prod/orders/12345",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abcdef1234",
            "requestTimeEpoch": 1773100239000,
            "requestId": "e0cc8ff2-8dd1-4c53-9a8e-2f6b1e0f8a32",
            "identity": {
                "sourceIp": "203.0.113.10",
                "userAgent": headers["User-Agent"],
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "cognitoIdentityId": None,
            },
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "apiId": "abcdef1234",
        },
        "body": json.dumps(
            {
                "customer": "c-42",
                "items": [{"sku": f"SKU-{i:04d}", "qty": i % 3 + 1} for i in range(6)],
                "note": "leave at the door",
            }
        ),
        "isBase64Encoded": False,
    }


def sqs_event(target_bytes: int = 1 * _MB) -> dict:
    """An SQS batch of ~2 KB JSON messages totalling about `target_bytes`."""
    records = []
    size = 20
    i = 0
    while size < target_bytes:
        body = json.dumps(
            {
                "orderId": f"o-{i:07d}",
                "customer": f"c-{i % 977:05d}",
                "amount": round(i * 1.37 % 500, 2),
                "lines": [{"sku": f"SKU-{(i + k) % 9999:04d}", "qty": k + 1, "price": 9.99 + k} for k in range(12)],
            }
        )
        record = {
            "messageId": f"{i:08d}-e9f4-11e8-9739-2dfe598c3fcd",
            "receiptHandle": "AQEB" + base64.b64encode(hashlib.sha512(b"%d" % i).digest() * 2).decode(),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": str(1773100239000 + i),
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": str(1773100239010 + i),
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
            "awsRegion": "us-east-1",
        }
        records.append(record)
        size += len(json.dumps(record)) + 2
        i += 1
    return {"Records": records}


def kinesis_event(target_bytes: int = 1 * _MB) -> dict:
    """A Kinesis batch totalling about `target_bytes`: base64 data, 56-digit sequence numbers (strings), and one
    float per record (`approximateArrivalTimestamp`)."""
    records = []
    size = 20
    i = 0
    while size < target_bytes:
        data = json.dumps({"device": f"d-{i % 50}", "temp": round(20 + i % 70 * 0.13, 2), "ts": 1773100239000 + i})
        sequence = f"4959033827149025660855969253836157109592157598913{i:07d}"
        record = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": f"pk-{i}",
                "sequenceNumber": sequence,
                "data": base64.b64encode(data.encode() * 4).decode(),
                "approximateArrivalTimestamp": 1773100239.123 + i / 1000,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"shardId-000000000006:{sequence}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
        }
        records.append(record)
        size += len(json.dumps(record)) + 2
        i += 1
    return {"Records": records}


def dynamodb_event(target_bytes: int = 1 * _MB) -> dict:
    """A DynamoDB Streams batch totalling about `target_bytes`: small nested images (numbers as strings), an
    integer timestamp and size per record."""
    records = []
    size = 20
    i = 0
    while size < target_bytes:
        image = {
            "Id": {"N": str(100 + i)},
            "Message": {"S": f"New item {i}!"},
            "Price": {"N": f"{i * 1.5:.2f}"},
            "Tags": {"SS": ["a", "b", f"t{i % 7}"]},
            "Active": {"BOOL": i % 2 == 0},
        }
        record = {
            "eventID": f"{i:032x}",
            "eventName": "MODIFY",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1773100239 + i,
                "Keys": {"Id": {"N": str(100 + i)}},
                "NewImage": image,
                "OldImage": image,
                "SequenceNumber": f"{111 + i:021d}",
                "SizeBytes": 26 + i % 100,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000",
        }
        records.append(record)
        size += len(json.dumps(record)) + 2
        i += 1
    return {"Records": records}


def float_records_event(count: int = 12_000) -> dict:
    """`count` records of twelve random floats each (about 3.4 MB for 12,000): the event the look at orjson's
    result costs most on, per byte."""
    import random

    rng = random.Random(1)
    return {"records": [{f"f{k}": rng.random() * 1000 for k in range(12)} for _ in range(count)]}


def big_result(target_bytes: int) -> dict:
    """A JSON-able result of about `target_bytes` once encoded compactly (ASCII only, as API payloads often are)."""
    items = []
    size = 12
    i = 0
    while size < target_bytes:
        item = {
            "id": i,
            "sku": f"SKU-{i % 9999:04d}",
            "name": f"Product number {i}",
            "price": round(9.99 + i % 100 * 0.5, 2),
            "stock": i % 37,
            "active": i % 5 != 0,
            "tags": ["blue", "large", f"t{i % 13}"],
            "dimensions": {"w": i % 40 + 1, "h": i % 20 + 1, "d": 3.5},
        }
        items.append(item)
        size += len(json.dumps(item, separators=(",", ":"))) + 1
        i += 1
    return {"count": len(items), "items": items}


RESULT_1MB = 1 * _MB
RESULT_5MB = 5 * _MB
