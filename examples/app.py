"""The example function: echoes the query string parameters of an API Gateway-style event.

fastric invoke --task-root examples app.handler --event '{"queryStringParameters":{"foo":"bar"}}'
"""

import json


def handler(event, context):
    query = event.get("queryStringParameters") if isinstance(event, dict) else None
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": "queryStringParameters, " + json.dumps(query),
    }
