"""A Lambda bootstrap for the extension tests (stdlib only, raw Runtime and Extensions API calls).

Environment:
  BOOT_INTERNAL   register an internal extension of this name (events from BOOT_INTERNAL_EVENTS, default
                  INVOKE) before the first /next, and run its event/next loop in a thread
  BOOT_SIGTERM    install a SIGTERM handler printing "bootstrap got SIGTERM": `exit` then exits 0, `hang` sleeps
  BOOT_PROBES     before the first /next, make Extensions API calls that must be refused (answers kept)
Each invocation prints `function saw <request id>` and the event's "print" text ("repeat" times), answers
`{"requestId", "event", "pid", "received", "internal": [events the internal extension got], "answers": {...}}`;
an event {"register": NAME} tries to register an internal extension then, an event {"fail": true} is
answered with an /error post, an event {"crash": true} makes the bootstrap exit 3.
"""

import json
import os
import signal
import sys
import threading
import time

from api_client import call

ANSWERS = {}
INTERNAL = []


def register(name, events):
    return call(
        "POST",
        "/2020-01-01/extension/register",
        json.dumps({"events": events}).encode(),
        {"Lambda-Extension-Name": name},
    )


def internal_loop(identifier):
    while True:
        status, _, event = call(
            "GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": identifier}
        )
        if status != 200:
            return
        INTERNAL.append(event)


def probes():
    unknown = "00000000-0000-4000-8000-000000000000"
    ANSWERS["no name"] = register("", ["INVOKE"])[::2]
    ANSWERS["internal shutdown"] = register("probe-internal-shutdown", ["SHUTDOWN"])[::2]
    ANSWERS["bad event"] = register("probe-bad-event", ["RESTORE"])[::2]
    ANSWERS["bad body"] = call("POST", "/2020-01-01/extension/register", b"not json", {"Lambda-Extension-Name": "x"})[
        ::2
    ]
    ANSWERS["next without id"] = call("GET", "/2020-01-01/extension/event/next")[::2]
    ANSWERS["next bad id"] = call(
        "GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": "nope"}
    )[::2]
    ANSWERS["next unknown id"] = call(
        "GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": unknown}
    )[::2]
    ANSWERS["telemetry unknown id"] = call(
        "PUT", "/2022-07-01/telemetry", b"{}", {"Lambda-Extension-Identifier": unknown}
    )[::2]
    _, headers, _ = register("probe-errors", [])
    ident = {"Lambda-Extension-Identifier": headers["lambda-extension-identifier"]}
    ANSWERS["init error without type"] = call("POST", "/2020-01-01/extension/init/error", b"{}", ident)[::2]
    ANSWERS["register twice"] = register("probe-errors", [])[::2]
    threading.Thread(target=call, args=("GET", "/2020-01-01/extension/event/next", None, ident), daemon=True).start()


def on_sigterm(signum, frame):
    sys.stdout.write("bootstrap got SIGTERM\n")
    sys.stdout.flush()
    if os.environ["BOOT_SIGTERM"] == "hang":
        time.sleep(60)
    os._exit(0)


def main():
    if os.environ.get("BOOT_SIGTERM"):
        signal.signal(signal.SIGTERM, on_sigterm)
    if os.environ.get("BOOT_PROBES"):
        probes()
    if os.environ.get("BOOT_INTERNAL"):
        events = os.environ.get("BOOT_INTERNAL_EVENTS", "INVOKE").split(",")
        status, headers, answer = register(os.environ["BOOT_INTERNAL"], events)
        ANSWERS["internal"] = [status, answer]
        if status == 200:
            threading.Thread(target=internal_loop, args=(headers["lambda-extension-identifier"],), daemon=True).start()
    while True:
        status, headers, event = call("GET", "/2018-06-01/runtime/invocation/next")
        if status != 200:
            sys.exit(1)
        received = time.time()
        request_id = headers["lambda-runtime-aws-request-id"]
        print(f"function saw {request_id}", flush=True)
        for _ in range(int(event.get("repeat", 1))):
            if "print" in event:
                print(event["print"], flush=True)
        if "register" in event:
            ANSWERS["late"] = register(event["register"], ["INVOKE"])[::2]
        if event.get("crash"):
            os._exit(3)
        answer = {
            "requestId": request_id,
            "event": event,
            "pid": os.getpid(),
            "received": received,
            "internal": list(INTERNAL),
            "answers": ANSWERS,
        }
        if event.get("fail"):
            error = {"errorMessage": "asked to fail", "errorType": "ProbeError"}
            call(
                "POST",
                f"/2018-06-01/runtime/invocation/{request_id}/error",
                json.dumps(error).encode(),
                {"Lambda-Runtime-Function-Error-Type": "ProbeError"},
            )
        else:
            call("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", json.dumps(answer).encode())


if __name__ == "__main__":
    main()
