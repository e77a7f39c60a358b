"""The example function: echoes the query string parameters of an API Gateway-style event.

fastric invoke --task-root examples app.handler --event '{"queryStringParameters":{"foo":"bar"}}'
prints, byte for byte (the body's JSON is compact, as PHP's json_encode writes it):
{"statusCode":200,"headers":{"Content-Type":"application/json"},"body":"queryStringParameters, {\"foo\":\"bar\"}"}
"""

import json


def handler(event, context):
    query = event.get("queryStringParameters") if isinstance(event, dict) else None
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": "queryStringParameters, " + json.dumps(query, separators=(",", ":")),
    }
