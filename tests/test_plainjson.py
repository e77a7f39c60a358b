"""The first invocation's standard-library JSON against the hot path's (`marshal.py`): for any event it decodes,
the same value (types, signs, order, exact big integers), and for any result it encodes, the same bytes and content
type; where it cannot, it says so (and the first invocation uses `marshal.py`)."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
import subprocess
import sys
import uuid
from collections import namedtuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastric.runtime import marshal
from fastric.runtime.faults import FaultError
from fastric.runtime.plainjson import MAX_DEPTH, NOT_PLAIN, decode_plain, encode_plain


def hot_decode(body: bytes, content_type=None):
    try:
        return ("value", marshal.decode_event(body, content_type))
    except FaultError as exc:
        return ("error", exc.error_type, exc.message)


def assert_same_event(body: bytes, content_type=None) -> bool:
    """True when the plain decoder took the event (and gave the hot path's value), False when it left it."""
    plain = decode_plain(body, content_type)
    if plain is NOT_PLAIN:
        return False
    assert hot_decode(body, content_type)[0] == "value"
    assert repr(plain) == repr(hot_decode(body, content_type)[1])
    return True


def assert_same_result(result) -> bool:
    plain = encode_plain(result)
    if plain is None:
        return False
    assert plain == marshal.encode_result(result)
    return True


EVENTS = [
    b"{}",
    b' {"a": [1, 2.5, -0.0, -0, 1e400, -1e400, 1E2, 1e-7, "x\\u00e9\\ud83d\\ude00", null, true, false]}\n',
    b'"\\ud800"',
    b"123456789012345678901234567890",
    b"-9223372036854775809",
    b"18446744073709551616",
    b'{"a":1,"a":2,"b":3}',
    b"[" * 900 + b"]" * 900,
    b"0.1000000000000000055511151231257827021181583404541015625",
    b"2.2250738585072011e-308",
    b"4.9406564584124654e-324",
    b'{"records":[{"id":"1545082649183","sequenceNumber":"49590338271490256608559692538361571095921575989136588898"}]}',
    '{"ünïcode": "\u2028\u2029\\"\\\\\\/"}'.encode(),
]
REFUSED = [
    b"",
    b"  ",
    b"NaN",
    b"[Infinity]",
    b"-Infinity",
    b"1 2",
    b'"\x01"',
    b"\xef\xbb\xbf{}",
    b"\xff",
    b"\x0c{}",
    b"{}\x0c",
    b"1" * 5000,
    b"{'a': 1}",
    b"[1,]",
]


@pytest.mark.parametrize("body", EVENTS)
def test_plain_events_decode_as_the_hot_path(body):
    assert assert_same_event(body)


@pytest.mark.parametrize("body", REFUSED)
def test_what_the_hot_path_decodes_otherwise_is_not_plain(body):
    assert not assert_same_event(body)


def test_an_event_nested_past_the_recursion_limit_is_the_hot_paths():
    """5,000 levels: past the recursion limit on 3.10-3.12, where `_json`'s scanner raises RecursionError and the
    plain decoder leaves the event to marshal.py; 3.13's scanner counts C stack instead of Python's recursion limit
    and reads it (as awslambdaric's does there). Either way the first invocation gets the hot path's value."""
    body = b"[" * 5000 + b"]" * 5000
    taken = assert_same_event(body)  # asserts the same value when the plain decoder takes it
    if sys.version_info < (3, 13):
        assert not taken


def test_other_content_types_are_the_bytes():
    assert decode_plain(b"\xff\x00", "application/octet-stream") == b"\xff\x00"
    assert type(decode_plain(bytearray(b"ab"), "text/plain")) is bytes
    assert type(marshal.decode_event(bytearray(b"ab"), "text/plain")) is bytes


class Color(enum.Enum):
    RED = "red"


Point = namedtuple("Point", "x y")


class Text(str):
    pass


RESULTS = [
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.0,
    1e16,
    1e-4,
    1e-10,
    5e-324,
    1.7976931348623157e308,
    "",
    'é€😀\x00\x1f\x7f\u2028"\\/',
    [],
    (),
    {},
    [1, [2, (3, {"a": None})]],
    {"a": {"b": [1.25, "x"]}},
    b"raw bytes",
]
NOT_PLAIN_RESULTS = [
    2**64,
    -(2**63) - 1,
    1e-5,
    2.5e-9,
    math.nan,
    math.inf,
    -math.inf,
    "\ud800",
    {1: 2},
    {"a": 1, None: 2},
    Point(1, 2),
    Text("x"),
    Color.RED,
    decimal.Decimal("1.5"),
    datetime.datetime(2026, 1, 2, 3, 4, 5),
    uuid.UUID(int=1),
    {1.5},
    bytearray(b"x"),
    object(),
    json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)),
]


@pytest.mark.parametrize("result", RESULTS, ids=repr)
def test_plain_results_encode_as_the_hot_path(result):
    assert assert_same_result(result)


@pytest.mark.parametrize("result", NOT_PLAIN_RESULTS, ids=lambda r: type(r).__name__)
def test_results_orjson_writes_otherwise_are_not_plain(result):
    assert encode_plain(result) is None


def test_a_circular_result_is_not_plain():
    loop: list = []
    loop.append(loop)
    assert encode_plain(loop) is None


def test_no_json_and_no_re_imported():
    code = (
        "import sys; before = set(sys.modules); from fastric.runtime import plainjson as p; "
        "assert p.decode_plain(b'{\"a\": [1, 2.5]}', None) == {'a': [1, 2.5]}; "
        "assert p.encode_plain({'a': [1, 2.5]}) == (b'{\"a\":[1,2.5]}', b'application/json'); "
        "print(sorted(m for m in ('json', 're', 'orjson') if m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.sampled_from([None, 0, 2]), st.booleans())
def test_any_json_document_decodes_as_the_hot_path(value, indent, ascii_only):
    body = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
    assert assert_same_event(body)


number_texts = st.builds(
    lambda sign, digits, fraction, exponent: sign + digits + fraction + exponent,
    st.sampled_from(["", "-"]),
    st.from_regex(r"(0|[1-9][0-9]{0,25})", fullmatch=True),
    st.sampled_from([""]) | st.from_regex(r"\.[0-9]{1,25}", fullmatch=True),
    st.sampled_from([""]) | st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True),
)


@settings(max_examples=600, deadline=None)
@given(number_texts)
def test_numbers_decode_as_the_hot_path(text):
    assert assert_same_event(f'{{"n": {text}, "l": [{text}]}}'.encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.sampled_from([b"", b"{", b'{"a": [', b'"']))
def test_any_bytes_decode_as_the_hot_path_or_are_not_plain(data, prefix):
    assert_same_event(prefix + data)


@settings(max_examples=400, deadline=None)
@given(json_values | st.floats() | st.tuples(st.floats(), st.integers()))
def test_any_result_encodes_as_the_hot_path_or_is_not_plain(result):
    assert_same_result(result)
