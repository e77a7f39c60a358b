"""The `lambda_function` pytest fixture under pytest-benchmark: a warm invoke end to end through the real runtime
(test process → emulator → `python -m fastric` → back), against calling the same handler directly in-process.

    python -m pytest benchmarks/test_plugin.py --benchmark-only

The difference of the two means is what testing through the runtime costs per invocation.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EVENT = {"queryStringParameters": {"foo": "bar"}}


def test_warm_invoke_through_the_plugin(lambda_function, benchmark):
    fn = lambda_function("app.handler", task_root=EXAMPLES)
    fn.invoke(EVENT)  # the cold start is not measured
    result = benchmark(fn.invoke, EVENT)
    assert result.payload["statusCode"] == 200


def test_the_handler_called_directly(benchmark, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("app", None)
    from app import handler

    context = SimpleNamespace(aws_request_id="8476a536-e9f4-11e8-9739-000000000001", function_name="function")
    assert benchmark(handler, EVENT, context)["statusCode"] == 200
