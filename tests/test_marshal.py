"""fastric.runtime.marshal against awslambdaric 4.2.2's own marshaller (simplejson), in-process.

Results: every value awslambdaric serializes must give the same JSON value; every value both refuse must give
the same MarshalError message; each deliberate difference (README) is asserted on its own.
Events: the same decoded value (types included) or the same UnmarshalError message.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import json
import math
import random
import struct
import sys
import uuid
from decimal import Decimal

import pytest
from awslambdaric.lambda_runtime_exception import FaultException
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

from fastric.runtime import marshal
from fastric.runtime.compat import jsonvalues
from fastric.runtime.compat.jsonerrors import find_syntax_error
from fastric.runtime.faults import FaultError
from fastric.runtime.marshal import decode_event, encode_result

THEIRS = LambdaMarshaller()


# -- helpers ------------------------------------------------------------------------------------------


def json_value(text):
    """A JSON document as a comparable value: numbers exact (ints as int, floats canonical), object members in
    order with duplicate keys resolved as parsers do (last value, first position), NaN/Infinity tokens kept."""
    return json.loads(
        text,
        parse_int=int,
        parse_float=lambda t: ("float", str(Decimal(t).normalize())),
        parse_constant=lambda t: ("constant", t),
        object_pairs_hook=lambda pairs: ("object", list(dict(pairs).items())),
    )


def their_encoding(value):
    """('ok', JSON value) or ('error', message) from awslambdaric's marshaller."""
    try:
        body, content_type = THEIRS.marshal_response(value)
    except FaultException as exc:
        assert exc.exception_type == "Runtime.MarshalError"
        return "error", exc.msg
    assert content_type == "application/json"
    return "ok", json_value(body)


def our_encoding(value):
    """('ok', JSON value) or ('error', message) from fastric; our output must be strict, valid UTF-8 JSON."""
    try:
        body, content_type = encode_result(value)
    except FaultError as exc:
        assert exc.error_type == "Runtime.MarshalError"
        return "error", exc.message
    assert content_type == b"application/json"
    text = body.decode("utf-8")
    json.loads(text, parse_constant=pytest.fail)  # no NaN/Infinity tokens, ever
    return "ok", json_value(text)


def typed(value):
    """A decoded event with every int/float/str distinguished (1 == 1.0 == True in plain Python)."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if value != value else repr(value))
    return (type(value).__name__, value)


def their_decoding(body, content_type="application/json"):
    try:
        return "ok", typed(THEIRS.unmarshal_request(body, content_type))
    except FaultException as exc:
        assert exc.exception_type == "Runtime.UnmarshalError"
        return "error", exc.msg


def our_decoding(body, content_type="application/json"):
    try:
        return "ok", typed(decode_event(body, content_type))
    except FaultError as exc:
        assert exc.error_type == "Runtime.UnmarshalError"
        return "error", exc.message


# -- result values both serialize -------------------------------------------------------------------

Point = collections.namedtuple("Point", "x y")


class Colour(enum.Enum):
    RED = "red"


class Word(str, enum.Enum):
    BEE = "bee"


class Number(enum.IntEnum):
    THREE = 3


class Ratio(float, enum.Enum):
    HALF = 0.5


class Text(str):
    def __str__(self):
        return "not the content"


class Count(int):
    def __repr__(self):
        return "not the value"

    __str__ = __repr__


class Real(float):
    def __repr__(self):
        return "not the value"


class Tuple(tuple):
    pass


class Mapping(dict):
    pass


class Items(list):
    pass


class RecordLike:
    """Not a tuple, but shaped like a namedtuple: simplejson serializes `_asdict()`."""

    def _asdict(self):
        return {"shaped": "like a namedtuple"}


def nested(depth, leaf=None):
    root = current = []
    for _ in range(depth - 1):
        child = []
        current.append(child)
        current = child
    if leaf is not None:
        current.append(leaf)
    return root


SAME_VALUE = {
    "none": None,
    "true": True,
    "false": False,
    "str": "ok",
    "empty-str": "",
    "int": 42,
    "negative": -7,
    "zero-negative-float": -0.0,
    "float": 1.5,
    "small-float": 1.1e-7,
    "large-float": 1e300,
    "e16": 1e16,
    "tiny-float": 5e-324,
    "max-float": 1.7976931348623157e308,
    "imprecise": 0.1 + 0.2,
    "int64-min": -(2**63),
    "uint64-max": 2**64 - 1,
    "big-int": 2**64,
    "big-negative": -(2**63) - 1,
    "huge-int": 10**200,
    "big-int-nested": {"a": [1, 2**70]},
    "plain-dict": {"statusCode": 200, "body": "hello", "headers": {"Content-Type": "text/plain"}},
    "nested": {"a": [1, {"b": (1, 2)}, [[], {}]]},
    "tuple": (1, "two", 3.0),
    "empty-tuple": (),
    "unicode": "é€😀 \u2028 \x7f",
    "control": 'a\x00b\x1f\n\t"\\',
    "ordered-dict": collections.OrderedDict([("b", 1), ("a", 2)]),
    "defaultdict": collections.defaultdict(int, a=1),
    "counter": collections.Counter("aab"),
    "dict-subclass": Mapping(a=1),
    "list-subclass": Items([1, 2]),
    "tuple-subclass": Tuple((1, 2)),
    "namedtuple": Point(1, 2),
    "namedtuple-nested": [{"p": Point(Point(0, 1), [Point(2, 3)])}],
    "namedtuple-like": RecordLike(),
    "str-subclass": Text("content"),
    "int-subclass": Count(3),
    "float-subclass": Real(2.5),
    "str-enum": Word.BEE,
    "int-enum": Number.THREE,
    "float-enum": Ratio.HALF,
    "decimal": Decimal("1.10"),
    "decimal-int": Decimal("5"),
    "decimal-exp": Decimal("1E+400"),
    "decimal-small": Decimal("1e-7"),
    "decimal-negative-zero": Decimal("-0"),
    "decimal-many-digits": Decimal("3.14159265358979323846264338327950288419716939937510"),
    "dynamodb-item": {"Items": [{"id": Decimal("12"), "price": Decimal("9.99"), "tags": ["a"]}], "Count": 1},
    "nested-bytes": {"b": b"x", "l": [b"", "\u00e9".encode()]},
    "bytes-subclass-nested": [type("B", (bytes,), {})(b"ab")],
    "int-key": {1: "a"},
    "negative-int-key": {-5: 1},
    "big-int-key": {2**70: 1},
    "float-key": {1.5: "c"},
    "float-key-exponent": {1e300: 1, 1e-7: 2, 1e16: 3},
    "nan-key": {float("nan"): 1},
    "infinity-keys": {float("inf"): 1, float("-inf"): 2},
    "bool-none-keys": {True: 1, False: 2, None: 3},
    "enum-keys": {Number.THREE: 1, Word.BEE: 2},
    "subclass-keys": {Count(3): 1, Real(2.5): 2, Text("k"): 3},
    "bytes-key": {b"k": 1},
    "mixed-keys": {"a": 1, 2: [3], None: {4.5: True}},
    "colliding-keys": {1: "int", "1": "str"},
    "colliding-keys-reversed": {"1": "str", 1: "int"},
    "lone-surrogate": "\ud800",
    "lone-surrogates-mixed": ["a\udc00é", {"k": "\udfff"}],
    "surrogate-key": {"\ud800": 1, "ok": "\ud83d"},
    "surrogate-key-with-int": {1: "\ud800", "\udc00": 2},
    "deep-300": nested(300, leaf={1: 2**70}),
    "deep-900": nested(900, leaf="x"),
    "wide-children-in-slow-path": {1: list(range(20)), 2: {str(i): [i, Decimal(i)] for i in range(10)}},
    "big-int-in-wide-list": {1: [0] * 10 + [2**70]},
    "int-key-in-wide-dict": [{str(i): i for i in range(9)} | {9: 9}],
    "shared-not-circular": (lambda shared: [shared, shared, {"a": shared}])([1, 2]),
    "shared-in-slow-path": (lambda shared: [shared, {1: shared}])({"s": 1}),
}


@pytest.mark.parametrize("value", SAME_VALUE.values(), ids=SAME_VALUE.keys())
def test_result_has_awslambdarics_json_value(value):
    theirs = their_encoding(value)
    assert theirs[0] == "ok", theirs
    assert our_encoding(value) == theirs


def test_random_floats_have_the_same_value():
    rng = random.Random(2)
    values = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(3000)]
    values = [v for v in values if math.isfinite(v)] + [rng.uniform(-1e6, 1e6) for _ in range(1000)]
    assert our_encoding(values) == their_encoding(values)


def test_decimal_keeps_its_exact_digits():
    body, _ = encode_result({"a": Decimal("1.10"), "b": Decimal("1E+400"), "c": Decimal("-0"), "d": [Decimal("0E-7")]})
    assert body == b'{"a":1.10,"b":1E+400,"c":-0,"d":[0E-7]}'


def test_dict_keys_are_coerced_as_simplejson_writes_them():
    body, _ = encode_result({1.1e-7: 1, 1e16: 2, True: 3, None: 4, Count(7): 5, float("nan"): 6})
    assert body == b'{"1.1e-07":1,"1e+16":2,"true":3,"null":4,"7":5,"NaN":6}'


def test_lone_surrogates_are_escaped_and_the_rest_stays_utf8():
    body, _ = encode_result({"k\ud800": "é\udfff"})
    assert body == '{"k\\ud800":"é\\udfff"}'.encode()


def test_deep_structures_beyond_orjsons_nesting_limit_are_complete():
    body, _ = encode_result(nested(700, leaf=Decimal("1.0")))
    assert body == b"[" * 700 + b"1.0" + b"]" * 700


# -- values both refuse -------------------------------------------------------------------------------


def generator():
    yield 1


async def coroutine_function():
    return 1


class ForJson:
    def for_json(self):
        return 1


class BadRecord:
    def _asdict(self):
        return [("not", "a dict")]


class FailingRecord:
    def _asdict(self):
        raise ValueError("boom")


def circular_list():
    items = []
    items.append(items)
    return items


def circular_dict():
    mapping = {}
    mapping["self"] = {"again": mapping}
    return mapping


BOTH_REFUSE = {
    "set": {1, 2},
    "nested-set": {"a": [set()]},
    "frozenset": frozenset(),
    "generator": generator(),
    "bytearray": bytearray(b"x"),
    "nested-bytearray": [bytearray(b"x")],
    "memoryview": memoryview(b"x"),
    "nested-memoryview": {"m": memoryview(b"x")},
    "complex": 1j,
    "object": object(),
    "range": range(3),
    "iterator": iter([1]),
    "type": type,
    "function": len,
    "ellipsis": ...,
    "for-json": ForJson(),
    "bad-asdict": BadRecord(),
    "failing-asdict": FailingRecord(),
    "invalid-utf8-bytes": {"b": b"\xff"},
    "invalid-utf8-bytes-late": {"b": b"ok\xc3"},
    "invalid-utf8-key": {b"\xff": 1},
    "tuple-key": {(1, 2): 1},
    "decimal-key": {Decimal(1): 1},
    "enum-key": {Colour.RED: 1},
    "datetime-key": {datetime.date(2020, 1, 1): 1},
    "frozenset-key": {frozenset(): 1},
    "circular-list": circular_list(),
    "circular-dict": circular_dict(),
    "set-after-int-key": {1: 2, "s": {3}},
    "set-after-big-int": [2**70, {4}],
    "set-before-bad-key": [{5}, {(1,): 2}],
    "bad-key-before-set": [{(1,): 2}, {5}],
    "set-in-wide-list-in-slow-path": {1: [0] * 7 + [{5}]},
    "bytes-in-wide-list-in-slow-path": {1: [0] * 9 + [b"\xfe"]},
}


@pytest.mark.parametrize("value", BOTH_REFUSE.values(), ids=BOTH_REFUSE.keys())
def test_refused_result_has_awslambdarics_message(value):
    theirs = their_encoding(value)
    assert theirs[0] == "error", theirs
    assert our_encoding(value) == theirs


def test_coroutine_result_has_awslambdarics_message():
    for_them, for_us = coroutine_function(), coroutine_function()
    try:
        assert (
            our_encoding(for_us)
            == their_encoding(for_them)
            == ("error", "Unable to marshal response: Object of type coroutine is not JSON serializable")
        )
    finally:
        for_them.close()
        for_us.close()


def test_set_message_is_the_documented_one():
    with pytest.raises(FaultError) as caught:
        encode_result({"a": {1}})
    assert caught.value.error_type == "Runtime.MarshalError"
    assert caught.value.message == "Unable to marshal response: Object of type set is not JSON serializable"
    assert caught.value.stack == []


def test_nesting_beyond_the_recursion_limit_is_a_marshal_error():
    """simplejson's limit is the recursion limit up to 3.11 (as ours), the C recursion limit from 3.12 on."""
    depth = sys.getrecursionlimit() * 3
    ours = our_encoding(nested(depth))
    assert ours == (
        "error",
        "Unable to marshal response: maximum recursion depth exceeded while encoding a JSON object",
    )
    if sys.version_info < (3, 12):  # 3.12+ simplejson nests deeper (the C recursion limit): a known difference
        theirs = their_encoding(nested(depth))
        assert theirs[0] == "error" and "maximum recursion depth exceeded" in theirs[1]
        assert ours == theirs


# -- deliberate differences (README) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, their_token",
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (Decimal("NaN"), "NaN"),
        (Decimal("-NaN"), "NaN"),
        (Decimal("sNaN"), "NaN"),
        (Decimal("Infinity"), "Infinity"),
        (Decimal("-Infinity"), "-Infinity"),
    ],
)
def test_nan_and_infinity_become_null(value, their_token):
    assert their_encoding([value]) == ("ok", [("constant", their_token)])
    assert encode_result([value]) == (b"[null]", b"application/json")
    assert encode_result({2**70: value})[0] == b'{"1180591620717411303424":null}'  # the slow path agrees


@dataclasses.dataclass
class Order:
    id: int
    total: Decimal
    when: datetime.date


STANDARD_FORMS = {
    "datetime": (datetime.datetime(2026, 1, 2, 3, 4, 5, 600000), b'"2026-01-02T03:04:05.600000"'),
    "aware-datetime": (datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc), b'"2026-01-02T00:00:00+00:00"'),
    "date": (datetime.date(2026, 1, 2), b'"2026-01-02"'),
    "time": (datetime.time(3, 4, 5), b'"03:04:05"'),
    "uuid": (uuid.UUID(int=1), b'"00000000-0000-0000-0000-000000000001"'),
    "enum": (Colour.RED, b'"red"'),
    "dataclass": (Order(1, Decimal("2.50"), datetime.date(2026, 1, 2)), b'{"id":1,"total":2.50,"when":"2026-01-02"}'),
}


@pytest.mark.parametrize("value, expected", STANDARD_FORMS.values(), ids=STANDARD_FORMS.keys())
def test_types_awslambdaric_refuses_get_orjsons_standard_form(value, expected):
    assert their_encoding(value) == (
        "error",
        f"Unable to marshal response: Object of type {type(value).__name__} is not JSON serializable",
    )
    assert encode_result(value) == (expected, b"application/json")
    # The same form when the value sits in a document that takes the slow path.
    assert encode_result({1: value})[0] == b'{"1":' + expected + b"}"


def test_output_is_compact_utf8_where_awslambdaric_escapes():
    assert THEIRS.marshal_response({"a": "é😀"})[0] == '{"a": "\\u00e9\\ud83d\\ude00"}'
    assert encode_result({"a": "é😀"})[0] == '{"a":"é😀"}'.encode()


def test_list_and_dict_subclasses_are_read_through_list_and_dict():
    """Known difference: simplejson honours an overridden `items()` and a list subclass's `_asdict()`;
    orjson (and so fastric, on both paths) reads the underlying dict and list."""

    class OddMapping(dict):
        def items(self):
            return [("z", 9)]

    class RecordList(list):
        def _asdict(self):
            return {"as": "dict"}

    assert their_encoding(OddMapping(a=1)) == ("ok", ("object", [("z", 9)]))
    assert their_encoding(RecordList([1])) == ("ok", ("object", [("as", "dict")]))
    assert encode_result(OddMapping(a=1))[0] == encode_result({1: OddMapping(a=1)})[0][5:-1] == b'{"a":1}'
    assert encode_result(RecordList([1]))[0] == b"[1]"


# -- bytes results ------------------------------------------------------------------------------------


def test_bytes_result_is_sent_raw():
    payload = b"\x00\xffraw"
    body, content_type = encode_result(payload)
    assert body is payload and content_type == b"application/unknown"
    assert THEIRS.marshal_response(payload) == (payload, "application/unknown")


def test_bytes_subclass_result_is_sent_raw_as_awslambdaric_does():
    payload = type("Blob", (bytes,), {})(b"raw")
    assert encode_result(payload) == (payload, b"application/unknown")
    assert THEIRS.marshal_response(payload)[1] == "application/unknown"


# -- the hot paths ------------------------------------------------------------------------------------


def test_plain_result_is_one_orjson_call(monkeypatch):
    calls = []
    real_dumps = marshal._dumps
    monkeypatch.setattr(marshal, "_dumps", lambda *a, **k: calls.append(a) or real_dumps(*a, **k))
    monkeypatch.setattr(jsonvalues, "encode_like_simplejson", lambda *args: pytest.fail("slow path taken"))
    assert encode_result({"statusCode": 200, "body": "ok", "n": [1, 2.5, None]}) == (
        b'{"statusCode":200,"body":"ok","n":[1,2.5,null]}',
        b"application/json",
    )
    assert len(calls) == 1


def test_decimal_results_stay_on_the_fast_path(monkeypatch):
    monkeypatch.setattr(jsonvalues, "encode_like_simplejson", lambda *args: pytest.fail("slow path taken"))
    assert encode_result({"Items": [{"n": Decimal("1.5")}], "p": Point(1, b"x")})[0] == (
        b'{"Items":[{"n":1.5}],"p":{"x":1,"y":"x"}}'
    )


def test_plain_event_is_one_orjson_call(monkeypatch):
    calls = []
    real_loads = marshal._loads
    monkeypatch.setattr(marshal, "_loads", lambda body: calls.append(body) or real_loads(body))
    monkeypatch.setattr(jsonvalues, "decode_like_simplejson", lambda body: pytest.fail("slow path taken"))
    body = b'{"Records":[{"kinesis":{"sequenceNumber":"49590338271490256608559692538361571095921575989136588898"}}]}'
    assert decode_event(body, "application/json") == json.loads(body)
    assert calls == [body]


def test_the_compatibility_module_is_imported_only_when_orjson_refuses():
    import subprocess

    probe = (
        "import sys; from fastric.runtime.marshal import decode_event, encode_result\n"
        "encode_result(decode_event(b'{\"a\": [1, 2.5, \"x\"]}', 'application/json'))\n"
        "print(sorted({'fastric.runtime.compat.jsonvalues', 'typing', 'decimal'} & set(sys.modules)))\n"
        "encode_result({1: 2})\n"
        "print('fastric.runtime.compat.jsonvalues' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert run.stdout.splitlines() == ["[]", "True"], run.stderr


# -- events -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/json; charset=utf-8", "APPLICATION/JSON", "", "application/octet-stream"],
)
def test_other_content_types_pass_the_body_through(content_type):
    body = b'{"not": "decoded"}'
    assert decode_event(body, content_type) is body
    assert THEIRS.unmarshal_request(body, content_type) is body


def test_missing_content_type_means_json():
    assert decode_event(b'{"a": 1}', None) == {"a": 1}


SAME_EVENT = {
    "object": b'{"a": 1, "b": [true, false, null], "c": "x"}',
    "array": b"[1, 2.5, -0, -0.0, 1E5, 1e-5]",
    "scalar-string": b'"s"',
    "scalar-int": b"7",
    "whitespace": b" \t\r\n {} \n",
    "duplicate-keys": b'{"a": 1, "b": 2, "a": 3}',
    "unicode": '{"é": "€😀"}'.encode(),
    "escapes": b'"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/\\b\\f\\r"',
    "nul-escape": b'"\\u0000"',
    "big-int": b'{"wei": 1000000000000000000000}',
    "big-negative": b"[-9223372036854775809]",
    "negative-19-digits": b"-9999999999999999999",
    "uint64-max": b"18446744073709551615",
    "uint64-max-plus-one": b"18446744073709551616",
    "huge-int": b"[" + b"9" * 4000 + b"]",
    "big-int-after-space": b'{"a":  123456789012345678901234}',
    "big-int-in-array": b"[1,\n123456789012345678901234]",
    "long-digits-in-string": b'{"seq": "123456789012345678901234567890"}',
    "long-fraction": b"0.1234567890123456789012345",
    "big-float": b"123456789012345678901234567890.5",
    "float-overflow": b"[1e400, -1e400]",
    "float-underflow": b"1e-400",
    "lone-surrogate-escape": b'"\\ud800"',
    "reversed-surrogates": b'"\\udc00\\ud800"',
    "high-surrogate-then-other-escape": b'"\\ud800\\u0041"',
    "bom": b'\xef\xbb\xbf{"a": 1}',
    "bom-read-as-latin1": "\u00ef\u00bb\u00bf[1]".encode(),
    "deep-300": b"[" * 300 + b"]" * 300,
    "del-char": b'"\x7f"',
}


@pytest.mark.parametrize("body", SAME_EVENT.values(), ids=SAME_EVENT.keys())
def test_event_has_awslambdarics_value(body):
    theirs = their_decoding(body)
    assert theirs[0] == "ok", theirs
    assert our_decoding(body) == theirs


BAD_EVENT = {
    "empty": b"",
    "space": b" ",
    "nan": b"NaN",
    "infinity": b"Infinity",
    "negative-infinity": b"-Infinity",
    "nested-nan": b'{"a": [1, NaN]}',
    "extra-data": b'{"a": 1} x',
    "extra-data-lines": b'{"a":1}\n\n  x',
    "two-values": b"1 2",
    "leading-zero": b"01",
    "trailing-dot": b"1.",
    "leading-dot": b".5",
    "plus": b"+1",
    "minus": b"-",
    "trailing-comma-array": b"[1,]",
    "trailing-comma-object": b'{"a":1,}',
    "trailing-comma-space": b"[1 , ]",
    "missing-colon": b'{"a" 1}',
    "missing-comma": b"[1 2]",
    "missing-comma-object": b'{"a":1 "b":2}',
    "unquoted-key": b"{1:2}",
    "single-quotes": b"{'a': 1}",
    "open-array": b"[",
    "open-array-space": b"[ ",
    "open-object": b"{",
    "open-object-key": b'{"a"',
    "open-object-colon": b'{"a":',
    "open-object-value": b'{"a":1',
    "open-after-comma": b'{"a":1,',
    "bad-key-after-comma": b'{"a":1, 2}',
    "unterminated": b'"abc',
    "unterminated-escape": b'"\\',
    "control-char": b'"\t"',
    "newline-in-string": b'"a\nb"',
    "bad-escape": b'"\\x"',
    "short-unicode": b'"\\u12"',
    "bad-unicode": b'"\\u12G4"',
    "bad-second-surrogate": b'"\\ud800\\u12"',
    "form-feed": b"\x0c{}",
    "trailing-form-feed": b"{}\x0c",
    "nbsp": b"\xc2\xa0{}",
    "nul": b"\x00",
    "tru": b"tru",
    "nul-literal": b"nul",
    "capital-true": b"True",
    "invalid-utf8": b"\xff",
    "invalid-utf8-late": b'{"a": "\xc3"}',
    "utf8-surrogate": b'"\xed\xa0\x80"',
    "bom-only": b"\xef\xbb\xbf",
    "bom-then-garbage": b"\xef\xbb\xbfx",
    "bom-twice": b"\xef\xbb\xbf\xef\xbb\xbf{}",
    "too-many-digits": b"1" * 5000,
    "big-int-then-error": b"[123456789012345678901234 x]",
    "deep-unclosed": b"[" * 500,
    "deep-then-error": b"[" * 300 + b"1,]" + b"]" * 299,
    "error-on-line-3": b'{\n"a": 1,\n"b" 2}',
    "hex": b"0x10",
    "exponent-only": b"1e",
    "minus-space": b"- 1",
    "comment": b"// x\n{}",
}


@pytest.mark.parametrize("body", BAD_EVENT.values(), ids=BAD_EVENT.keys())
def test_bad_event_has_awslambdarics_message(body):
    theirs = their_decoding(body)
    assert theirs[0] == "error", theirs
    assert our_decoding(body) == theirs


def test_nesting_between_the_recursion_limit_and_orjsons_limit_decodes():
    """Deliberate: orjson reads up to 1024 levels; simplejson stops near the recursion limit (1000) up to 3.11."""
    body = b"[" * 1010 + b"]" * 1010
    assert isinstance(decode_event(body, "application/json"), list)
    if sys.version_info < (3, 12):
        assert their_decoding(body)[0] == "error"


def test_bad_event_message_is_the_documented_one():
    with pytest.raises(FaultError) as caught:
        decode_event(b'{"a": 1} x', "application/json")
    assert caught.value.error_type == "Runtime.UnmarshalError"
    assert caught.value.message == (
        "Unable to unmarshal input: Extra data: line 1 column 10 - line 1 column 11 (char 9 - 10)"
    )


def test_nesting_beyond_the_recursion_limit_is_an_unmarshal_error():
    body = b"[" * 100_000 + b"]" * 100_000
    theirs = their_decoding(body)
    assert theirs == (
        "error",
        "Unable to unmarshal input: maximum recursion depth exceeded while decoding a JSON array from a string",
    )
    assert our_decoding(body) == theirs


def mutations(rng, seeds, count):
    """Random byte-level edits of valid documents: most are invalid, some stay valid."""
    alphabet = b'{}[]:,"\\ \n\t0123456789-+.eEnulltruefalsaxu\x00\x1f\x7f\xc3\xa9\xff'
    for _ in range(count):
        doc = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(doc))
            action = rng.random()
            if action < 0.4 and doc:
                del doc[min(at, len(doc) - 1)]
            elif action < 0.7:
                doc[at:at] = bytes([rng.choice(alphabet)])
            elif doc:
                doc[min(at, len(doc) - 1)] = rng.choice(alphabet)
        yield bytes(doc)


FUZZ_SEEDS = [
    b'{"a": [1, 2.5e-3, -0, true, false, null], "b": {"c": "d\\u00e9\\n"}, "e": []}',
    b'[{"k": "v"}, [], {}, "\\ud83d\\ude00", 123456789012345678901234, -1.5E+10]',
    b'  {"nested": {"deeper": [[["x"]]]}, "s": "a\\"b"}  ',
    b'"just a string with \\t escapes \\u0041"',
    b'{ "k" : [ 1 , 2 ] , "o" : { } , "t" : true }\n',
]


def test_fuzzed_events_match_awslambdaric():
    rng = random.Random(7)
    compared = 0
    for body in mutations(rng, FUZZ_SEEDS, 10000):
        assert our_decoding(body) == their_decoding(body), body
        compared += 1
    assert compared == 10000


def test_syntax_error_finder_agrees_that_valid_documents_are_valid():
    for seed in FUZZ_SEEDS:
        assert find_syntax_error(seed.decode()) is None


# -- the big-integer guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"18446744073709551616", True),
        (b"[1, 18446744073709551616]", True),
        (b'{"a":-9223372036854775809}', True),
        (b"-9999999999999999999", True),
        (b"\t123456789012345678901", True),
        (b"9999999999999999999", False),  # 19 digits, no sign: always within uint64
        (b'{"id": "123456789012345678901234567890"}', False),
        (b"0.123456789012345678901234", False),
        (b'{"a": 1, "b": 1234567890123456789}', False),
        (b"", False),
        (b'{"x": "a-12345678901234567890"}', False),
        (b'{"a" : \n 123456789012345678901}', True),
        (b"[0.1234567890123456789012]", False),
        (b'{"eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898"}', False),
        (b'{"a": "x", "b": [1, 2], "c": -12345678901234567890 }', True),
        (b'{"id": "12345678901234567890123", "n": 5}', False),
    ],
)
def test_big_integer_guard(body, expected):
    assert marshal._may_hold_big_integer(body) is expected


# -- large events: orjson first, then a look for a float an integer could have become -----------------

# What a large event may hold where an integer beyond 64 bits hides, or seems to: each is decoded inside a large
# document (below) and must give simplejson's values, types included.
LARGE_EVENT_VALUES = {
    "big-int": b"18446744073709551616",
    "uint64-max": b"18446744073709551615",
    "int64-min": b"-9223372036854775808",
    "below-int64-min": b"-9223372036854775809",
    "huge-int": b"9" * 400,
    "huge-negative": b"-" + b"9" * 40,
    "big-int-after-space": b"\n  123456789012345678901234",
    "big-int-in-string": b'"123456789012345678901234567890"',
    "big-int-after-colon-in-string": b'"shardId-000000000006:49590338271490256608559692538361571095921575989136588898"',
    "big-int-key": b'{"123456789012345678901234": 1}',
    "big-int-in-key-after-colon": b'{"a:123456789012345678901234": 1}',
    "exponent-int": b"1e19",
    "exponent-big": b"12345678901234567890e0",
    "exponent-upper": b"1E+20",
    "negative-exponent": b"-1.5e19",
    "float-beyond-uint64": b"18446744073709551616.0",
    "float-at-int64-min": b"-9223372036854775808.0",
    "float-huge": b"1e300",
    "float-overflow": b"1e400",
    "float-small": b"0.1234567890123456789012345",
    "deep-big-int": b'{"a": [[{"b": [1, 2, 123456789012345678901234]}]]}',
    "big-int-in-long-array": b"[" + b"1.5, " * 40 + b"123456789012345678901234]",
    "big-int-in-wide-object": b"{" + b"".join(b'"k%d": "v", ' % i for i in range(12)) + b'"n": -123456789012345678901}',
    "floats-beyond-but-no-integer": b"[9.3e18, -9.3e18, 2e19]",
}

# Large documents of different makings: long strings (the look at the result is cheap: SQS, Kinesis batches),
# many small numbers (the look gives way to the byte scan), floats written beyond 2**64 (the look finds them, the
# byte scan decides).
LARGE_EVENT_PADDINGS = {
    "strings": b"[" + b", ".join([b'{"id": "%08d", "body": "' % i + b"x" * 200 + b'"}' for i in range(400)]) + b"]",
    "floats": b"[" + b", ".join(b"%d.25" % i for i in range(20000)) + b"]",
    "big-floats": b"[" + b", ".join(b'{"a": 1e%d, "s": "%s"}' % (19 + i % 200, b"y" * 200) for i in range(1200)) + b"]",
}


def large_event(padding: bytes, value: bytes, shape: str) -> bytes:
    """`value` inside a large document: an object's first or last member, or the last item of one array."""
    if shape == "value-first":
        body = b'{"value": %s, "padding": %s}' % (value, padding)
    elif shape == "value-last":
        body = b'{"padding": %s, "value": %s}' % (padding, value)
    else:  # "one-array": the padding's own items, then the value
        body = padding[:-1] + b", " + value + b"]"
    assert len(body) >= marshal._LARGE_EVENT
    return body


@pytest.mark.parametrize("shape", ["value-first", "value-last", "one-array"])
@pytest.mark.parametrize("padding", LARGE_EVENT_PADDINGS.values(), ids=LARGE_EVENT_PADDINGS.keys())
@pytest.mark.parametrize("value", LARGE_EVENT_VALUES.values(), ids=LARGE_EVENT_VALUES.keys())
def test_large_event_has_awslambdarics_value(value, padding, shape):
    body = large_event(padding, value, shape)
    theirs = their_decoding(body)
    assert theirs[0] == "ok", theirs
    assert our_decoding(body) == theirs
    assert our_decoding(bytearray(body)) == theirs  # as received in place


def test_each_large_padding_takes_the_path_it_is_meant_to():
    """The look at the result decides on long strings; it gives way to the byte scan on many small numbers; it
    finds the floats beyond 64 bits written as floats (and the byte scan then finds no integer)."""

    def look(padding):
        return marshal._holds_float_beyond_integers(marshal._loads(padding), len(padding) >> marshal._BYTES_PER_VALUE)

    assert look(LARGE_EVENT_PADDINGS["strings"]) is False
    assert look(LARGE_EVENT_PADDINGS["floats"]) is None
    assert look(LARGE_EVENT_PADDINGS["big-floats"]) is True
    assert not marshal._may_hold_big_integer(LARGE_EVENT_PADDINGS["big-floats"])


@pytest.mark.parametrize(
    "value, expected",
    [
        (1.5, False),
        (2.0**64, True),
        (-(2.0**63), True),
        (-(2.0**63) + 2048, False),
        (float(2**64 - 2048), False),
        (b"1.7976931348623157e308", True),
        ([1, "a", None, True, [2.5, {"a": -1e300}]], True),
        ({"a": {"b": {"c": [[[[1e19]]]]}}}, False),
        ({"a": {"b": {"c": [[[[2e19]]]]}}}, True),
        ([[1.0] * 50, [2.0**70]], True),
        ({f"k{i}": "v" for i in range(20)} | {"n": 9e18}, False),
        ({f"k{i}": "v" for i in range(20)} | {"n": 9.3e18}, False),
        ({f"k{i}": "v" for i in range(20)} | {"n": 1.9e19}, True),
        ("123456789012345678901234", False),
        ([[[1, 2, 3e19]]], True),
        ([[[1, 2, {"a": 3e19}]]], True),
        ([{"a": 1}, {"b": [1e19, {"c": -1e19}]}, {"d": [{"e": [-1e20]}]}], True),
        ([], False),
        ([[]], False),
        ([{}], False),
        ({}, False),
        (None, False),
    ],
)
def test_the_look_for_a_float_beyond_integers(value, expected):
    value = marshal._loads(value if isinstance(value, bytes) else json.dumps(value))  # orjson's own containers
    assert marshal._holds_float_beyond_integers(value, 10**6) is expected


@pytest.mark.parametrize(
    "body, cost",
    [
        (b"[" + b", ".join([b"[1.5, 2.5]"] * 100) + b"]", 1 + 100 + 200 + 200),  # the floats looked at twice
        (b"[" + b", ".join([b"[1, 2]"] * 100) + b"]", 1 + 100 + 200),
        (b"[[" + b", ".join([b"1"] * 300) + b"]]", 1 + 1 + 300),  # one array: its items
        (b"[" + b", ".join([b'{"a": 1, "b": [2]}'] * 100) + b"]", 1 + 100 + 200 + 100),  # records: their values
        (b'{"a": [1, {"b": 2.5}], "c": 3}', 1 + 2 + 2 + 1 + 1),  # a mixed level: get_referents
    ],
)
def test_the_look_gives_way_beyond_its_budget(body, cost):
    event = marshal._loads(body)
    assert marshal._holds_float_beyond_integers(event, cost - 2) is None
    assert marshal._holds_float_beyond_integers(event, cost) is False


# -- on the wire (fastric as a subprocess against the recording Runtime API; awslambdaric alongside) ------

WIRE_HANDLER = """
def handler(event, context):
    if isinstance(event, bytes):
        return {"received": type(event).__name__, "text": event.decode("utf-8")}
    if event["op"] == "bytes":
        return b"\\x00\\xffraw"
    if event["op"] == "set":
        return {"a": {1}}
    return {"echo": event}
"""


@pytest.fixture
def wire_app(tmp_path):
    (tmp_path / "app.py").write_text(WIRE_HANDLER)
    return str(tmp_path)


def run_wire(client, cwd, invocations):
    from runtime_api import RuntimeAPIServer, run_client

    with RuntimeAPIServer() as server:
        ids = [server.add_invocation(**invocation) for invocation in invocations]
        run = run_client(client, "app.handler", server, cwd=cwd)
    posts = {r.path.split("/")[-2]: r for r in server.requests if r.method == "POST"}
    return run, [posts.get(request_id) for request_id in ids]


@pytest.mark.parametrize("client", ["awslambdaric", "fastric"])
def test_wire_bytes_result_is_application_unknown(client, wire_app):
    _, (post,) = run_wire(client, wire_app, [{"event": {"op": "bytes"}}])
    assert post.path.endswith("/response")
    assert post.header("Content-Type") == "application/unknown"
    assert post.body == b"\x00\xffraw"


@pytest.mark.parametrize("client", ["awslambdaric", "fastric"])
def test_wire_non_json_event_reaches_the_handler_as_bytes(client, wire_app):
    _, (post,) = run_wire(client, wire_app, [{"body": b"plain \xc3\xa9", "content_type": "text/plain"}])
    assert post.path.endswith("/response")
    assert json.loads(post.body) == {"received": "bytes", "text": "plain é"}


@pytest.mark.parametrize("client", ["awslambdaric", "fastric"])
def test_wire_unserialisable_result_posts_marshal_error_and_the_loop_goes_on(client, wire_app):
    _, (failed, next_one) = run_wire(client, wire_app, [{"event": {"op": "set"}}, {"event": {"op": "echo"}}])
    assert failed.path.endswith("/error")
    assert failed.json() == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": failed.path.split("/")[-2],
        "stackTrace": [],
    }
    assert next_one.path.endswith("/response")
    assert json.loads(next_one.body) == {"echo": {"op": "echo"}}
