"""The one HTTP call the test bootstrap and extension scripts make to the emulator's APIs (stdlib only)."""

import http.client
import json
import os


def call(method, path, body=None, headers=None):
    """(status, lower-case headers, decoded JSON body or None) of one request to $AWS_LAMBDA_RUNTIME_API."""
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw) if raw else None
    finally:
        conn.close()
