"""Lambda Managed Instances benchmark handlers: `delay_ms` of waiting, then one GET to a local HTTP service.

The same work two ways, for `benchmarks/managed_instances.py`:

- `async_io`: `await asyncio.sleep(...)`, then a GET through one aiohttp `ClientSession` per process (keep-alive
  pool, no connection limit), created lazily on the runtime's loop at the first invocation. Under fastric with
  `AWS_LAMBDA_MAX_CONCURRENCY=N` one process holds many of these at once.
- `sync_io`: `time.sleep(...)`, then the same GET over one module-level keep-alive `http.client` connection per
  process (the lightest stdlib client), as each of awslambdaric's N forked workers runs it.

The event carries the delay (and `cpu_ms`, CPU time to burn first, 0 by default), so both handlers do exactly
the same for the same invocation. Imports are made at
the first call, so each handler pays only for its own client library.
"""

import os
import time

BACKEND = os.environ.get("BENCH_BACKEND", "127.0.0.1:9")  # host:port of the local service
PATH = "/item"

_session = None
_connection = None


def _burn(cpu_ms):
    """Spin for `cpu_ms` of this thread's CPU time (the invocation's own computing, if any)."""
    end = time.thread_time() + cpu_ms / 1000
    while time.thread_time() < end:
        pass


async def async_io(event, context):
    """Wait `event["delay_ms"]` on the loop, then GET the local service through a shared aiohttp session."""
    global _session
    import asyncio

    _burn(event.get("cpu_ms", 0))
    await asyncio.sleep(event["delay_ms"] / 1000)
    if _session is None:
        import aiohttp

        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    async with _session.get(f"http://{BACKEND}{PATH}") as reply:
        body = await reply.read()
    return {"status": reply.status, "bytes": len(body)}


def sync_io(event, context):
    """Block for `event["delay_ms"]`, then GET the local service over this process's keep-alive connection."""
    global _connection
    _burn(event.get("cpu_ms", 0))
    time.sleep(event["delay_ms"] / 1000)
    if _connection is None:
        import http.client

        host, port = BACKEND.rsplit(":", 1)
        _connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        _connection.request("GET", PATH)
        reply = _connection.getresponse()
        body = reply.read()
    except OSError:
        _connection.close()  # reconnects at the next request
        raise
    return {"status": reply.status, "bytes": len(body)}
