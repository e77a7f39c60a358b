"""A Logs API extension shaped like AWS's Python sample (aws-samples/aws-lambda-extensions,
python-example-logs-api-extension), written here from its description: urllib calls, an HTTP/1.0
`BaseHTTPRequestHandler` listener that answers `200` with no body and no Content-Length, a subscription with no
schemaVersion to `http://sandbox:PORT`, buffering timeoutMs 1000, and each batch printed (`BATCH RECEIVED`) and
appended to $SAMPLE_RECORD as one JSON line. The listener binds 127.0.0.1, as the sample does with AWS_SAM_LOCAL."""

import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
NAME = sys.argv[1] if len(sys.argv) > 1 else os.path.basename(sys.argv[0])  # the file name in the directory
RECORD = os.environ["SAMPLE_RECORD"]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        batch = json.loads(self.rfile.read(length))
        self.send_response(200)
        self.end_headers()
        time.sleep(0.3)  # the batch is handled after the answer's head went out: the connection's close ends it
        with open(RECORD, "a") as out:
            out.write(json.dumps(batch) + "\n")

    def log_message(self, *args):
        pass


def request(method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://{API}{path}", data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as response:
        return response.status, dict(response.headers), response.read()


def main():
    _, headers, _ = request(
        "POST",
        "/2020-01-01/extension/register",
        json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
        {"Lambda-Extension-Name": NAME},
    )
    ident = headers["Lambda-Extension-Identifier"]
    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    subscription = {
        "destination": {"protocol": "HTTP", "URI": f"http://sandbox:{server.server_address[1]}"},
        "types": ["platform", "function"],
        "buffering": {"timeoutMs": 1000, "maxBytes": 262144, "maxItems": 10000},
    }
    status, _, _ = request(
        "PUT",
        "/2020-08-15/logs",
        json.dumps(subscription).encode(),
        {"Lambda-Extension-Identifier": ident, "Content-Type": "application/json"},
    )
    print(f"subscribed: {status}", flush=True)
    while True:
        _, _, body = request("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ident})
        event = json.loads(body)
        if event["eventType"] == "SHUTDOWN":
            return


if __name__ == "__main__":
    main()
