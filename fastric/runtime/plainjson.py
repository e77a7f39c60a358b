"""JSON for the first invocation, with the standard library's C scanner and encoder (`_json`) alone.

Start-up serves the first invocation before orjson is imported (`first.py`); this module gives it exactly the
values and bytes the hot path (`marshal.py`) would, or says it cannot (`NOT_PLAIN` / None), and the first
invocation then uses `marshal.py` itself. Plain means:

- events: JSON text in UTF-8 that `json`'s scanner reads without a NaN/Infinity literal, beyond the recursion
  limit or beyond the integer digit limit. orjson reads every such document to the same values (floats are
  correctly rounded by both, integers beyond 64 bits are exact here as they are in `marshal.py`), and what
  orjson refuses goes to `compat/jsonvalues.py`, which is `json`'s scanner too;
- results: None, bool, str, int within [-2**63, 2**64), finite floats, and lists, tuples and str-keyed dicts of
  them (exact types only), nested at most `MAX_DEPTH` deep. `_json`'s encoder writes them byte for byte as orjson
  does (compact, UTF-8, the same string escapes), floats included but for the exponents `e-05` … `e-09`, which
  orjson writes without the zero: such a float is not plain.

`json` itself is not imported: it imports `re`, which costs milliseconds at start-up.
"""

from __future__ import annotations

from fastric.runtime.core import Codec

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from typing import Any

JSON = b"application/json"
UNKNOWN = b"application/unknown"
NOT_PLAIN = object()  # decode_plain's answer for an event only marshal.py can decode as the hot path does
MAX_DEPTH = 200  # orjson nests 254 levels at most; deeper results are left to marshal.py
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_WHITESPACE = " \t\n\r"


class _Constant(ValueError):
    """A NaN / Infinity / -Infinity literal: not plain (orjson and simplejson refuse them)."""


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


class _ScannerContext:
    """What `_json.make_scanner` reads: `json.JSONDecoder()`'s defaults, constants refused."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_refuse_constant)


def _refuse_value(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not plain")  # never reached: `_plain` checks every value first


_scan: Any = None
_encode: Any = None
try:
    import _json

    _scan = _json.make_scanner(_ScannerContext())  # type: ignore[arg-type]  # the context is duck-typed
    # json.dumps(separators=(",", ":"), ensure_ascii=False) without `re`; no circular check (the walk bounds depth)
    _encode = _json.make_encoder(None, _refuse_value, _json.encode_basestring, None, ":", ",", False, False, True)
except (ImportError, AttributeError, TypeError):  # a Python without the accelerator: nothing is plain
    pass


def decode_plain(body: bytes | bytearray, content_type: str | None) -> Any:
    """The event as `marshal.decode_event` gives it, or NOT_PLAIN."""
    if content_type is not None and content_type != "application/json":
        return body if body.__class__ is bytes else bytes(body)
    if _scan is None:
        return NOT_PLAIN
    try:
        text = body.decode("utf-8")
        start = 0 if text[:1] not in _WHITESPACE else len(text) - len(text.lstrip(_WHITESPACE))
        value, end = _scan(text, start)
    except (UnicodeDecodeError, StopIteration, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return NOT_PLAIN
    except SystemError:  # 3.10/3.11: the scanner's error path needs `json.decoder` in sys.modules, not imported here
        return NOT_PLAIN
    if end != len(text) and text[end:].strip(_WHITESPACE):
        return NOT_PLAIN
    return value


def encode_plain(result: Any) -> tuple[bytes, bytes] | None:
    """The response body and content type `marshal.encode_result` gives for `result`, or None."""
    if result is None:
        return b"null", JSON
    if result.__class__ is bytes:
        return result, UNKNOWN
    if _encode is None or not _plain(result, 0):
        return None
    try:
        return "".join(_encode(result, 0)).encode("utf-8"), JSON
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):  # a lone surrogate, say
        return None


def _plain(value: Any, depth: int) -> bool:
    cls = value.__class__
    if cls is str or cls is bool or value is None:
        return True
    if cls is int:
        return _INT_MIN <= value <= _INT_MAX
    if cls is float:
        return value - value == 0.0 and "e-0" not in float.__repr__(value)  # finite; orjson's exponent form
    if depth >= MAX_DEPTH:
        return False
    depth += 1
    if cls is dict:
        for key, item in value.items():
            if key.__class__ is not str or not _plain(item, depth):
                return False
        return True
    if cls is list or cls is tuple:
        for item in value:
            if not _plain(item, depth):
                return False
        return True
    return False


# -- the first invocation's codec ------------------------------------------------------------------------------


def decode_first(body: bytes | bytearray, content_type: str | None) -> Any:
    """`marshal.decode_event`'s value, from the standard library where it gives the same, else from marshal."""
    event = decode_plain(body, content_type)
    if event is NOT_PLAIN:
        from fastric.runtime.marshal import decode_event

        return decode_event(body, content_type)
    return event


def encode_first(result: Any) -> tuple[bytes, bytes]:
    """`marshal.encode_result`'s bytes, from the standard library where it gives the same, else from marshal."""
    encoded = encode_plain(result)
    if encoded is None:
        from fastric.runtime.marshal import encode_result

        return encode_result(result)
    return encoded


FIRST = Codec(decode_first, encode_first)  # a plain `def` handler's first invocation (`core.make_answer`)
