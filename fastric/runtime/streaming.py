"""Response streaming: `@fastric.streaming` handlers, `fastric.http_prelude`, and the streamed reply they make.

A streaming handler is a generator or an async generator, or returns an iterable or an async iterable, of
bytes, bytearray, memoryview or str (sent as UTF-8). The loop runs it up to its first item inside its
`answer` step, so an exception before that item is posted to `/error` as for any handler; the reply is then
a `StreamedReply`, which `streamed_post.py` writes as a chunked `POST /response`, each item as the handler
yields it, ending the body with the error trailers if the handler fails later on.

User code imports this module while the handler is imported (`fastric.streaming`): nothing heavy here.
"""

from __future__ import annotations

from types import CoroutineType

from fastric.runtime.faults import FaultError
from fastric.runtime.handler import is_async_generator_handler

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
    from typing import Any

    from fastric.runtime.wire.protocol import Invocation, Requests

DEFAULT_CONTENT_TYPE = "application/octet-stream"
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
MARK = "__fastric_streaming__"  # set by @streaming on the handler: the response's content type
_PRELUDE_END = b"\0" * 8  # between the JSON prelude and the body of an HTTP integration response
_TEXT = (str, bytes, bytearray, memoryview)  # what a handler may also return whole, as a one-item stream
_NOTHING = object()  # the first item of a stream that has none


def streaming(handler: Callable | None = None, /, *, content_type: str = DEFAULT_CONTENT_TYPE) -> Any:
    """Mark a handler as streaming its response: `@fastric.streaming` or `@fastric.streaming(content_type=...)`.

    The function is returned unchanged (called in a test, it still gives its generator); the runtime sees the
    mark and writes what the handler yields as it yields it."""
    header_value(content_type)  # a bad content type fails at import, not at the first invocation

    def mark(function: Callable) -> Callable:
        if not callable(function):
            raise TypeError(
                f"fastric.streaming decorates a handler, not {type(function).__name__} "
                "(a content type is given as content_type=...)"
            )
        try:
            setattr(function, MARK, content_type)
        except (AttributeError, TypeError):  # a bound method, a builtin, a slotted callable
            return _Marked(function, content_type)
        return function

    return mark if handler is None else mark(handler)


class _Marked:
    """A streaming handler that cannot carry the mark itself; `func` is how `handler.is_async_handler` finds
    the function behind it."""

    def __init__(self, func: Callable, content_type: str):
        self.func = func
        setattr(self, MARK, content_type)

    def __call__(self, event: Any, context: Any) -> Any:
        return self.func(event, context)


def content_type_of(handler: Callable) -> str | None:
    """The content type a `@streaming` handler declared (on itself, its `__call__`, or a partial's `func`);
    None for a handler that is not streaming."""
    method = getattr(handler, "__call__", None)  # noqa: B004 (the bound method, not a callable() test)
    for candidate in (handler, method, getattr(handler, "func", None)):
        mark = getattr(candidate, MARK, None)
        if isinstance(mark, str):
            return mark
    return None


def header_value(content_type: str) -> bytes:
    """The content type as a header value; ValueError for one that cannot be sent as is."""
    if not isinstance(content_type, str) or not content_type.isascii() or not content_type.isprintable():
        raise ValueError(f"fastric.streaming: content_type must be printable ASCII, not {content_type!r}")
    return content_type.encode("ascii")


class HttpPrelude:
    """The status code, headers and cookies of a streamed HTTP response (Function URLs, API Gateway), as the
    first item a streaming handler yields; made by `http_prelude`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data  # the JSON prelude and the 8 NUL bytes that end it

    def __repr__(self) -> str:
        return f"HttpPrelude({self.data[:-8].decode()})"


def http_prelude(
    status_code: int = 200, headers: Mapping[str, str] | None = None, cookies: Iterable[str] | None = None
) -> HttpPrelude:
    """The first item of a streamed HTTP response: `yield fastric.http_prelude(200, {"Content-Type": ...})`.

    The response is then sent as `application/vnd.awslambda.http-integration-response`: this JSON prelude
    (`statusCode`, `headers`, `cookies`), 8 NUL bytes, and the items after it as the body."""
    import orjson

    if not isinstance(status_code, int) or isinstance(status_code, bool):
        raise TypeError(f"http_prelude: status_code must be an int, not {type(status_code).__name__}")
    prelude = {"statusCode": status_code, "headers": dict(headers or {}), "cookies": list(cookies or ())}
    return HttpPrelude(orjson.dumps(prelude) + _PRELUDE_END)


# -- running a streaming handler up to its first item ---------------------------------------------------------


class Stream:
    """A streaming handler's response once its first item is known: the content type to send, that item's
    bytes (None: the stream is empty), and the iterator of the items after it."""

    __slots__ = ("content_type", "first", "items")

    def __init__(self, content_type: bytes, first: bytes | bytearray | memoryview | None, items: Any):
        self.content_type = content_type
        self.first = first
        self.items = items  # Iterator (blocking loop) or AsyncIterator (uvloop loop)


class StreamedReply:
    """What a streaming invocation posts: the head of a chunked `POST /response`, then the stream's items."""

    __slots__ = ("kind", "head", "stream", "request_id")

    def __init__(self, head: bytes, stream: Stream, request_id: str):
        self.kind = "success"  # as in the "Failed to post handler success response" messages
        self.head = head
        self.stream = stream
        self.request_id = request_id


def streamed_reply(requests: Requests, invocation: Invocation, stream: Stream) -> StreamedReply:
    head = requests.streamed_response(invocation.request_id, stream.content_type, invocation.invocation_id)
    return StreamedReply(head, stream, invocation.request_id)


def for_blocking_loop(handler: Callable, content_type: str | None, run_coroutine: Callable) -> Callable:
    """The handler as `loop.py` calls it: unchanged, or for a streaming handler (its `content_type_of`, decided
    at init) a function that runs it up to its first item and returns the `Stream`. Async iterables are stepped
    on `run_coroutine`'s loop."""
    if content_type is None:
        return handler
    header = header_value(content_type)

    def open_stream(event: Any, context: Any) -> Stream:
        result = handler(event, context)
        if result.__class__ is CoroutineType:
            result = run_coroutine(result)
        items = _iterator(result)
        if hasattr(items, "__anext__"):
            items = _stepped(items, run_coroutine)
        first = next(items, _NOTHING)
        try:
            return _opened(header, first, items)
        except Exception:
            close(items)
            raise

    return open_stream


def for_async_loop(handler: Callable, content_type: str | None) -> Callable:
    """The handler as `aioloop.py` awaits it: unchanged, or for a streaming handler (its `content_type_of`,
    decided at init) a coroutine function that runs it up to its first item and returns the `Stream`. An async
    generator function that is not marked gets its generator refused as a result, as awslambdaric refuses it
    (`Runtime.MarshalError`)."""
    if content_type is None:
        if not is_async_generator_handler(handler):
            return handler

        async def unmarked(event: Any, context: Any) -> Any:
            return handler(event, context)

        return unmarked
    header = header_value(content_type)

    async def open_stream(event: Any, context: Any) -> Stream:
        result = handler(event, context)
        while hasattr(result, "__await__"):  # an `async def` that returns its iterable
            result = await result
        items = _iterator(result)
        if not hasattr(items, "__anext__"):
            items = _async_items(items)
        try:
            first = await items.__anext__()
        except StopAsyncIteration:
            first = _NOTHING
        try:
            return _opened(header, first, items)
        except Exception:
            await aclose(items)
            raise

    return open_stream


def _iterator(result: Any) -> Any:
    """The iterator (or async iterator) over what a streaming handler returned."""
    if isinstance(result, _TEXT) or result.__class__ is HttpPrelude:
        return iter((result,))
    if hasattr(result, "__aiter__"):
        return result.__aiter__()
    if not isinstance(result, dict):
        try:
            return iter(result)
        except TypeError:
            pass
    raise _unsendable(
        f"a streaming handler must be a generator or return an iterable, not {type(result).__name__}"
    ) from None


def _opened(content_type: bytes, first: Any, items: Any) -> Stream:
    if first is _NOTHING:
        return Stream(content_type, None, items)
    if first.__class__ is HttpPrelude:
        return Stream(HTTP_INTEGRATION_CONTENT_TYPE.encode(), first.data, items)
    return Stream(content_type, item_bytes(first), items)


def item_bytes(item: Any) -> bytes | bytearray | memoryview:
    """An item as the bytes of its chunk (`len` is their number); Runtime.MarshalError for an item that
    cannot be sent."""
    if item.__class__ is bytes:
        return item
    if isinstance(item, str):
        try:
            return item.encode()
        except UnicodeEncodeError as exc:
            raise _unsendable(str(exc)) from None
    if isinstance(item, (bytes, bytearray)):
        return item
    if isinstance(item, memoryview):
        return item.cast("B") if item.c_contiguous else item.tobytes()
    if item.__class__ is HttpPrelude:
        raise _unsendable("http_prelude(...) must be the first item a streaming handler yields")
    raise _unsendable(f"a streamed item must be bytes, bytearray, memoryview or str, not {type(item).__name__}")


def _unsendable(message: str) -> FaultError:
    return FaultError("Runtime.MarshalError", f"Unable to marshal response: {message}")


def close(items: Iterator) -> None:
    """Close a stream the runtime stops reading early, so that the handler's `finally` blocks run."""
    closer = getattr(items, "close", None)
    if closer is not None:
        try:
            closer()
        except Exception:  # the stream is being abandoned already; the handler's clean-up failing changes nothing
            pass


async def aclose(items: AsyncIterator) -> None:
    """`close` for an async iterator."""
    closer = getattr(items, "aclose", None)
    if closer is not None:
        try:
            await closer()
        except Exception:  # as in close()
            pass


def _stepped(items: AsyncIterator, run_coroutine: Callable) -> Iterator:
    """An async iterator as a plain one, each step run to completion by `run_coroutine` (the blocking loop)."""
    try:
        while True:
            try:
                item = run_coroutine(_anext(items))
            except StopAsyncIteration:
                return
            yield item
    finally:
        run_coroutine(aclose(items))


async def _anext(items: AsyncIterator) -> Any:
    return await items.__anext__()


async def _async_items(items: Iterator) -> AsyncIterator:
    """A plain iterator as an async one (an `async def` streaming handler that returned a list, say)."""
    try:
        for item in items:
            yield item
    finally:
        close(items)
