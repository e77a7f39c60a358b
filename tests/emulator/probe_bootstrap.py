"""A scripted Lambda bootstrap for the emulator tests (stdlib only, raw Runtime API calls).

Each event's "action" says what to do; whatever the bootstrap learns about the emulator's answers
(status codes, bodies) it keeps in `notes` and returns from the next `{"action": "notes"}` invocation.
`PROBE_INIT` picks an init behaviour: `error` (post /init/error, exit 1), `exit` (exit 7 before any
/next), `hang` (never call /next); `PROBE_INIT_SLEEP=S` sleeps S seconds before it.
It polls from N threads, N = PROBE_WORKERS or AWS_LAMBDA_MAX_CONCURRENCY.
"""

import base64
import http.client
import json
import os
import sys
import threading
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
NOTES = []
WORKERS = int(os.environ.get("PROBE_WORKERS") or os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1)
BARRIER = threading.Barrier(WORKERS, timeout=float(os.environ.get("PROBE_BARRIER_TIMEOUT") or 10))
ENV_NAMES = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_MAX_CONCURRENCY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LAMBDA_TASK_ROOT",
    "_HANDLER",
    "TZ",
)


def connect():
    host, port = API.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=60)


def call(conn, method, path, body=None, headers=None):
    conn.request(method, BASE + path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def post_json(conn, path, value, headers=None):
    return call(conn, "POST", path, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


def outcome(result):
    """[status, decoded JSON body] of a call."""
    status, _, body = result
    return [status, json.loads(body)]


def stream(conn, request_id, chunks, gate=None, error=None, content_type="text/plain"):
    conn.putrequest("POST", f"{BASE}/invocation/{request_id}/response")
    conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
    conn.endheaders()
    for index, chunk in enumerate(chunks):
        data = chunk.encode()
        conn.send(b"%x\r\n%s\r\n" % (len(data), data))
        if index == 0 and gate:
            deadline = time.monotonic() + 10
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
    trailers = b""
    if error is not None:
        encoded = base64.b64encode(json.dumps(error).encode())
        trailers = b"Lambda-Runtime-Function-Error-Type: %s\r\nLambda-Runtime-Function-Error-Body: %s\r\n" % (
            error["errorType"].encode(),
            encoded,
        )
    conn.send(b"0\r\n" + trailers + b"\r\n")
    response = conn.getresponse()
    return [response.status, json.loads(response.read())]


def handle(conn, request_id, headers, event):
    action = event.get("action") if isinstance(event, dict) else None
    path = f"/invocation/{request_id}"

    def reply(value):
        return post_json(conn, f"{path}/response", value)

    if action == "error":
        post_json(
            conn,
            f"{path}/error",
            {"errorMessage": "boom", "errorType": "ProbeError"},
            {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
        )
    elif action == "sleep":
        time.sleep(event["seconds"])
        reply({"slept": event["seconds"], "pid": os.getpid()})
    elif action == "exit":
        os._exit(event.get("code", 3))
    elif action == "notes":
        reply({"notes": NOTES, "pid": os.getpid()})
    elif action == "unknown_id":
        NOTES.append(outcome(post_json(conn, "/invocation/no-such-id/response", {})))
        reply({"ok": True})
    elif action == "double_post":
        NOTES.append(outcome(reply({"first": True})))
        NOTES.append(outcome(reply({"second": True})))
        NOTES.append(outcome(post_json(conn, f"{path}/error", {"errorType": "Late", "errorMessage": ""})))
    elif action == "big_response":
        NOTES.append(
            outcome(call(conn, "POST", f"{path}/response", b"x" * event["size"], {"Content-Type": "text/plain"}))
        )
        if NOTES[-1][0] == 413:  # the invocation is over: posting an error now is refused
            NOTES.append(outcome(post_json(conn, f"{path}/error", {"errorType": "X", "errorMessage": ""})))
    elif action == "wrong_invocation_id":
        NOTES.append(outcome(post_json(conn, f"{path}/response", {}, {"Lambda-Runtime-Invocation-Id": "not-it"})))
        reply({"ok": True})
    elif action == "bad_mode":
        NOTES.append(
            outcome(post_json(conn, f"{path}/response", {}, {"Lambda-Runtime-Function-Response-Mode": "bogus"}))
        )
    elif action == "init_error_late":
        NOTES.append(outcome(post_json(conn, "/init/error", {"errorType": "Late", "errorMessage": ""})))
        reply({"ok": True})
    elif action == "stream":
        NOTES.append(stream(conn, request_id, event["chunks"], event.get("gate"), event.get("error")))
    elif action == "barrier":
        try:
            BARRIER.wait()
        except threading.BrokenBarrierError:
            post_json(conn, f"{path}/error", {"errorMessage": "barrier broken", "errorType": "BrokenBarrier"})
        else:
            reply({"passed": True, "thread": threading.current_thread().name})
    elif action == "size":
        reply({"size": len(event["data"])})
    elif action == "content_type":
        call(conn, "POST", f"{path}/response", b"<p>hi</p>", {"Content-Type": "text/html"})
    else:
        env = {name: os.environ.get(name) for name in ENV_NAMES}
        reply({"event": event, "headers": headers, "env": env, "pid": os.getpid(), "cwd": os.getcwd()})


def worker():
    conn = connect()
    while True:
        status, headers, body = call(conn, "GET", "/invocation/next")
        if status != 200:
            sys.stderr.write(f"probe: /next answered {status} {body!r}\n")
            os._exit(0)
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        handle(conn, request_id, headers, json.loads(body))


def main():
    time.sleep(float(os.environ.get("PROBE_INIT_SLEEP") or 0))
    mode = os.environ.get("PROBE_INIT")
    if mode == "error":
        conn = connect()
        print(
            post_json(
                conn,
                "/init/error",
                {"errorMessage": "cannot init", "errorType": "Runtime.ProbeInit"},
                {"Lambda-Runtime-Function-Error-Type": "Runtime.ProbeInit"},
            )[0],
            file=sys.stderr,
        )
        sys.exit(1)
    if mode == "exit":
        sys.exit(7)
    if mode == "hang":
        time.sleep(3600)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
