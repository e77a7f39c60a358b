"""Handler fixtures for the benchmark scenarios (sync handlers).

The module imports nothing at all, so that a cold start measures the runtime, not the function."""

_results: dict[str, dict] = {}


def noop(event, context):
    """The no-op handler: measures the runtime alone."""
    return None


def echo(event, context):
    """Return the event unchanged (API Gateway proxy round trip)."""
    return event


def sqs_batch(event, context):
    """Walk an SQS batch and report no failures, as a partial-batch handler does."""
    failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if not r["body"]]
    return {"batchItemFailures": failures, "processed": len(event["Records"])}


def _cached_result(name: str) -> dict:
    result = _results.get(name)
    if result is None:
        import payloads

        result = _results[name] = payloads.big_result(getattr(payloads, name))
    return result


def result_1mb(event, context):
    """Return ~1 MB of JSON (built once, on the first call)."""
    return _cached_result("RESULT_1MB")


def result_5mb(event, context):
    """Return ~5 MB of JSON (built once, on the first call)."""
    return _cached_result("RESULT_5MB")


def fail(event, context):
    """Raise, exercising the error path (error document, stack trace, X-Ray cause)."""
    raise ValueError("benchmark error path")
