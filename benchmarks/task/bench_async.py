"""Async handler fixtures: one awaited HTTP call to a local service through aiohttp.

`persistent` keeps one module-level `ClientSession` (and its keep-alive connection) across invocations: what an
`async def` handler can do under fastric. `per_invoke` is the usual workaround under awslambdaric: a sync handler
running `asyncio.run()` each time, so the session (and its connection) is created and closed per invocation.
"""

import asyncio
import os

import aiohttp

BACKEND_URL = os.environ.get("BENCH_BACKEND_URL", "http://127.0.0.1:9/item")
_session = None


async def _fetch(session):
    async with session.get(BACKEND_URL) as reply:
        return {"backend": await reply.json()}


async def persistent(event, context):
    """An `async def` handler reusing a module-level session."""
    global _session
    if _session is None:
        _session = aiohttp.ClientSession()
    return await _fetch(_session)


async def _fetch_with_fresh_session():
    async with aiohttp.ClientSession() as session:
        return await _fetch(session)


def per_invoke(event, context):
    """The same call from a sync handler through `asyncio.run()`: a new loop and session per invocation."""
    return asyncio.run(_fetch_with_fresh_session())
