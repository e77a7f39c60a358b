"""A small, strict Dockerfile parser: stages, instructions, flags, exec/shell forms and variable expansion.

Written here rather than taken from `dockerfile-parse` because that library only yields a flat list of
instructions (stages, `--flags`, `ARG` scoping and expansion would still be ours to write) and it would be one more
test dependency. Anything this parser does not understand raises `DockerfileError` instead of being guessed at, so
a Dockerfile feature the test cannot honour fails the test loudly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


class DockerfileError(ValueError):
    """The Dockerfile uses syntax this parser does not support, or is malformed."""


@dataclass
class Instruction:
    """One instruction: `keyword` upper-cased, `flags` from leading `--name=value` (in order, repeatable),
    and its arguments.

    `exec_form` is the JSON array when the instruction was written in exec form, else None; `text` is the raw
    argument text after the flags (continuations joined).
    """

    keyword: str
    flags: list[tuple[str, str]]
    text: str
    exec_form: list[str] | None
    line: int

    def flag(self, name: str) -> str | None:
        """The value of the last `--name` flag, or None."""
        values = [value for key, value in self.flags if key == name]
        return values[-1] if values else None


@dataclass
class Stage:
    """A `FROM` and the instructions after it."""

    base: str  # unexpanded image reference as written
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)
    line: int = 0


@dataclass
class Dockerfile:
    """Global `ARG` defaults (those before the first `FROM`) and the stages, in order."""

    global_args: dict[str, str | None]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


_EXEC_FORM_KEYWORDS = {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"}
_FLAG = re.compile(r"--([a-z-]+)(?:=(\S*))?(?:\s+|$)")


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile `text` into global ARGs and stages."""
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line_no, keyword, rest in _logical_lines(text):
        flags, rest = _take_flags(rest)
        if keyword == "FROM":
            words = rest.split()
            if len(words) == 3 and words[1].upper() == "AS":
                stages.append(Stage(words[0], words[2], line=line_no))
            elif len(words) == 1:
                stages.append(Stage(words[0], None, line=line_no))
            else:
                raise DockerfileError(f"line {line_no}: cannot parse FROM {rest!r}")
            continue
        instruction = Instruction(keyword, flags, rest, _exec_form(keyword, rest), line_no)
        if not stages:
            if keyword != "ARG":
                raise DockerfileError(f"line {line_no}: {keyword} before the first FROM")
            name, value = parse_arg(rest)
            global_args[name] = value
            continue
        stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError("no FROM instruction")
    return Dockerfile(global_args, stages)


def parse_arg(text: str) -> tuple[str, str | None]:
    """`ARG NAME[=default]` → (name, default or None). Quotes around the default are removed."""
    name, eq, value = text.strip().partition("=")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise DockerfileError(f"cannot parse ARG {text!r}")
    return name, (split_words(value, {})[0] if value else "") if eq else None


def _logical_lines(text: str):
    """Yield (first line number, KEYWORD, arguments) per instruction: comments dropped, continuations joined."""
    lines = text.splitlines()
    index = 0
    while index < len(lines) and lines[index].startswith("#"):  # parser directives
        directive = re.match(r"#\s*(\w+)\s*=\s*(.*)", lines[index])
        if directive and directive.group(1).lower() == "escape" and directive.group(2).strip() != "\\":
            raise DockerfileError("only the default escape character is supported")
        if not directive:
            break
        index += 1
    pending: list[str] = []
    start = 0
    for line_no, line in enumerate(lines[index:], start=index + 1):
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue  # comments, and empty lines inside a continuation, vanish
        if not stripped:
            continue
        if not pending:
            start = line_no
        body = line.rstrip()
        if body.endswith("\\"):
            pending.append(body[:-1])
            continue
        pending.append(body)
        joined = "".join(pending).strip()
        pending = []
        if re.search(r"<<-?[\"']?[A-Za-z_]", joined):
            raise DockerfileError(f"line {start}: heredocs are not supported")
        keyword, _, rest = joined.partition(" ")
        yield start, keyword.upper(), rest.strip()
    if pending:
        raise DockerfileError("the file ends inside a line continuation")


def _take_flags(rest: str) -> tuple[list[tuple[str, str]], str]:
    flags: list[tuple[str, str]] = []
    while rest.startswith("--"):
        match = _FLAG.match(rest)
        if not match:
            raise DockerfileError(f"cannot parse flag in {rest!r}")
        flags.append((match.group(1), match.group(2) if match.group(2) is not None else "true"))
        rest = rest[match.end() :]
    return flags, rest.strip()


def _exec_form(keyword: str, rest: str) -> list[str] | None:
    if keyword not in _EXEC_FORM_KEYWORDS or not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None  # Docker, too, falls back to the shell form when the JSON is invalid
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return value


_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def expand(text: str, env: dict[str, str]) -> str:
    """Expand `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}` as Docker does (unset is empty)."""

    def substitute(match: re.Match) -> str:
        name = match.group("braced") or match.group("bare")
        value = env.get(name, "")
        op = match.group("op")
        if op == "-":
            return value or expand(match.group("word"), env)
        if op == "+":
            return expand(match.group("word"), env) if value else ""
        return value

    if re.search(r"\$\{[^}]*$|\$\{[^A-Za-z_]", text):
        raise DockerfileError(f"unsupported variable syntax in {text!r}")
    return _VARIABLE.sub(substitute, text)


def split_words(text: str, env: dict[str, str]) -> list[str]:
    """Split `text` into words as Docker's shell lexer does for ENV, COPY, WORKDIR...: whitespace separates,
    single quotes are literal, double quotes and unquoted text expand variables, a backslash escapes."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            index += 1
            continue
        in_word = True
        if char == "\\" and index + 1 < len(text):
            word.append(text[index + 1])
            index += 2
        elif char == "'":
            end = text.find("'", index + 1)
            if end < 0:
                raise DockerfileError(f"unterminated quote in {text!r}")
            word.append(text[index + 1 : end])
            index = end + 1
        elif char == '"':
            index += 1
            chunk: list[str] = []
            while index < len(text) and text[index] != '"':
                if text[index] == "\\" and index + 1 < len(text) and text[index + 1] in '"\\$':
                    chunk.append("\0" if text[index + 1] == "$" else text[index + 1])
                    index += 2
                else:
                    chunk.append(text[index])
                    index += 1
            if index >= len(text):
                raise DockerfileError(f"unterminated quote in {text!r}")
            word.append(expand("".join(chunk), env).replace("\0", "$"))
            index += 1
        else:
            end = index
            while end < len(text) and not text[end].isspace() and text[end] not in "\\'\"":
                end += 1
            word.append(expand(text[index:end], env))
            index = end
    if in_word:
        words.append("".join(word))
    return words


def parse_env(text: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """`ENV K=V K2="v 2"` (or the legacy `ENV K value words`) → [(key, expanded value)], expanded against `env`
    as it was before the instruction."""
    first = text.split(None, 1)[0] if text.strip() else ""
    if "=" not in first:
        key, _, value = text.strip().partition(" ")
        if not key:
            raise DockerfileError("ENV needs a name")
        return [(key, " ".join(split_words(value, env)))]
    pairs = []
    for word in split_words(text, env):
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise DockerfileError(f"cannot parse ENV word {word!r}")
        pairs.append((key, value))
    return pairs
