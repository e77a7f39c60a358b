"""simplejson's syntax error messages, for the events orjson refuses (a cold path: imported on first use).

`find_syntax_error(text)` scans a JSON document as simplejson 4.x does and returns the message simplejson's
`loads` would raise (e.g. the range form `Extra data: line 1 column 9 - line 1 column 10 (char 8 - 9)`), or None
when the document is syntactically valid.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_PLAIN_CHARS = re.compile(r'[^"\\\x00-\x1f]*')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?").match
_HEX4 = re.compile(r"[0-9a-fA-F]{4}").fullmatch


def _past(pattern: re.Pattern[str], s: str, i: int) -> int:
    """The index just past the run of `pattern` at `s[i]` (a `*` pattern: the run may be empty)."""
    match = pattern.match(s, i)
    assert match is not None  # a pattern that matches the empty string always matches
    return match.end()


_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_LITERALS = {"n": "null", "t": "true", "f": "false"}


class _SyntaxError(Exception):
    def __init__(self, message: str, pos: int, end: int | None = None):
        super().__init__(message)
        self.message, self.pos, self.end = message, pos, end


def find_syntax_error(text: str, start: int = 0) -> str | None:
    """simplejson's message for the first syntax error in `text` read from `start`, or None if there is none.

    Mirrors simplejson 4.x's scanner (with NaN/Infinity refused) walking the same path, iteratively so
    that deep nesting does not exhaust the Python stack."""
    try:
        end = _past(_WHITESPACE, text, _scan_value(text, _past(_WHITESPACE, text, start)))
        if end != len(text):
            raise _SyntaxError("Extra data", end, len(text))
    except _SyntaxError as error:
        return _describe(text, error)
    return None


def _scan_value(s: str, i: int) -> int:
    """The index just past the JSON value at `s[i]` (no leading whitespace), or `_SyntaxError`."""
    size = len(s)
    open_containers: list[str] = []
    while True:
        char = s[i : i + 1]
        if char == '"':
            i = _scan_string(s, i + 1)
        elif char == "{":
            j = _past(_WHITESPACE, s, i + 1)
            following = s[j : j + 1]
            if following == "}":
                i = j + 1
            elif following != '"':
                raise _SyntaxError("Expecting property name enclosed in double quotes or '}'", j)
            else:
                open_containers.append("}")
                i = _scan_key(s, j)
                continue
        elif char == "[":
            j = _past(_WHITESPACE, s, i + 1)
            if s[j : j + 1] == "]":
                i = j + 1
            elif j >= size:
                raise _SyntaxError("Expecting value or ']'", j)
            else:
                open_containers.append("]")
                i = j
                continue
        elif char in _LITERALS and s.startswith(_LITERALS[char], i):
            i += len(_LITERALS[char])
        else:
            number = _NUMBER(s, i)
            if number is None:
                raise _SyntaxError("Expecting value", i)
            i = number.end()
        # A value ended at i: close containers until one expects another member.
        while open_containers:
            closer = open_containers[-1]
            j = _past(_WHITESPACE, s, i)
            char = s[j : j + 1]
            if char == closer:
                open_containers.pop()
                i = j + 1
                continue
            if char != ",":
                raise _SyntaxError(f"Expecting ',' delimiter or '{closer}'", j)
            k = _past(_WHITESPACE, s, j + 1)
            following = s[k : k + 1]
            if closer == "]":
                if following == "]":
                    raise _SyntaxError("Illegal trailing comma before end of array", j)
                i = k
            else:
                if following == "}":
                    raise _SyntaxError("Illegal trailing comma before end of object", j)
                if following != '"':
                    raise _SyntaxError("Expecting property name enclosed in double quotes", k)
                i = _scan_key(s, k)
            break
        else:
            return i


def _scan_key(s: str, i: int) -> int:
    """From the opening quote of a key to the start of its value."""
    j = _past(_WHITESPACE, s, _scan_string(s, i + 1))
    if s[j : j + 1] != ":":
        raise _SyntaxError("Expecting ':' delimiter", j)
    return _past(_WHITESPACE, s, j + 1)


def _scan_string(s: str, i: int) -> int:
    """From just past an opening quote to just past the closing one."""
    begin = i - 1
    size = len(s)
    while True:
        i = _past(_PLAIN_CHARS, s, i)
        if i >= size:
            raise _SyntaxError("Unterminated string starting at", begin)
        char = s[i]
        if char == '"':
            return i + 1
        if char != "\\":
            raise _SyntaxError("Invalid control character %r at", i)
        if i + 1 >= size:
            raise _SyntaxError("Unterminated string starting at", begin)
        escape = s[i + 1]
        if escape != "u":
            if escape not in _SIMPLE_ESCAPES:
                raise _SyntaxError("Invalid \\X escape sequence %r", i + 1)
            i += 2
            continue
        if not _HEX4(s, i + 2, i + 6):
            raise _SyntaxError("Invalid \\uXXXX escape sequence", i)
        code = int(s[i + 2 : i + 6], 16)
        i += 6
        if 0xD800 <= code <= 0xDBFF and s[i : i + 2] == "\\u":
            if not _HEX4(s, i + 2, i + 6):
                raise _SyntaxError("Invalid \\uXXXX escape sequence", i)
            if 0xDC00 <= int(s[i + 2 : i + 6], 16) <= 0xDFFF:
                i += 6


def _describe(s: str, error: _SyntaxError) -> str:
    """simplejson's `JSONDecodeError` text: message, line/column and char position (a range for extra data)."""
    message = error.message.replace("%r", repr(s[error.pos : error.pos + 1]))
    line, column = _line_column(s, error.pos)
    if error.end is None:
        return f"{message}: line {line} column {column} (char {error.pos})"
    end_line, end_column = _line_column(s, error.end)
    return (
        f"{message}: line {line} column {column} - line {end_line} column {end_column} (char {error.pos} - {error.end})"
    )


def _line_column(s: str, pos: int) -> tuple[int, int]:
    line = s.count("\n", 0, pos) + 1
    return line, (pos + 1 if line == 1 else pos - s.rindex("\n", 0, pos))
