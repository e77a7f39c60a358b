"""The benchmark scenarios: which handler, which event, how many invocations, and how to check each answer."""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass, field

from benchmarks.server import BACKEND_BODY, Check, Expectation
from benchmarks.task import payloads

CLIENTS = ("fastric", "awslambdaric", "plain")


@dataclass(frozen=True)
class Scenario:
    """One workload, run the same way by every client."""

    name: str
    title: str
    handler: str  # module.function inside benchmarks/task
    event: bytes
    check: Check
    invocations: int  # measured invocations per run (full mode)
    warmup: int = 20
    error: bool = False
    backend: bool = False  # serve the local HTTP service that async handlers call
    sample_every: int = 1
    handlers: dict[str, str] = field(default_factory=dict)  # per-client handler overrides

    def handler_for(self, client: str) -> str:
        return self.handlers.get(client, self.handler)

    def expectation(self) -> Expectation:
        return Expectation(self.event, self.check, error=self.error, sample_every=self.sample_every)


def _encode(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _equals(expected_factory) -> Check:
    """A check that the body decodes to the value `expected_factory()` returns (built once, when first needed)."""
    expected = functools.cache(expected_factory)

    def check(body: bytes) -> str | None:
        try:
            value = json.loads(body)
        except ValueError as exc:
            return f"not JSON ({exc})"
        return None if value == expected() else "a different JSON value than expected"

    return check


def _is_null(body: bytes) -> str | None:
    return None if body.strip() == b"null" else "expected null"


def _is_value_error(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if document.get("errorType") != "ValueError" or document.get("errorMessage") != "benchmark error path":
        return "not the handler's ValueError document"
    return None


@functools.cache
def _sqs_event() -> dict:
    return payloads.sqs_event()


@functools.cache
def _apigw_event() -> dict:
    return payloads.apigw_event()


def all_scenarios() -> list[Scenario]:
    """Every scenario, in table order."""
    tiny = _encode(payloads.tiny_event())
    return [
        Scenario("tiny", "tiny event (~100 B), no-op handler", "bench_handlers.noop", tiny, _is_null, 2000, warmup=200),
        Scenario(
            "apigw",
            "API Gateway proxy event (2.7 KB), echoed",
            "bench_handlers.echo",
            _encode(_apigw_event()),
            _equals(_apigw_event),
            1000,
            warmup=100,
        ),
        Scenario(
            "event_1mb",
            "SQS batch event (1 MB)",
            "bench_handlers.sqs_batch",
            _encode(_sqs_event()),
            _equals(lambda: {"batchItemFailures": [], "processed": len(_sqs_event()["Records"])}),
            40,
            warmup=3,
        ),
        Scenario(
            "result_1mb",
            "1 MB JSON result",
            "bench_handlers.result_1mb",
            tiny,
            _equals(lambda: payloads.big_result(payloads.RESULT_1MB)),
            40,
            warmup=3,
            sample_every=10,
        ),
        Scenario(
            "result_5mb",
            "5 MB JSON result",
            "bench_handlers.result_5mb",
            tiny,
            _equals(lambda: payloads.big_result(payloads.RESULT_5MB)),
            10,
            warmup=2,
            sample_every=5,
        ),
        Scenario(
            "error",
            "handler raises (error path)",
            "bench_handlers.fail",
            tiny,
            _is_value_error,
            500,
            warmup=50,
            error=True,
        ),
        Scenario(
            "async",
            "async handler awaiting a local HTTP call (aiohttp)",
            "bench_async.per_invoke",
            tiny,
            _equals(lambda: {"backend": json.loads(BACKEND_BODY)}),
            300,
            warmup=30,
            backend=True,
            handlers={"fastric": "bench_async.persistent"},
        ),
    ]


def missing_requirement(scenario: Scenario) -> str | None:
    """Why `scenario` cannot run in this environment (None when it can)."""
    if scenario.backend and importlib.util.find_spec("aiohttp") is None:
        return "aiohttp is not installed (pip install 'fastric[bench]')"
    return None


def scenario(name: str) -> Scenario:
    """The scenario called `name`."""
    for candidate in all_scenarios():
        if candidate.name == name:
            return candidate
    raise KeyError(name)
