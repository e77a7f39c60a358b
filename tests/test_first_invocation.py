"""A plain `def` handler's first invocation is served before the hot path is imported (`fastric/runtime/first.py`):
on the wire it must be indistinguishable from any later one. Each case runs the same event twice against the
recording Runtime API and compares the first POST with the second (path, content type, body, error headers)."""

from __future__ import annotations

import json

import pytest
from json_cases import MALFORMED_EVENTS
from runtime_api import RuntimeAPIServer, run_client

HANDLER = """
import datetime, decimal, enum, json, math, sys, uuid
from collections import namedtuple

Point = namedtuple("Point", "x y")


class Color(enum.Enum):
    RED = "red"


RESULTS = {
    "none": lambda: None,
    "plain": lambda: {"a": [1, 2.5, -0.0, "é€😀\\u2028\\x00", True, None], "b": {"c": (1, 2)}},
    "small floats": lambda: [1e-05, 2.5e-09, 1e-10, 1e-04, 1e16, 1.7976931348623157e308],
    "big ints": lambda: [2**64, -(2**63) - 1, 2**64 - 1, -(2**63)],
    "non-finite": lambda: [math.nan, math.inf, -math.inf],
    "orjson types": lambda: [datetime.datetime(2026, 1, 2, 3, 4, 5), uuid.UUID(int=7), Color.RED],
    "compat types": lambda: {"d": decimal.Decimal("1.50"), "p": Point(1, 2), 1: "int key", "s": "\\ud800"},
    "bytes": lambda: b"\\x00\\xffraw",
    "deep": lambda: json.loads("[" * 300 + "]" * 300),
    "unserializable": lambda: {"a": {1, 2}},
    "raises": lambda: (_ for _ in ()).throw(ValueError("bad value")),
    "event": None,
}


def handler(event, context):
    if not isinstance(event, dict) or "op" not in event:
        return {"event": event if not isinstance(event, bytes) else event.decode("latin-1")}
    make = RESULTS[event["op"]]
    return {"event": event} if make is None else make()


def modules(event, context):
    return sorted(m for m in ("orjson", "httptools", "logging") if m in sys.modules)
"""

OPS = ["none", "plain", "small floats", "big ints", "non-finite", "orjson types", "compat types", "bytes", "deep"]
CASES = [{"op": op} for op in [*OPS, "unserializable", "raises"]]
EVENTS = [
    b'{"op": "event", "n": 123456789012345678901234567890, "m": -9223372036854775809, "f": 1e400}',
    b'{"op": "event", "s": "\\ud800", "k": {"a": 1, "a": 2}}',
    b"\xef\xbb\xbf" + b'{"op": "event"}',
    b'{"op": "event", "nan": NaN}',
    b"not json",
    b"[" * 2000 + b"]" * 2000,
    *MALFORMED_EVENTS,
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("first")
    (root / "firstapp.py").write_text(HANDLER)
    return str(root)


def twice(app: str, handler: str = "firstapp.handler", **invocation) -> tuple:
    """The first and the second POST for the same invocation, sent twice."""
    with RuntimeAPIServer() as srv:
        srv.add_invocation(**invocation)
        srv.add_invocation(**invocation)
        run_client("fastric", handler, srv, cwd=app)
    first, second = [r for r in srv.requests if r.method == "POST"]
    return first, second


def same_on_the_wire(first, second) -> None:
    assert first.path.rsplit("/", 1)[1] == second.path.rsplit("/", 1)[1]
    for name in ("content-type", "lambda-runtime-function-xray-error-cause"):
        assert first.header(name) == second.header(name), name
    if first.path.endswith("/error"):
        one, two = first.json(), second.json()
        assert one.pop("requestId") != two.pop("requestId")
        assert one == two
    else:
        assert first.body == second.body


@pytest.mark.parametrize("event", CASES, ids=lambda e: e["op"])
def test_the_first_result_is_the_hot_paths(app, event):
    same_on_the_wire(*twice(app, event=event))


@pytest.mark.parametrize("body", EVENTS, ids=lambda b: b[:24].decode("latin-1"))
def test_the_first_event_is_the_hot_paths(app, body):
    same_on_the_wire(*twice(app, body=body))


@pytest.mark.parametrize("body", MALFORMED_EVENTS, ids=lambda b: b[:24].decode("latin-1"))
def test_a_malformed_first_event_when_nothing_imported_json(tmp_path, body):
    """A function that never imports `json`: on 3.10/3.11 the standard library's scanner then cannot raise its
    own error (it got SystemError). The first invocation's error is the later ones' and awslambdaric's."""
    (tmp_path / "nojson.py").write_text("def handler(event, context):\n    return event\n")
    first, second = twice(str(tmp_path), "nojson.handler", body=body)
    same_on_the_wire(first, second)
    assert first.json()["errorType"] == "Runtime.UnmarshalError"
    assert first.json()["errorMessage"].startswith("Unable to unmarshal input: ")


def test_a_non_json_event_is_the_same_bytes(app):
    same_on_the_wire(*twice(app, body=b"\x00\xff plain", content_type="text/plain"))


def test_the_hot_path_is_imported_after_the_first_response(app):
    first, second = twice(app, "firstapp.modules", event={})
    assert first.json() == []  # nothing heavy on the way to the first response
    assert second.json() == ["orjson"]  # the hot path; httptools only for a response that is not plain


def test_a_large_first_event_with_exact_integers(app):
    event = {"op": "event", "pad": "x" * 100_000, "n": [2**70, -(2**65)] * 10, "f": 1.5e300}
    first, second = twice(app, event=event)
    same_on_the_wire(first, second)
    assert json.loads(first.body)["event"] == event


def test_logging_first_imported_by_the_handler_is_configured(tmp_path):
    (tmp_path / "lazylog.py").write_text(
        "def handler(event, context):\n"
        "    import logging\n"
        "    logging.getLogger('app').warning('from the handler')\n"
        "    return [type(h).__name__ for h in logging.getLogger().handlers]\n"
    )
    with RuntimeAPIServer() as srv:
        rid = srv.add_invocation({})
        run = run_client("fastric", "lazylog.handler", srv, cwd=str(tmp_path), env={"AWS_LAMBDA_LOG_FORMAT": "TEXT"})
    post = next(r for r in srv.requests if r.method == "POST")
    assert post.json() == ["LambdaLoggerHandler"]
    out = run.stdout.decode()
    assert "[WARNING]\t" in out and f"\t{rid}\tfrom the handler\n" in out


def test_no_logging_import_when_nothing_logs(tmp_path):
    (tmp_path / "quiet.py").write_text(
        "import sys\n\ndef handler(event, context):\n    context.log('via context\\n')\n"
        "    return 'logging' in sys.modules\n"
    )
    with RuntimeAPIServer() as srv:
        srv.add_invocation({})
        srv.add_invocation({})
        run = run_client("fastric", "quiet.handler", srv, cwd=str(tmp_path))
    assert [r.json() for r in srv.requests if r.method == "POST"] == [False, False]
    assert run.stdout.decode().count("via context\n") == 2
