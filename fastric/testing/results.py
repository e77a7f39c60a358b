"""What an invocation gave back: `InvokeResult` (invoke), `InvokeStream` (stream), `HTTPResult` (a Function URL).

The emulator sends an invocation as frames (`fastric/emulator/recording.py`): `D` response bytes, `E` the
error document, `R` the record (status code, logs, the REPORT line's numbers, the import profile).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

FRAME_HEAD = struct.Struct(">cI")


def decode(raw: bytes) -> Any:
    """The JSON value of a body, or the bytes themselves when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def split_frames(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(kind, data) of each frame in a whole body."""
    offset = 0
    while offset < len(data):
        kind, size = FRAME_HEAD.unpack_from(data, offset)
        offset += FRAME_HEAD.size
        yield kind, data[offset : offset + size]
        offset += size


@dataclass
class InvokeResult:
    """One invocation, as the Lambda Invoke API and the function's log stream report it."""

    status_code: int
    payload: Any  # the decoded JSON, or the raw bytes when the body is not JSON
    raw: bytes
    function_error: str | None = None  # "Unhandled" when the function (or the platform) failed
    error: dict[str, Any] | None = None  # the error document
    logs: str = ""  # the invocation's whole output, START … REPORT
    request_id: str = ""
    duration_ms: float = 0.0
    billed_duration_ms: int = 0
    max_memory_used_mb: int = 0
    init_duration_ms: float | None = None  # None on a warm invocation
    import_profile: Any = None  # an ImportProfile on a cold invocation of a function started with import_profile
    content_type: str = "application/json"
    memory_size_mb: int = 0

    @classmethod
    def from_frames(cls, frames: Iterator[tuple[bytes, bytes]], default_status: int = 200) -> InvokeResult:
        body = bytearray()
        document: bytes | None = None
        record: dict[str, Any] = {}
        for kind, data in frames:
            if kind == b"D":
                body += data
            elif kind == b"E":
                document = data
            elif kind == b"R":
                record = json.loads(data)
        raw = document if document is not None else bytes(body)
        return cls.from_record(raw, document is not None, record, default_status)

    @classmethod
    def from_record(cls, raw: bytes, failed: bool, record: dict[str, Any], default_status: int = 200) -> InvokeResult:
        error = decode(raw) if failed else None
        profile = record.get("import_profile")
        if profile is not None:
            from fastric.emulator.importprofile import ImportProfile

            profile = ImportProfile.from_dict(profile)
        return cls(
            status_code=record.get("status_code", default_status),
            payload=decode(raw),
            raw=raw,
            function_error="Unhandled" if failed else None,
            error=error if isinstance(error, dict) else None,
            logs=record.get("logs", ""),
            request_id=record.get("request_id", ""),
            duration_ms=record.get("duration_ms", 0.0),
            billed_duration_ms=record.get("billed_duration_ms", 0),
            max_memory_used_mb=record.get("max_memory_used_mb", 0),
            init_duration_ms=record.get("init_duration_ms"),
            import_profile=profile,
            content_type=record.get("content_type", "application/json"),
            memory_size_mb=record.get("memory_size_mb", 0),
        )


class InvokeStream:
    """The chunks of a streamed invocation as they come; once exhausted, the invocation's result fields.

    After the last chunk, `function_error`, `error`, `logs`, `request_id`, `status_code`, `duration_ms`, …
    are set as on an `InvokeResult` (`result` is that `InvokeResult`, its payload the whole body).
    """

    def __init__(self, read: Callable[[int], bytes], release: Callable[[bool], None]):
        self._read = read
        self._release = release
        self._body = bytearray()
        self._document: bytes | None = None
        self.result: InvokeResult | None = None

    def __iter__(self) -> InvokeStream:
        return self

    def __next__(self) -> bytes:
        while self.result is None:
            head = self._read(FRAME_HEAD.size)
            if len(head) < FRAME_HEAD.size:
                self.close()
                raise ConnectionError("the emulator ended the stream early")
            kind, size = FRAME_HEAD.unpack(head)
            data = self._read(size) if size else b""
            if kind == b"D":
                self._body += data
                return data
            if kind == b"E":
                self._document = data
            elif kind == b"R":
                failed = self._document is not None
                raw = self._document if failed else bytes(self._body)
                self.result = InvokeResult.from_record(raw or b"", failed, json.loads(data))
                self._release(True)
        raise StopIteration

    def close(self) -> None:
        """Stop reading (the connection is dropped when the stream was not read to its end)."""
        if self.result is None:
            self._release(False)

    def __enter__(self) -> InvokeStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "result":
            raise AttributeError(name)
        result = self.__dict__.get("result")
        if result is None:
            if name in InvokeResult.__dataclass_fields__:
                return None
            raise AttributeError(name)
        return getattr(result, name)


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; a repeated header's values joined with ", "."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs
        self._joined: dict[str, str] = {}
        self._names: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._names.setdefault(key, name)
            self._joined[key] = f"{self._joined[key]}, {value}" if key in self._joined else value

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._joined)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, in order (e.g. each `Set-Cookie`)."""
        return [value for key, value in self.pairs if key.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"Headers({self.pairs!r})"


@dataclass
class HTTPResult:
    """A Function URL response."""

    status: int
    headers: Headers
    body: bytes = field(repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)
