"""An external Lambda extension for the emulator tests (stdlib only): it records what it sees as JSON lines.

Usage: `extension_probe.py NAME` (NAME is the extension's file name, sent as `Lambda-Extension-Name`).
Every record goes to the file `$EXT_RECORD`, one JSON object a line, with "name" and "kind": `env`, `register`,
`event` (each event/next answer), `done` (about to call next after EXT_DELAY), `subscribe` (Telemetry API
answers), `late` (a subscription after init), `telemetry` (each batch received), `error` (init/error, exit/error
answers). Behaviour, from the environment:
  EXT_EVENTS      events to register for (default "INVOKE,SHUTDOWN")
  EXT_CRASH       exit 3 before registering
  EXT_INIT_ERROR  post /extension/init/error after registering, then exit 1
  EXT_EXIT_ERROR  post /extension/exit/error after the first INVOKE, call next once more, then exit 1
  EXT_DELAY       seconds to wait after an INVOKE event before calling next
  EXT_STUCK       a path: if it does not exist, create it and never call next after the INVOKE event
  EXT_TELEMETRY   subscribe to these Telemetry API types (comma-separated), buffering timeoutMs 25
  EXT_LOGS        subscribe to these Logs API types instead (PUT /2020-08-15/logs), buffering timeoutMs 25
  EXT_LOGS_AGAIN  then repeat the Logs API subscription (recorded as `again`) and try the Telemetry API
                  (recorded as `conflict`)
  EXT_TCP         deliver telemetry over TCP instead of HTTP
  EXT_BAD_SUBSCRIPTIONS  first try subscriptions Lambda refuses (recorded as `subscribe` with "bad": true)
It prints a line for each event (the `extension` log stream) and exits 0 on SHUTDOWN.
"""

import http.server
import json
import os
import socketserver
import sys
import threading
import time

from api_client import call

NAME = sys.argv[1]
RECORD = os.environ["EXT_RECORD"]
LOCK = threading.Lock()


def record(kind, **fields):
    line = json.dumps({"name": NAME, "kind": kind, "at": time.time(), **fields})
    with LOCK, open(RECORD, "a") as out:
        out.write(line + "\n")


class TelemetryHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        record("telemetry", path=self.path, content_type=self.headers["Content-Type"], events=json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class TCPTelemetryHandler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            record("telemetry", path="tcp", events=[json.loads(line)])


def listen():
    """Start a telemetry listener; its port."""
    if os.environ.get("EXT_TCP"):
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), TCPTelemetryHandler)
    else:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TelemetryHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def subscribe(identifier, types, path="/2022-07-01/telemetry"):
    port = listen()
    headers = {"Lambda-Extension-Identifier": identifier, "Content-Type": "application/json"}
    good_destination = (
        {"protocol": "TCP", "port": port}
        if os.environ.get("EXT_TCP")
        else {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{port}/telemetry"}
    )
    request = {
        "schemaVersion": "2022-12-13" if "telemetry" in path else "2021-03-18",
        "types": types,
        "buffering": {"timeoutMs": 25, "maxItems": 1000, "maxBytes": 262144},
        "destination": good_destination,
    }
    if os.environ.get("EXT_BAD_SUBSCRIPTIONS"):
        bad = [
            {**request, "destination": {"protocol": "HTTP", "URI": f"http://example.com:{port}/"}},
            {**request, "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain/"}},
            {**request, "types": ["platform", "logs"]},
            {**request, "types": []},
            {**request, "buffering": {"timeoutMs": 10}},
            {**request, "schemaVersion": "2020-01-01"},
        ]
        for body in bad:
            status, _, answer = call("PUT", path, json.dumps(body).encode(), headers)
            record("subscribe", bad=True, status=status, answer=answer)
    status, response_headers, answer = call("PUT", path, json.dumps(request).encode(), headers)
    record("subscribe", status=status, answer=answer, content_type=response_headers.get("content-type"))
    if os.environ.get("EXT_LOGS_AGAIN"):
        again = call("PUT", path, json.dumps(request).encode(), headers)
        record("again", status=again[0], answer=again[2])
        other = {**request, "schemaVersion": "2022-12-13"}
        conflict = call("PUT", "/2022-07-01/telemetry", json.dumps(other).encode(), headers)
        record("conflict", status=conflict[0], answer=conflict[2])
    return request, path


def main():
    names = ("AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_REGION")
    record("env", env={name: os.environ.get(name) for name in names}, pid=os.getpid())
    if os.environ.get("EXT_CRASH"):
        print(f"{NAME}: crashing", flush=True)
        sys.exit(3)
    events = [event for event in os.environ.get("EXT_EVENTS", "INVOKE,SHUTDOWN").split(",") if event]
    status, headers, answer = call(
        "POST",
        "/2020-01-01/extension/register",
        json.dumps({"events": events}).encode(),
        {"Lambda-Extension-Name": NAME, "Lambda-Extension-Accept-Feature": "accountId"},
    )
    record("register", status=status, headers=headers, answer=answer)
    identifier = headers["lambda-extension-identifier"]
    ident = {"Lambda-Extension-Identifier": identifier}
    if os.environ.get("EXT_INIT_ERROR"):
        error = json.dumps({"errorMessage": "cannot start", "errorType": "Extension.ProbeFailed"}).encode()
        result = call(
            "POST",
            "/2020-01-01/extension/init/error",
            error,
            {**ident, "Lambda-Extension-Function-Error-Type": "Extension.ProbeFailed"},
        )
        record("error", which="init", status=result[0], answer=result[2])
        sys.exit(1)
    request = None
    if os.environ.get("EXT_TELEMETRY"):
        request = subscribe(identifier, os.environ["EXT_TELEMETRY"].split(","))
    elif os.environ.get("EXT_LOGS"):
        request = subscribe(identifier, os.environ["EXT_LOGS"].split(","), "/2020-08-15/logs")
    print(f"{NAME}: ready", flush=True)
    while True:
        status, headers, event = call("GET", "/2020-01-01/extension/event/next", headers=ident)
        record("event", status=status, headers=headers, event=event)
        if status != 200:
            sys.exit(2)
        print(f"{NAME}: {event['eventType']} {event.get('requestId', event.get('shutdownReason'))}", flush=True)
        if request is not None:
            late = call("PUT", request[1], json.dumps(request[0]).encode(), ident)
            record("late", status=late[0], answer=late[2])
            request = None
        if event["eventType"] == "SHUTDOWN":
            time.sleep(0.1)  # let the last telemetry batches land
            sys.exit(0)
        if os.environ.get("EXT_EXIT_ERROR"):
            result = call(
                "POST",
                "/2020-01-01/extension/exit/error",
                b"",
                {**ident, "Lambda-Extension-Function-Error-Type": "Extension.ProbeExit"},
            )
            record("error", which="exit", status=result[0], answer=result[2])
            result = call("GET", "/2020-01-01/extension/event/next", headers=ident)
            record("error", which="next after exit", status=result[0], answer=result[2])
            sys.exit(1)
        stuck = os.environ.get("EXT_STUCK")
        if stuck and not os.path.exists(stuck):
            open(stuck, "w").close()
            time.sleep(3600)
        if os.environ.get("EXT_DELAY"):
            time.sleep(float(os.environ["EXT_DELAY"]))
            print(f"{NAME}: done with {event['requestId']}", flush=True)
            record("done", requestId=event["requestId"])


if __name__ == "__main__":
    main()
