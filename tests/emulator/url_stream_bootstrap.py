"""A raw bootstrap answering Function URL events with streamed responses (stdlib only).

The event's `rawPath` picks the answer: `/prelude` streams an http-integration response (status 201, headers,
cookies, then the body in two chunks, holding the second until the file named by the `gate` query parameter
exists), `/prelude-error` breaks off after the first body chunk with an error trailer, `/bad-prelude` sends a
prelude that is not JSON, `/plain` streams text/plain without a prelude.
"""

import json

from probe_bootstrap import call, connect, stream

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
PRELUDE = {
    "statusCode": 201,
    "headers": {"Content-Type": "text/plain", "X-Stream": "yes"},
    "cookies": ["session=abc; Path=/", "theme=dark"],
}
DELIMITER = "\0" * 8


def answer(conn, request_id, event):
    path = event["rawPath"]
    gate = (event.get("queryStringParameters") or {}).get("gate")
    if path == "/prelude":
        stream(conn, request_id, [json.dumps(PRELUDE) + DELIMITER + "first ", "second"], gate, None, HTTP_INTEGRATION)
    elif path == "/prelude-error":
        error = {"errorMessage": "broke", "errorType": "StreamError"}
        stream(conn, request_id, [json.dumps(PRELUDE) + DELIMITER + "partial"], None, error, HTTP_INTEGRATION)
    elif path == "/bad-prelude":
        stream(conn, request_id, ["{not json" + DELIMITER + "body"], None, None, HTTP_INTEGRATION)
    elif path == "/plain":
        stream(conn, request_id, ["plain ", "text"], None, None, "text/plain")


def main():
    conn = connect()
    while True:
        status, headers, body = call(conn, "GET", "/invocation/next")
        if status != 200:
            return
        answer(conn, headers["Lambda-Runtime-Aws-Request-Id"], json.loads(body))


if __name__ == "__main__":
    main()
