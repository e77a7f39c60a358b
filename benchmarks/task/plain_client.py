"""A plain, hand-written Lambda bootstrap: stdlib `urllib.request` + `json`, a new connection per request.

This is the baseline a custom runtime usually starts from: `python plain_client.py module.function`.
It exits when `/next` answers anything but 200.
"""

import importlib
import json
import os
import sys
import traceback
import urllib.error
import urllib.request


def main(handler_name: str) -> None:
    api = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]
    module_name, function_name = handler_name.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    while True:
        try:
            with urllib.request.urlopen(api + "/invocation/next") as reply:
                request_id = reply.headers["Lambda-Runtime-Aws-Request-Id"]
                event = json.loads(reply.read())
        except urllib.error.HTTPError:
            return
        os.environ["_X_AMZN_TRACE_ID"] = reply.headers.get("Lambda-Runtime-Trace-Id") or ""
        try:
            result = json.dumps(handler(event, None)).encode()
            url = "%s/invocation/%s/response" % (api, request_id)
        except Exception as exc:
            result = json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode()
            url = "%s/invocation/%s/error" % (api, request_id)
        post = urllib.request.Request(url, data=result, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(post).close()


if __name__ == "__main__":
    main(sys.argv[1])
