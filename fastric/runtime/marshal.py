"""Event decoding and result encoding on the hot path: one orjson call each.

Results: one `orjson.dumps` call (its `default` hook gives Decimal, nested bytes, namedtuples and float
subclasses simplejson's values). Events: one `orjson.loads`, kept exact where orjson would silently decode an
integer beyond 64 bits as a float: a `bytes.translate` + `find` scan ahead of a small event; behind a large one, a
look at the result for a float such an integer could have become (the scan when the look would cost more). Only
when orjson refuses a value or a document does `fastric.runtime.compat.jsonvalues` (imported on first use)
reproduce awslambdaric 4.2.2's simplejson: the same decoded values and error texts, the same JSON value for every
result it can serialize. Deliberate differences are listed in the README.
"""

from __future__ import annotations

import gc
import sys
from itertools import chain, compress, repeat
from operator import is_

import orjson

from fastric.runtime.core import Codec
from fastric.runtime.faults import FaultError

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from typing import Any

JSON = b"application/json"
UNKNOWN = b"application/unknown"

_loads = orjson.loads
_dumps = orjson.dumps
_Fragment = orjson.Fragment
_DecodeError = orjson.JSONDecodeError


# -- decoding -----------------------------------------------------------------------------------------


def decode_event(body: bytes | bytearray, content_type: str | None) -> Any:
    """The event the handler receives: JSON-decoded for `application/json` (or no content type), else the bytes.

    `body` is a bytearray when it was received in place (large events)."""
    if content_type is not None and content_type != "application/json":
        return body if body.__class__ is bytes else bytes(body)
    if len(body) < _LARGE_EVENT:
        marks = body.translate(_NUMBER_MARKS)  # `_may_hold_big_integer`'s first look, inline: no 19-digit run
        if (marks.find(_LONG_NUMBER) < 0 and not marks.endswith(_NINETEEN_DIGITS)) or not _may_hold_big_integer(body):
            try:
                return _loads(body)
            except _DecodeError:
                pass
        return _decode_cold(body)
    # A large event is decoded first and checked after: an integer beyond 64 bits becomes a float outside
    # [-2**63, 2**64) in orjson's result. Looking for such a float in the result costs less than scanning every
    # byte when the event is made of long strings (SQS, Kinesis batches); when it is made of many small values
    # (many numbers, deep DynamoDB images) the look is cut short and the byte scan decides. Either way, only an
    # event the byte scan finds an integer in gets the exact decoding.
    # orjson builds no reference cycles: the collections its allocations would trigger are wasted.
    paused = gc.isenabled()
    gc.disable()
    try:
        event = _loads(body)
    except _DecodeError:
        return _decode_cold(body)
    finally:
        if paused:
            gc.enable()
    if _holds_float_beyond_integers(event, len(body) >> _BYTES_PER_VALUE) is False or not _may_hold_big_integer(body):
        return event
    return _decode_cold(body)


_LARGE_EVENT = 1 << 16
_INT_LOW, _INT_HIGH = -(2**63), 2**64  # orjson's integers; beyond them it decodes an integer as a float
# Looking at a value costs about as much as scanning 2**5 bytes: the look at a result gives way to the byte scan
# beyond one value per 32 bytes of the body.
_BYTES_PER_VALUE = 5
_get_referents = gc.get_referents
_DICTS = {dict}
_LISTS = {list}
_CONTAINERS = frozenset((dict, list))
_dict_values = dict.values
_values_of = chain.from_iterable


def _holds_float_beyond_integers(
    event: Any, budget: int, _type: Any = type, _map: Any = map, _set: Any = set, _float: Any = float
) -> bool | None:
    """Whether orjson's result holds a float outside [-2**63, 2**64), which an integer token may have become;
    None when finding out would look at more than `budget` values.

    The result is walked level by level at C speed: `gc.get_referents` of a level's values is the next level (the
    items of its lists and the values of its dicts, with their keys for some dicts: the containers' `tp_traverse`;
    strings and numbers have none), and the types of a level are collected at once. Only a level that holds floats
    gets a second pass, over its floats. (Builtins as default arguments: local lookups.)"""
    level = [event]
    while True:
        types = _set(_map(_type, level))
        if _float in types:
            budget -= len(level)  # the float pass costs about as much as the level's own look
            if budget < 0:
                return None
            floats = list(compress(level, _map(is_, _map(_type, level), repeat(_float))))
            if min(floats) <= _INT_LOW or max(floats) >= _INT_HIGH:
                return True
        if types == _DICTS:  # a batch's records: their values (get_referents gives a wide dict's keys as well)
            budget -= sum(_map(len, level))
            if budget < 0:
                return None
            level = list(_values_of(_map(_dict_values, level)))
        elif _CONTAINERS.isdisjoint(types):
            return False
        elif types == _LISTS and len(level) == 1:  # one array (a batch's records): its items as they are
            level = level[0]
            budget -= len(level)
            if budget < 0:
                return None
        else:
            level = _get_referents(*level)
            budget -= len(level)
            if budget < 0:
                return None


# Digits become "0", what may end a number token becomes ",", anything else "q": a number token of 19 or more
# digits shows up as 19 zeros and a comma, while digit runs inside strings (ids, Kinesis sequence numbers)
# end in a quote and do not.
_NUMBER_MARKS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x2C if c in b",]} \t\r\n" else 0x71 for c in range(256))
_NINETEEN_DIGITS = b"0" * 19
_LONG_NUMBER = _NINETEEN_DIGITS + b","
_WHITESPACE_BYTES = frozenset(b" \t\r\n")


def _may_hold_big_integer(body: bytes | bytearray) -> bool:
    """Whether `body` may hold an integer outside orjson's range [-2**63, 2**64), which orjson would decode as a
    float. Conservative: a false positive only costs a slower, still exact, decode."""
    marks = body.translate(_NUMBER_MARKS)
    found = marks.find(_LONG_NUMBER)
    while found >= 0:
        if _starts_big_integer(body, marks, found + 19):
            return True
        found = marks.find(_LONG_NUMBER, found + 20)
    return marks.endswith(_NINETEEN_DIGITS) and _starts_big_integer(body, marks, len(marks))


def _starts_big_integer(body: bytes | bytearray, marks: bytes | bytearray, end: int) -> bool:
    """Whether the digit run ending at `end` is an integer token beyond 64 bits (or may be)."""
    start = max(marks.rfind(b"q", 0, end), marks.rfind(b",", 0, end)) + 1
    lead = start - 1
    negative = lead >= 0 and body[lead] == 0x2D  # "-"
    if not negative and end - start < 20:  # 19 digits without a sign always fit below 2**64
        return False
    if negative:
        lead -= 1
    while lead >= 0 and body[lead] in _WHITESPACE_BYTES:
        lead -= 1
    if lead < 0 or body[lead] in b",[":
        return True
    # After a colon only if the colon ends a key: `"key": 1` — not `"shardId-000006:4959..."` inside a string.
    return body[lead] == 0x3A and lead > 0 and body[lead - 1] in b'" \t\r\n'


def _decode_cold(body: bytes | bytearray) -> Any:
    """What orjson refused (or may misread): simplejson's value, or the UnmarshalError with its message."""
    from fastric.runtime.compat import jsonvalues

    try:
        return jsonvalues.decode_like_simplejson(body)
    except ValueError as exc:
        raise FaultError("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}") from None


# -- encoding -----------------------------------------------------------------------------------------


def encode_result(result: Any) -> tuple[bytes, bytes]:
    """The response body and its content type for a handler's return value."""
    if result is None:  # what most handlers return
        return b"null", JSON
    if isinstance(result, bytes):
        return result, UNKNOWN
    try:
        return _dumps(result, default=_convert_unknown), JSON
    except TypeError as exc:  # orjson.JSONEncodeError
        if exc.__cause__ is not None:  # raised by _convert_unknown: the value awslambdaric also refuses
            raise _marshal_error(exc.__cause__) from None
    return _encode_cold(result), JSON


def _encode_cold(result: Any) -> bytes:
    """What orjson refused within its own limits: simplejson's JSON value, or the MarshalError with its message."""
    from fastric.runtime.compat import jsonvalues

    try:
        return jsonvalues.encode_like_simplejson(result, _convert_unknown)
    except Exception as exc:  # what simplejson raises for the same value, with its message
        raise _marshal_error(exc) from None


def _marshal_error(exc: BaseException) -> FaultError:
    return FaultError("Runtime.MarshalError", f"Unable to marshal response: {exc}")


def _convert_unknown(value: Any) -> Any:
    """orjson's `default`: what simplejson makes of a type orjson does not serialize itself, or TypeError."""
    # Compatibility shim (sys.modules probing): no Decimal can exist before `decimal` is imported, so the check
    # never imports it (milliseconds of start-up). Needed by
    # tests/test_marshal.py::test_the_compatibility_module_is_imported_only_when_orjson_refuses.
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        return _Fragment(str(value)) if value.is_finite() else None
    as_dict = getattr(value, "_asdict", None)  # namedtuples, and anything shaped like one
    if as_dict is not None and callable(as_dict):
        mapping = as_dict()
        if not isinstance(mapping, dict):
            raise TypeError(f"_asdict() must return a dict, not {type(mapping).__name__}")
        return mapping
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, float):
        return float.__float__(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


HOT = Codec(decode_event, encode_result)  # the hot path's codec (`core.make_answer`)
