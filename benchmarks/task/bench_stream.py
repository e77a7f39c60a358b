"""Handler fixtures for the response-streaming benchmark (`benchmarks/streaming.py`)."""

import time

import fastric


def _ticks(event):
    for i in range(event["items"]):
        time.sleep(event["gap"])  # the work that makes one item
        yield f"tick {i}\n"


@fastric.streaming(content_type="text/plain")
def ticks_streamed(event, context):
    """`items` items, each after `gap` seconds of work, each sent as soon as it is made."""
    yield from _ticks(event)


def ticks_buffered(event, context):
    """The same work, returned in one piece when all of it is done."""
    return "".join(_ticks(event))


def _blocks(event):
    block = b"x" * event["item_size"]
    for _ in range(event["total"] // event["item_size"]):
        yield block


@fastric.streaming
def bulk(event, context):
    """`total` bytes in items of `item_size` bytes (a plain generator, on the blocking loop)."""
    yield from _blocks(event)


@fastric.streaming
async def bulk_async(event, context):
    """The same from an async generator (on the uvloop loop)."""
    for block in _blocks(event):
        yield block
