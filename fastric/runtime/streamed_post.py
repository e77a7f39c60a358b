"""Writing a `StreamedReply` (`streaming.py`) on the Runtime API connection, then reading the POST's response.

The head goes out with the first item, each later item as one chunk the moment the handler yields it, then the
last chunk: bare (`0\\r\\n\\r\\n`), or with the trailers `Lambda-Runtime-Function-Error-Type` and
`Lambda-Runtime-Function-Error-Body` (base64 of the error document) if the handler failed after its first item.
A `GET /next` to pipeline goes out in the same write as the last chunk, by the same rule as behind a buffered POST.

Nothing is buffered: the blocking loop writes each chunk with `Connection.send` (one `sendall`; an item of
64 KiB or more is not copied but written in three), and the asyncio loop waits for `drain` after each, so a
Runtime API that reads slowly holds the handler back instead of letting the stream fill memory. A stream cannot
be replayed, so a connection lost while it is written is not re-opened as for a buffered POST; a response the
Runtime API sent before closing it (a 413, say) is still read and handled as any.
"""

from __future__ import annotations

from binascii import b2a_base64

from fastric.runtime import logs
from fastric.runtime.faults import describe_exception, dump_document
from fastric.runtime.streaming import aclose, close, item_bytes
from fastric.runtime.wire.connection import ConnectionLost
from fastric.runtime.wire.parser import MalformedResponse
from fastric.runtime.wire.protocol import _header_value

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from fastric.runtime.streaming import StreamedReply
    from fastric.runtime.wire.aioconnection import AsyncConnection
    from fastric.runtime.wire.connection import Connection
    from fastric.runtime.wire.parser import Response
    from fastric.runtime.wire.protocol import Request

LAST_CHUNK = b"0\r\n\r\n"
_JOIN_LIMIT = 65536  # smaller chunks are framed in one bytes object (copied); larger ones are written as they are


def chunk(data: bytes | bytearray | memoryview) -> Request:
    """One chunk of a chunked body, for a non-empty item."""
    size = len(data)
    if size < _JOIN_LIMIT:
        return [b"".join((b"%x\r\n" % size, data, b"\r\n"))]
    return [b"%x\r\n" % size, data, b"\r\n"]


def error_chunk(exc: Exception, request_id: str) -> bytes:
    """The last chunk with the error trailers for `exc`, which is logged as any invocation error."""
    document, _ = describe_exception(exc, request_id)
    logs.log_error(document)
    return (
        b"0\r\nLambda-Runtime-Function-Error-Type: "
        + _header_value(document["errorType"])
        + b"\r\nLambda-Runtime-Function-Error-Body: "
        + b2a_base64(dump_document(document), newline=False)
        + b"\r\n\r\n"
    )


def post_stream(connection: Connection, reply: StreamedReply, then: Request | None) -> Response:
    """Write the streamed POST on a blocking connection (`then` behind its last chunk); its response."""
    stream = reply.stream
    send = connection.send
    try:
        if stream.first is None:
            send([reply.head, LAST_CHUNK, *(then or ())])
        else:
            send([reply.head, *chunk(stream.first)])
            send([_send_items(send, stream.items, reply.request_id), *(then or ())])
    except ConnectionLost as lost:
        close(stream.items)
        return _answered_before(connection, lost)
    return connection.receive()


def _send_items(send: Callable[[Request], None], items: Iterator, request_id: str) -> bytes:
    """Send the items after the first, each as it comes; the last chunk to end the body with."""
    try:
        for item in items:
            data = item_bytes(item)
            if data:
                send(chunk(data))
    except ConnectionLost:
        raise
    except Exception as exc:
        close(items)  # suspended still if its item was refused
        return error_chunk(exc, request_id)
    return LAST_CHUNK


async def apost_stream(connection: AsyncConnection, reply: StreamedReply, then: Request | None) -> Response:
    """`post_stream` on the asyncio connection, waiting for the transport to drain after every chunk."""
    stream = reply.stream
    try:
        if stream.first is None:
            await connection.send([reply.head, LAST_CHUNK, *(then or ())])
        else:
            await connection.send([reply.head, *_own_chunk(stream.first)])
            await connection.drain()
            last = await _asend_items(connection, stream.items, reply.request_id)
            await connection.send([last, *(then or ())])
    except ConnectionLost as lost:
        await aclose(stream.items)
        try:
            return await connection.receive()
        except (ConnectionLost, MalformedResponse):
            raise lost from None
        finally:
            connection.close()
    return await connection.receive()


async def _asend_items(connection: AsyncConnection, items: AsyncIterator, request_id: str) -> bytes:
    from asyncio import sleep  # here, not at the top: the blocking loop imports this module and never asyncio

    try:
        async for item in items:
            data = item_bytes(item)
            if data:
                await sleep(0)  # the loop reads what came meanwhile: an answer before a failed write, say
                await connection.send(_own_chunk(data))
                await connection.drain()
    except ConnectionLost:
        raise
    except Exception as exc:
        await aclose(items)
        return error_chunk(exc, request_id)
    return LAST_CHUNK


def _own_chunk(data: bytes | bytearray | memoryview) -> Request:
    """`chunk`, with a large mutable item copied: the transport may hold it after the handler goes on."""
    if data.__class__ is not bytes and len(data) >= _JOIN_LIMIT:
        data = bytes(data)
    return chunk(data)


def _answered_before(connection: Connection, lost: ConnectionLost) -> Response:
    """The response the Runtime API sent before the connection was lost under a stream; `lost` if none."""
    try:
        return connection.receive()
    except (ConnectionLost, MalformedResponse):
        raise lost from None
    finally:
        connection.close()
