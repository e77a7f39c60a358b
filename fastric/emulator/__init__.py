"""fastric's local Lambda emulator: `fastric emulate` and `fastric invoke`.

It serves the RIE's invoke endpoint (`POST /2015-03-31/functions/function/invocations`, 127.0.0.1:9000 by
default) and, on its own loopback port, the Runtime API for a bootstrap it spawns: any program in any
language (`python -m fastric HANDLER` by default). The runtime never imports this package, and this
package imports nothing from the runtime but `fastric.__version__`.

Choices, where the RIE left room (where the emulator knowingly differs from the RIE, the README's emulator
section lists it):
- Results: success is HTTP 200 with the runtime's body and Content-Type. A function error (the runtime
  posted `/error`, or streaming error trailers) is HTTP 200 with `X-Amz-Function-Error: Unhandled` and
  the error document, as Lambda's Invoke API answers (the RIE sends no header). A timeout is HTTP 200,
  `X-Amz-Function-Error: Unhandled`,
  `{"errorMessage":"RequestId: <id> Error: Task timed out after N.NN seconds","errorType":"Sandbox.Timedout"}`.
  A bootstrap crash, an init error or a bootstrap that cannot start is HTTP 502 (as from the RIE) with
  `X-Amz-Function-Error: Unhandled` and a `Runtime.ExitError` / posted init error /
  `Runtime.InvalidEntrypoint` document. Every answer carries `X-Amzn-RequestId`.
- Start-up is eager: the bootstrap is spawned when the emulator starts, so init logs show at once; an
  init failure is reported to the first invoke. After a crash, timeout or init error, the next invoke
  starts a fresh bootstrap (lazily, so a broken function does not crash-loop).
- The timeout covers the invoke phase: it starts when `/next` hands the invocation out (the deadline
  header says the same). Init has its own limit (`--init-timeout`, 10 s); an init past it, or a re-init
  after a crash or timeout, counts against the invocation waiting for it. A timeout kills the
  bootstrap's whole process group (SIGKILL); under `--concurrency`, as on Lambda Managed Instances, it
  fails that invocation only.
- `POST /2021-11-15/functions/{name}/response-streaming-invocations` (boto3's
  `invoke_with_response_stream`) answers with an AWS event stream: `PayloadChunk` events as the
  function's bytes arrive, then `InvokeComplete` (with `ErrorCode` / `ErrorDetails` on failure).
- Invocations are queued in arrival order, one at a time (`--concurrency N`: N at a time, with
  `AWS_LAMBDA_MAX_CONCURRENCY=N` and `AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances` for the
  bootstrap). Nothing is ever refused for being concurrent.
- `/next` always sends `Content-Type: application/json` (Lambda's events are JSON). An empty invoke body
  is the event `{}`; a non-JSON one gets 400 `InvalidRequestContentException`, as from Lambda.
- Streamed responses: `Invoke` buffers them, as Lambda does (up to 6 291 556 bytes, else
  `Function.ResponseSizeTooLarge`), and a stream that ends with an error trailer is answered like any
  function error (`X-Amz-Function-Error: Unhandled` and the error document), whatever the log type.
  `InvokeWithResponseStream` and Function URLs relay them as they arrive; there, streams are not size-capped.
- Environment: the emulator's own, plus `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`
  (`test_function`), `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (3008),
  `AWS_LAMBDA_LOG_GROUP_NAME`, `AWS_LAMBDA_LOG_STREAM_NAME`, `AWS_LAMBDA_INITIALIZATION_TYPE=on-demand`,
  `AWS_REGION` / `AWS_DEFAULT_REGION` (us-east-1 unless set), `LAMBDA_TASK_ROOT`, `_HANDLER` when known,
  and `TZ=:UTC` only when TZ is unset. Memory is reported, not enforced.
- Logs: `START` / `END` / `REPORT` lines (real request id, measured duration, peak RSS of the bootstrap's
  process tree from /proc VmHWM, `Init Duration` on an instance's first invoke) and the bootstrap's
  stdout and stderr all go to the emulator's stderr, so `fastric invoke`'s stdout is the response alone.
  The bootstrap's and extensions' output is captured on the way (for the Telemetry API and
  `X-Amz-Log-Type: Tail`) and copied to stderr unchanged as it comes.
- Extensions and the Telemetry API (`extensions.py`, `extensions_api.py`, `telemetry.py`): served on the
  Runtime API's address; external extensions from `/opt/extensions` or `--extensions DIR`.
- Ctrl-C / SIGTERM: as on Lambda, the bootstrap is killed (SIGKILL) when no extension is registered; with
  one, it gets SIGTERM first (500 ms, or 300 ms with external extensions only), then the external extensions
  get SHUTDOWN and the rest of 2 s; then SIGKILL. The emulator exits 0.
"""
