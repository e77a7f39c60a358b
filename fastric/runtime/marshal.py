"""Event decoding and result encoding: orjson on the hot path, awslambdaric's JSON values and messages otherwise.

Results: one `orjson.dumps` call (its `default` hook gives Decimal, nested bytes, namedtuples and float
subclasses simplejson's values). Events: one `bytes.translate` + `find` guard (orjson would silently decode
integers beyond 64 bits as floats), then one `orjson.loads`. Only when orjson refuses a value or a document
does Python code run, reproducing awslambdaric 4.2.2 (simplejson): the same decoded values and error texts,
the same JSON value for every result it can serialize. Deliberate differences are listed in DESIGN.md.
"""

from __future__ import annotations

import gc
import json
import sys
from enum import Enum
from typing import Any

import orjson

from fastric.runtime.compat.jsonerrors import find_syntax_error
from fastric.runtime.faults import FaultError

JSON = b"application/json"
UNKNOWN = b"application/unknown"

_loads = orjson.loads
_dumps = orjson.dumps
_Fragment = orjson.Fragment
_DecodeError = orjson.JSONDecodeError


# -- decoding -----------------------------------------------------------------------------------------


def decode_event(body: bytes, content_type: str | None) -> Any:
    """The event the handler receives: JSON-decoded for `application/json` (or no content type), else the bytes."""
    if content_type is not None and content_type != "application/json":
        return body
    if not _may_hold_big_integer(body):
        if len(body) < _LARGE_EVENT:
            try:
                return _loads(body)
            except _DecodeError:
                pass
        else:
            # orjson builds no reference cycles: the collections its allocations would trigger are wasted
            paused = gc.isenabled()
            gc.disable()
            try:
                return _loads(body)
            except _DecodeError:
                pass
            finally:
                if paused:
                    gc.enable()
    return _decode_like_simplejson(body)


_LARGE_EVENT = 1 << 16


# Digits become "0", what may end a number token becomes ",", anything else "q": a number token of 19 or more
# digits shows up as 19 zeros and a comma, while digit runs inside strings (ids, Kinesis sequence numbers)
# end in a quote and do not.
_NUMBER_MARKS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x2C if c in b",]} \t\r\n" else 0x71 for c in range(256))
_NINETEEN_DIGITS = b"0" * 19
_LONG_NUMBER = _NINETEEN_DIGITS + b","
_WHITESPACE_BYTES = frozenset(b" \t\r\n")


def _may_hold_big_integer(body: bytes) -> bool:
    """Whether `body` may hold an integer outside orjson's range [-2**63, 2**64), which orjson would decode as a
    float. Conservative: a false positive only costs a slower, still exact, decode."""
    marks = body.translate(_NUMBER_MARKS)
    found = marks.find(_LONG_NUMBER)
    while found >= 0:
        if _starts_big_integer(body, marks, found + 19):
            return True
        found = marks.find(_LONG_NUMBER, found + 20)
    return marks.endswith(_NINETEEN_DIGITS) and _starts_big_integer(body, marks, len(marks))


def _starts_big_integer(body: bytes, marks: bytes, end: int) -> bool:
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


class _RejectedConstant(ValueError):
    """NaN / Infinity / -Infinity literals, which simplejson refuses by default."""


def _reject_constant(name: str) -> Any:
    raise _RejectedConstant(name)


# json's C scanner, with simplejson's defaults: exact big ints, lone surrogates kept, constants refused.
_STDLIB_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode_like_simplejson(body: bytes) -> Any:
    """`simplejson.loads(body)` for what orjson refuses: the value, or the UnmarshalError with its message."""
    try:
        text = str(body, "utf-8")
    except UnicodeDecodeError as exc:
        raise _unmarshal_error(str(exc)) from None
    start = _after_byte_order_mark(text)
    try:
        return _STDLIB_DECODER.decode(text[start:] if start else text)
    except RecursionError as exc:
        message = str(exc).replace(" from a unicode string", " from a string")
    except (json.JSONDecodeError, _RejectedConstant) as exc:
        message = find_syntax_error(text, start) or str(exc)
    except ValueError as exc:  # e.g. more digits than sys.get_int_max_str_digits() allows
        message = str(exc)
    raise _unmarshal_error(message) from None


def _unmarshal_error(message: str) -> FaultError:
    return FaultError("Runtime.UnmarshalError", f"Unable to unmarshal input: {message}")


def _after_byte_order_mark(text: str) -> int:
    """Where simplejson starts reading: past a leading U+FEFF, or past its three UTF-8 bytes read as latin-1."""
    if text[:1] == "\ufeff":
        return 1
    if text[:3] == "\xef\xbb\xbf":
        return 3
    return 0


# -- encoding -----------------------------------------------------------------------------------------


def encode_result(result: Any) -> tuple[bytes, bytes]:
    """The response body and its content type for a handler's return value."""
    if isinstance(result, bytes):
        return result, UNKNOWN
    try:
        return _dumps(result, default=_convert_unknown), JSON
    except TypeError as exc:  # orjson.JSONEncodeError
        if exc.__cause__ is not None:  # raised by _convert_unknown: the value awslambdaric also refuses
            raise _marshal_error(exc.__cause__) from None
    # simplejson nests as deep as the recursion limit allows, minus the frames already on the stack; the
    # conversion below takes up to 4 frames a level, so it gets the room for that while it runs.
    limit = sys.getrecursionlimit()
    stack_depth = _stack_depth()
    sys.setrecursionlimit(stack_depth + 4 * limit + 100)
    try:
        return _dumps(_compatible(result, limit - stack_depth)), JSON
    except RecursionError:
        raise FaultError("Runtime.MarshalError", f"Unable to marshal response: {_TOO_DEEP}") from None
    except Exception as exc:  # what simplejson raises for the same value, with its message
        raise _marshal_error(exc) from None
    finally:
        sys.setrecursionlimit(limit)


_TOO_DEEP = "maximum recursion depth exceeded while encoding a JSON object"


def _stack_depth() -> int:
    frame, depth = sys._getframe(1), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _marshal_error(exc: BaseException) -> FaultError:
    return FaultError("Runtime.MarshalError", f"Unable to marshal response: {exc}")


def _convert_unknown(value: Any) -> Any:
    """orjson's `default`: what simplejson makes of a type orjson does not serialize itself, or TypeError."""
    decimal = sys.modules.get("decimal")  # no Decimal can exist before the module is imported
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


# orjson serializes integers in [-2**63, 2**64) and nests at most 254 levels deep.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_NESTING_CHUNK = 128
_WHOLE_MIN = 8  # smaller containers are quicker to walk than to hand to orjson separately


def _compatible(value: Any, max_depth: int) -> Any:
    """A copy of `value` that one `orjson.dumps` call (no options) turns into the JSON value simplejson gives.

    Runs only when orjson refused `value` itself: dict keys that are not exact `str`, integers beyond 64 bits,
    strings with lone surrogates, nesting beyond orjson's limit, circular references. Containers inside are
    first tried whole with orjson (so only the branches holding the problem are walked in Python). Raises what
    simplejson raises (TypeError, ValueError, UnicodeDecodeError), with its message."""
    active: set[int] = set()
    orjson_native = _orjson_native_types()

    def enter(o: Any, depth: int) -> None:
        if depth > max_depth:
            raise RecursionError(_TOO_DEEP)
        if id(o) in active:
            raise ValueError("Circular reference detected")
        active.add(id(o))

    def whole(o: Any) -> Any:
        """`o` serialized by orjson in one go, or None if orjson refuses it for a reason to walk into."""
        try:
            return _Fragment(_dumps(o, default=_convert_unknown))
        except TypeError as exc:
            if exc.__cause__ is not None:  # the first value in `o` that simplejson refuses too
                raise exc.__cause__ from None
            return None

    def array(o: Any, depth: int) -> Any:
        enter(o, depth)
        depth += 1
        out = [convert(item, depth) for item in o]
        active.discard(id(o))
        return _Fragment(_dumps(out)) if depth % _NESTING_CHUNK == 1 else out

    def obj(o: Any, items: Any, depth: int) -> Any:
        enter(o, depth)
        depth += 1
        out = {}
        for k, v in items:  # colliding keys end as parsers read simplejson's duplicates: first place, last value
            out[k if k.__class__ is str else _key(k)] = convert(v, depth)
        active.discard(id(o))
        if not "".join(out).isascii() and any(_has_lone_surrogate(k) for k in out):
            # orjson refuses such keys: write this object here
            return _Fragment(b"{" + b",".join(_string_json(k) + b":" + _dumps(v) for k, v in out.items()) + b"}")
        return _Fragment(_dumps(out)) if depth % _NESTING_CHUNK == 1 else out

    def convert(o: Any, depth: int) -> Any:
        # simplejson's order of checks, with orjson's native types (enum, dataclass, datetime, UUID) before its
        # `default`; list and dict subclasses are read as orjson reads them, through the list and dict.
        cls = o.__class__
        if cls is str:
            return o if o.isascii() or not _has_lone_surrogate(o) else _Fragment(_string_json(o))
        if cls is int:
            return o if _INT_MIN <= o <= _INT_MAX else _Fragment(int.__repr__(o))
        if cls is float or o is None or o is True or o is False:
            return o
        if cls is dict:
            return (depth > 1 and len(o) >= _WHOLE_MIN and whole(o)) or obj(o, o.items(), depth)
        if cls is list or cls is tuple:
            return (depth > 1 and len(o) >= _WHOLE_MIN and whole(o)) or array(o, depth)
        if isinstance(o, str):
            return convert(str.__str__(o), depth) if _has_lone_surrogate(o) else o
        if isinstance(o, int):
            return o if _INT_MIN <= o <= _INT_MAX else _Fragment(int.__repr__(o))
        if isinstance(o, float):
            return float.__float__(o)
        if isinstance(o, list):
            return (depth > 1 and len(o) >= _WHOLE_MIN and whole(o)) or array(o, depth)
        if isinstance(o, dict):
            return (depth > 1 and len(o) >= _WHOLE_MIN and whole(o)) or obj(o, dict.items(o), depth)
        if isinstance(o, Enum):
            return convert(o.value, depth)
        if isinstance(o, orjson_native):
            return o
        if hasattr(cls, "__dataclass_fields__") and not isinstance(o, type):
            fields = sys.modules["dataclasses"].fields(o)
            return obj(o, [(f.name, getattr(o, f.name)) for f in fields], depth)
        enter(o, depth)  # like simplejson, refuse a `default` conversion that leads back to the object itself
        out = convert(_convert_unknown(o), depth)
        active.discard(id(o))
        return out

    return convert(value, 1)


def _orjson_native_types() -> tuple[type, ...]:
    """The types orjson writes in a standard form that simplejson refuses (datetime, date, time, UUID), among
    the modules imported so far (no instance of a type can exist before its module is imported)."""
    native: list[type] = [_Fragment]
    if "datetime" in sys.modules:
        datetime = sys.modules["datetime"]
        native += [datetime.datetime, datetime.date, datetime.time]
    if "uuid" in sys.modules:
        native.append(sys.modules["uuid"].UUID)
    return tuple(native)


def _has_lone_surrogate(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _string_json(s: str) -> bytes:
    """A JSON string as UTF-8; lone surrogates become `\\uXXXX` escapes, as awslambdaric's default writes them."""
    if not _has_lone_surrogate(s):
        return _dumps(s)
    return json.dumps(s, ensure_ascii=False).encode("utf-8", "backslashreplace")


_INFINITY = float("inf")


def _key(key: Any) -> str:
    """A dict key as simplejson writes it, or TypeError with its message."""
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bytes):
        return key.decode("utf-8")
    if isinstance(key, float):
        if key != key:
            return "NaN"
        if key == _INFINITY:
            return "Infinity"
        if key == -_INFINITY:
            return "-Infinity"
        return float.__repr__(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
