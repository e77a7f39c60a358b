"""The build context as a container engine sends it: the files of a directory that `.dockerignore` lets through.

Matching follows Docker's rules: patterns are relative to the context root (a leading `/` is dropped), `*` and `?`
stay within one path segment, `**` spans any number of segments, a pattern that matches a directory matches
everything under it, `!` re-includes, and the last matching pattern wins.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path


def compile_pattern(pattern: str) -> re.Pattern:
    """A regex for one `.dockerignore` pattern (without its `!`), matched against a whole relative path."""
    pattern = posixpath.normpath(pattern.strip().lstrip("/"))
    regex, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            regex += "(?:.*/)?"
            index += 3
            continue
        if pattern.startswith("**", index):
            regex += ".*"
            index += 2
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                raise ValueError(f"bad .dockerignore pattern {pattern!r}")
            body = pattern[index + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            regex += re.escape(pattern[index])
        else:
            regex += re.escape(char)
        index += 1
    return re.compile(regex + r"\Z")


class DockerIgnore:
    """The rules of one `.dockerignore` file."""

    def __init__(self, text: str):
        self.rules: list[tuple[bool, re.Pattern]] = []
        self._exception_prefixes: list[str] = []  # the literal start of each `!` pattern
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = line[1:] if negated else line
            self.rules.append((negated, compile_pattern(pattern)))
            if negated:
                cleaned = posixpath.normpath(pattern.strip().lstrip("/"))
                self._exception_prefixes.append(re.split(r"[*?\[\\]", cleaned, maxsplit=1)[0])

    def excludes(self, relative_path: str) -> bool:
        """Whether the file or directory at `relative_path` (posix, relative to the context) is left out."""
        parts = relative_path.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for negated, regex in self.rules:
            if any(regex.match(prefix) for prefix in prefixes):
                excluded = not negated
        return excluded

    def may_include_under(self, relative_dir: str) -> bool:
        """Whether anything under `relative_dir` can be included (so a walk must not prune it)."""
        if not self.excludes(relative_dir):
            return True
        inside = relative_dir + "/"
        return any(prefix.startswith(inside) or inside.startswith(prefix) for prefix in self._exception_prefixes)


def context_files(context_dir: str | Path) -> list[str]:
    """The relative paths (files and symlinks) of the build context rooted at `context_dir`, sorted."""
    ignore_file = Path(context_dir) / ".dockerignore"
    rules = DockerIgnore(ignore_file.read_text() if ignore_file.exists() else "")
    files = []
    for directory, subdirs, names in os.walk(context_dir):
        relative_dir = os.path.relpath(directory, context_dir)
        relative_dir = "" if relative_dir == "." else relative_dir + "/"
        subdirs[:] = [d for d in subdirs if rules.may_include_under(relative_dir + d)]
        for name in names + [d for d in subdirs if os.path.islink(os.path.join(directory, d))]:
            if not rules.excludes(relative_dir + name):
                files.append(relative_dir + name)
    return sorted(files)
