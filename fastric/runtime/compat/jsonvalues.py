"""simplejson-compatible decoding and encoding, for the events and results orjson refuses (a cold path).

`fastric.runtime.marshal` imports this module on first use, only after orjson refused a document or a value:
integers beyond 64 bits, lone surrogates, dict keys that are not `str`, nesting beyond orjson's limit, circular
references, invalid JSON. The answers are awslambdaric 4.2.2's (simplejson): the same decoded values, the same JSON
value for every result it can serialize, the same error texts.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
import uuid
from enum import Enum

import orjson

from fastric.runtime.compat.jsonerrors import find_syntax_error

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

_dumps = orjson.dumps
_Fragment = orjson.Fragment


# -- decoding -----------------------------------------------------------------------------------------


class _RejectedConstant(ValueError):
    """NaN / Infinity / -Infinity literals, which simplejson refuses by default."""


def _reject_constant(name: str) -> Any:
    raise _RejectedConstant(name)


# json's C scanner, with simplejson's defaults: exact big ints, lone surrogates kept, constants refused.
_STDLIB_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_like_simplejson(body: bytes | bytearray) -> Any:
    """`simplejson.loads(body)`: the value, or ValueError with simplejson's message."""
    try:
        text = str(body, "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(str(exc)) from None
    start = _after_byte_order_mark(text)
    try:
        return _STDLIB_DECODER.decode(text[start:] if start else text)
    except RecursionError as exc:
        # Compatibility shim (decoder recursion): json's C scanner stops at the recursion limit as simplejson's
        # does, naming the input as it does not. Needed by
        # tests/test_marshal.py::test_nesting_beyond_the_recursion_limit_is_an_unmarshal_error.
        message = str(exc).replace(" from a unicode string", " from a string")
    except (json.JSONDecodeError, _RejectedConstant) as exc:
        message = find_syntax_error(text, start) or str(exc)
    except ValueError as exc:  # e.g. more digits than sys.get_int_max_str_digits() allows
        message = str(exc)
    raise ValueError(message) from None


def _after_byte_order_mark(text: str) -> int:
    """Where simplejson starts reading: past a leading U+FEFF, or past its three UTF-8 bytes read as latin-1."""
    if text[:1] == "\ufeff":
        return 1
    if text[:3] == "\xef\xbb\xbf":
        return 3
    return 0


# -- encoding -----------------------------------------------------------------------------------------

TOO_DEEP = "maximum recursion depth exceeded while encoding a JSON object"


def encode_like_simplejson(value: Any, default: Callable[[Any], Any]) -> bytes:
    """The JSON bytes (orjson's form) of the value `simplejson.dumps(value)` writes, or what simplejson raises.

    `default` is the orjson `default` hook the hot path uses (what simplejson makes of Decimal, namedtuples, ...).
    """
    # Compatibility shim (encoder recursion limit): simplejson nests as deep as the recursion limit allows, minus
    # the frames already on the stack, then raises RecursionError. The walk below takes up to 4 frames a level,
    # so it gets the room for that while it runs, and counts the depth simplejson would allow itself. Needed by
    # tests/test_marshal.py::test_nesting_beyond_the_recursion_limit_is_a_marshal_error and
    # ::test_deep_structures_beyond_orjsons_nesting_limit_are_complete.
    limit = sys.getrecursionlimit()
    stack_depth = _stack_depth()
    sys.setrecursionlimit(stack_depth + 4 * limit + 100)
    try:
        return _dumps(_compatible(value, default, limit - stack_depth))
    except RecursionError:
        raise RecursionError(TOO_DEEP) from None
    finally:
        sys.setrecursionlimit(limit)


def _stack_depth() -> int:
    """The number of frames on the stack above this function's caller, the caller included."""
    frame: FrameType | None = sys._getframe(1)
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


# orjson serializes integers in [-2**63, 2**64) and nests at most 254 levels deep.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_NESTING_CHUNK = 128
_WHOLE_MIN = 8  # smaller containers are quicker to walk than to hand to orjson separately
# The types orjson writes in a standard form that simplejson refuses (orjson itself imports their modules).
_ORJSON_NATIVE = (_Fragment, datetime.datetime, datetime.date, datetime.time, uuid.UUID)


def _compatible(value: Any, default: Callable[[Any], Any], max_depth: int) -> Any:
    """A copy of `value` that one `orjson.dumps` call (no options) turns into the JSON value simplejson gives.

    Runs only when orjson refused `value` itself: dict keys that are not exact `str`, integers beyond 64 bits,
    strings with lone surrogates, nesting beyond orjson's limit, circular references. Containers inside are
    first tried whole with orjson (so only the branches holding the problem are walked in Python). Raises what
    simplejson raises (TypeError, ValueError, UnicodeDecodeError), with its message."""
    active: set[int] = set()

    def enter(o: Any, depth: int) -> None:
        if depth > max_depth:
            raise RecursionError(TOO_DEEP)
        if id(o) in active:
            raise ValueError("Circular reference detected")
        active.add(id(o))

    def whole(o: Any) -> Any:
        """`o` serialized by orjson in one go, or None if orjson refuses it for a reason to walk into."""
        try:
            return _Fragment(_dumps(o, default=default))
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
        if isinstance(o, _ORJSON_NATIVE):
            return o
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return obj(o, [(f.name, getattr(o, f.name)) for f in dataclasses.fields(o)], depth)
        enter(o, depth)  # like simplejson, refuse a `default` conversion that leads back to the object itself
        out = convert(default(o), depth)
        active.discard(id(o))
        return out

    return convert(value, 1)


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
