"""stdout and stderr made to reach their file descriptors on every write, as awslambdaric makes them."""

from __future__ import annotations

import io

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from typing import Any, TextIO


class Unbuffered:
    """Flush-after-write proxy, for a stream without a file descriptor (awslambdaric wraps every stream so)."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def write(self, msg: str) -> int:
        result = self.stream.write(msg)
        self.stream.flush()
        return result

    def writelines(self, msgs: Any) -> None:
        self.stream.writelines(msgs)
        self.stream.flush()


def unbuffered(stream: Any) -> Any:
    """`stream` made to reach its file descriptor on every write (None stays None).

    Like `python -u`: a write-through TextIOWrapper over an unbuffered FileIO on the same fd, with the original's
    encoding, errors and name. No per-write Python code runs, and each `write()` is one `write(2)`, as with
    awslambdaric's flush-per-write proxy (so `print("a", "b")` produces the same chunks and ordering).
    """
    if stream is None:
        return None
    try:
        if stream.write_through and not hasattr(stream.buffer, "raw"):
            return stream  # already unbuffered (python -u, PYTHONUNBUFFERED)
        fd = stream.fileno()
        stream.flush()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return stream if isinstance(stream, Unbuffered) else Unbuffered(stream)
    raw = io.FileIO(fd, "wb", closefd=False)
    raw.name = getattr(stream, "name", fd)
    wrapper = io.TextIOWrapper(
        raw, encoding=stream.encoding, errors=stream.errors, newline="\n", line_buffering=False, write_through=True
    )
    wrapper.mode = "w"  # type: ignore[misc]  # what sys.stdout reports; TextIOWrapper.mode is settable
    return wrapper
