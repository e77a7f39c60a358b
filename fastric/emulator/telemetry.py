"""The Telemetry API (`PUT /2022-07-01/telemetry`) and the Logs API (`PUT /2020-08-15/logs`) of one execution
environment, and delivery to their subscribers.

An extension subscribes a listener to the `platform`, `function` and `extension` streams, with one of the two
APIs (a subscription with the other one is refused). Events are `{"time": ISO-8601, "type": ..., "record": ...}`
objects, in each API's own format: the Telemetry API's `platform.*` records (initStart, runtimeDone, report with
`status` and `tracing`, ...), or the Logs API's (`platform.start`, `platform.end`, `platform.report`,
`platform.runtimeDone`, `platform.extension`, `platform.logsSubscription`, no init records; see `logs_form`).
Function and extension lines are strings in both. Each subscriber buffers them and delivers them in
batches when `maxItems` or `maxBytes` is reached or `timeoutMs` after the first one: as a JSON array POSTed to
an HTTP destination (`http://sandbox.localdomain:PORT/PATH`; `sandbox.localdomain` and `sandbox` mean
127.0.0.1), or as newline-delimited JSON on a TCP connection to 127.0.0.1:PORT. Subscriptions are taken during
init only (later: 403 `Telemetry.SubscriptionClosed`); the events of the init phase so far are replayed to
a new subscriber, so it sees `platform.initStart` like on Lambda. A batch that cannot be delivered is retried
a few times, then dropped with a note in the emulator's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

from . import documents
from .report import PlatformLog

SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
LOGS_SCHEMA_VERSIONS = ("2020-08-15", "2021-03-18")  # optional in a Logs API subscription
TELEMETRY_API = "telemetry"
LOGS_API = "logs"
CATEGORIES = ("platform", "function", "extension")
SANDBOX_HOSTS = ("sandbox.localdomain", "sandbox")
BUFFERING_LIMITS = {  # name: (minimum, maximum, default)
    "maxItems": (1000, 10000, 10000),
    "maxBytes": (262144, 1048576, 262144),
    "timeoutMs": (25, 30000, 1000),
}
BACKLOG_LIMIT = 10000  # init-phase events kept for subscribers yet to come
DELIVERY_ATTEMPTS = 5  # with back-off: 0.2, 0.4, 0.8, 1.6 s (a listener may start after it subscribed)
DELIVERY_TIMEOUT = 5.0  # seconds for one delivery attempt
SUBSCRIBED = b'"OK"'
SAME: Any = object()  # `logs=SAME`: the Logs API's event is the Telemetry API's, type and record


class ValidationError(Exception):
    """A subscription request Lambda would refuse with 400 `ValidationError`."""


def timestamp(at: float | None = None) -> str:
    """ISO 8601 with milliseconds, UTC, as the Telemetry API writes `time`."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def category_of(event_type: str) -> str:
    return "platform" if event_type.startswith("platform.") else event_type


class Telemetry:
    """The subscriptions of one execution environment (both APIs), and the init-phase backlog."""

    def __init__(self, log: PlatformLog, multi_concurrency: bool = False):
        self.log = log
        self.multi_concurrency = multi_concurrency  # Managed Instances: no Logs API
        self.subscriptions: dict[str, Subscription] = {}  # by extension name
        # init-phase events: (category, the Telemetry API's bytes or None, the Logs API's bytes or None)
        self.backlog: deque[tuple[str, bytes | None, bytes | None]] | None = deque(maxlen=BACKLOG_LIMIT)

    @property
    def open(self) -> bool:
        """Whether subscriptions are still taken (the init phase)."""
        return self.backlog is not None

    @property
    def active(self) -> bool:
        """Whether an emitted event goes anywhere (cheap check before building a record)."""
        return self.backlog is not None or bool(self.subscriptions)

    def emit(self, event_type: str | None, record: object, at: float | None = None, logs: Any = SAME) -> None:
        """Publish an event: `event_type` and `record` in the Telemetry API's format (None: it has no such event),
        `logs` the Logs API's `(type, record)` (None: it has none; SAME: the same as the Telemetry API's)."""
        if not self.active:
            return
        if logs is SAME:
            logs = None if event_type is None else (event_type, record)
        category = category_of(event_type if event_type is not None else logs[0] if logs else "platform")
        moment = timestamp(at)
        wanted = self._apis_wanted()
        telemetry_event = logs_event = None
        if event_type is not None and TELEMETRY_API in wanted:
            telemetry_event = orjson.dumps({"time": moment, "type": event_type, "record": record})
        if logs is not None and LOGS_API in wanted:
            logs_event = orjson.dumps({"time": moment, "type": logs[0], "record": logs[1]})
        if telemetry_event is None and logs_event is None:
            return
        if self.backlog is not None:
            self.backlog.append((category, telemetry_event, logs_event))
        for subscription in self.subscriptions.values():
            event = telemetry_event if subscription.api == TELEMETRY_API else logs_event
            if event is not None:
                subscription.add(category, event)

    def _apis_wanted(self) -> tuple[str, ...]:
        if self.backlog is not None:  # a subscriber of either API may still come
            return (TELEMETRY_API, LOGS_API)
        return tuple({subscription.api for subscription in self.subscriptions.values()})

    def subscribe(self, extension_name: str, body: bytes, api: str = TELEMETRY_API) -> tuple[int, bytes]:
        """Answer a `PUT /telemetry` (or, `api="logs"`, `PUT /logs`) from `extension_name`: (status, JSON body).

        Refused as Lambda refuses: after init (403 `Telemetry.SubscriptionClosed` / `Logs.SubscriptionClosed`),
        a request outside the API's ranges (400 `ValidationError`), a subscription with the other API than the
        extension already used (403 `Telemetry.SubscriptionConflict` / `Logs.SubscriptionConflict`), the Logs
        API under Managed Instances (403 `Logs.NotSupported`). A repeated subscription is idempotent: it
        updates the settings of the one there is, and never replays or duplicates an event.
        """
        prefix = "Logs" if api == LOGS_API else "Telemetry"
        what = "Logs API" if api == LOGS_API else "Telemetry API"
        if api == LOGS_API and self.multi_concurrency:
            return 403, documents.error_document(
                "Logs.NotSupported", "Logs API is not supported on Lambda Managed Instances: use the Telemetry API"
            )
        if self.backlog is None:
            return 403, documents.error_document(f"{prefix}.SubscriptionClosed", f"{what} subscription is closed")
        try:
            if api == LOGS_API:
                types, buffering, destination = parse_subscription(body, logs_api=True)
            else:
                types, buffering, destination = parse_subscription(body)
        except ValidationError as error:
            return 400, documents.error_document("ValidationError", str(error))
        old = self.subscriptions.get(extension_name)
        if old is not None and old.api != api:
            other = "Telemetry API" if api == LOGS_API else "Logs API"
            return 403, documents.error_document(
                f"{prefix}.SubscriptionConflict",
                f"extension {extension_name} is subscribed with the {other}: "
                "an extension subscribes with one of the Logs and Telemetry APIs",
            )
        if old is not None:
            old.update(types, buffering, destination)
            return 200, SUBSCRIBED
        subscription = Subscription(extension_name, types, buffering, destination, self.log, api)
        for category, telemetry_event, logs_event in self.backlog:
            event = telemetry_event if api == TELEMETRY_API else logs_event
            if event is not None:
                subscription.add(category, event)
        self.subscriptions[extension_name] = subscription
        state = {"name": extension_name, "state": "Subscribed", "types": sorted(types)}
        if api == LOGS_API:
            self.emit(None, None, logs=("platform.logsSubscription", state))
        else:
            self.emit("platform.telemetrySubscription", state, logs=None)
        return 200, SUBSCRIBED

    # -- the platform events ------------------------------------------------------------------
    def init_start(self, initialization_type: str, function_name: str) -> None:
        self.emit(
            "platform.initStart",
            {
                "initializationType": initialization_type,
                "phase": "init",
                "functionName": function_name,
                "functionVersion": "$LATEST",
            },
            logs=None,
        )

    def init_done(
        self,
        initialization_type: str,
        extensions: list[tuple[str, list[str]]],
        status: str,
        error_type: str | None,
        duration_ms: float,
    ) -> None:
        """Each extension's state, initRuntimeDone and initReport; then init is over (see `end_init`)."""
        if self.active:
            for name, events in extensions:
                self.emit("platform.extension", {"name": name, "state": "Ready", "events": events})
            phase = {"initializationType": initialization_type, "phase": "init"}
            self.emit("platform.initRuntimeDone", with_status(dict(phase), status, error_type), logs=None)
            report = dict(phase, metrics={"durationMs": rounded(duration_ms)})
            self.emit("platform.initReport", with_status(report, status, error_type), logs=None)
        self.end_init()

    def start(self, request_id: str, trace_id: str) -> None:
        if not self.active:  # nobody to tell: build no record (every invocation passes here)
            return
        self.emit(
            "platform.start",
            {"requestId": request_id, "version": "$LATEST", "tracing": tracing(trace_id)},
            logs=("platform.start", {"requestId": request_id, "version": "$LATEST"}),
        )

    def runtime_done(
        self, request_id: str, trace_id: str, status: str, error_type: str | None, duration_ms: float
    ) -> None:
        record = {
            "requestId": request_id,
            "metrics": {"durationMs": rounded(duration_ms)},
            "tracing": tracing(trace_id),
        }
        logs_status = "failure" if status == "error" else status  # the Logs API's: success, failure, timeout
        self.emit(
            "platform.runtimeDone",
            with_status(record, status, error_type),
            logs=("platform.runtimeDone", {"requestId": request_id, "status": logs_status}),
        )

    def report(
        self, request_id: str, trace_id: str, status: str, error_type: str | None, metrics: dict[str, Any]
    ) -> None:
        record = {"requestId": request_id, "metrics": metrics, "tracing": tracing(trace_id)}
        self.emit(None, None, logs=("platform.end", {"requestId": request_id}))
        self.emit(
            "platform.report",
            with_status(record, status, error_type),
            logs=("platform.report", {"requestId": request_id, "metrics": metrics}),
        )

    def fault(self, request_id: str) -> None:
        """The runtime went away during an invocation: the Logs API's `platform.fault` (a string)."""
        self.emit(
            None, None, logs=("platform.fault", f"RequestId: {request_id} Process exited before completing request")
        )

    def end_init(self) -> None:
        """Init is over: no more subscriptions, no more backlog."""
        self.backlog = None

    async def flush(self, timeout: float) -> None:
        """Deliver everything buffered now, waiting at most `timeout` seconds."""
        waits = [subscription.flush() for subscription in self.subscriptions.values()]
        if waits:
            await asyncio.wait([asyncio.ensure_future(wait) for wait in waits], timeout=max(0.0, timeout))

    def close(self) -> None:
        self.backlog = None
        for subscription in self.subscriptions.values():
            subscription.close()
        self.subscriptions.clear()


def parse_subscription(body: bytes, logs_api: bool = False) -> tuple[frozenset[str], dict[str, int], Destination]:
    """Types, buffering and destination of a subscription request; ValidationError if Lambda would refuse it.

    The Telemetry API requires one of its `schemaVersion`s; the Logs API's (`logs_api`) is optional."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValidationError(f"Invalid JSON: {error}") from None
    if not isinstance(request, dict):
        raise ValidationError("the request must be a JSON object")
    version = request.get("schemaVersion")
    versions = LOGS_SCHEMA_VERSIONS if logs_api else SCHEMA_VERSIONS
    if version not in versions and not (logs_api and version is None):
        raise ValidationError(f"schemaVersion must be one of {', '.join(versions)}")
    types = request.get("types")
    if not isinstance(types, list) or not types or any(kind not in CATEGORIES for kind in types):
        raise ValidationError(f"types must be a non-empty array of {', '.join(CATEGORIES)}")
    return frozenset(types), _buffering(request.get("buffering")), _destination(request.get("destination"))


def _buffering(value: object) -> dict[str, int]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValidationError("buffering must be an object")
    buffering = {}
    for name, (low, high, default) in BUFFERING_LIMITS.items():
        setting = value.get(name, default)
        if not isinstance(setting, int) or isinstance(setting, bool) or not low <= setting <= high:
            raise ValidationError(f"buffering.{name} must be an integer from {low} to {high}")
        buffering[name] = setting
    return buffering


def _destination(value: object) -> Destination:
    if not isinstance(value, dict):
        raise ValidationError("destination is required")
    protocol = value.get("protocol")
    if protocol == "HTTP":
        uri = value.get("URI")
        if not isinstance(uri, str) or not uri:
            raise ValidationError("destination.URI is required")
        parts = urlsplit(uri)
        if parts.scheme != "http":
            raise ValidationError("destination.URI must be an http:// URI")
        if parts.hostname not in SANDBOX_HOSTS:
            raise ValidationError("destination.URI host must be sandbox.localdomain")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not port:
            raise ValidationError("URI port is not provided")
        path = parts.path or "/"
        return HTTPDestination(port, path + (f"?{parts.query}" if parts.query else ""))
    if protocol == "TCP":
        port = value.get("port")
        if port is None and isinstance(value.get("URI"), str):  # "tcp://sandbox.localdomain:PORT" or "HOST:PORT"
            uri = value["URI"]
            try:
                parsed = urlsplit(uri if "://" in uri else f"tcp://{uri}")
                port = parsed.port if parsed.hostname in SANDBOX_HOSTS else None
            except ValueError:
                port = None
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ValidationError("destination.port must be an integer from 1 to 65535")
        return TCPDestination(port)
    raise ValidationError("destination.protocol must be HTTP or TCP")


class Destination:
    """Where a subscriber's batches go."""

    description = ""

    async def send(self, events: list[bytes]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release any connection held."""


LISTENER_CLOSE_WAIT = 2.0  # seconds to wait for a listener without Content-Length to close (it was asked to)


class HTTPDestination(Destination):
    """POSTs each batch as a JSON array to 127.0.0.1:port/path, one connection per batch."""

    def __init__(self, port: int, path: str):
        self.port = port
        self.path = path
        self.description = f"http://sandbox.localdomain:{port}{path}"

    async def send(self, events: list[bytes]) -> None:
        body = b"[" + b",".join(events) + b"]"
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: sandbox.localdomain:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                raise OSError("no HTTP response")
            status = int(parts[1])
            length = await _skip_headers(reader)
            if length is None:  # the body runs to the close (asked for): the listener is done with the batch then
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(reader.read(), LISTENER_CLOSE_WAIT)
            elif length:
                await reader.readexactly(length)
            if status >= 400:
                raise OSError(f"the listener answered {status}")
        finally:
            writer.close()


async def _skip_headers(reader: asyncio.StreamReader) -> int | None:
    """Read a response's headers; its Content-Length (None when absent: an HTTP/1.0 listener, say, whose answer
    ends when it closes the connection, after its handler has finished with the batch)."""
    length = None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return length
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())


class TCPDestination(Destination):
    """Writes each event as a line of JSON to one connection to 127.0.0.1:port, opened on first use."""

    def __init__(self, port: int):
        self.port = port
        self.description = f"tcp://127.0.0.1:{port}"
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, events: list[bytes]) -> None:
        if self._writer is None or self._writer.is_closing():
            _, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            self._writer.write(b"".join(event + b"\n" for event in events))
            await self._writer.drain()
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Subscription:
    """One subscriber's buffer and its delivery, in order, one batch at a time."""

    def __init__(
        self,
        name: str,
        types: frozenset[str],
        buffering: dict[str, int],
        destination: Destination,
        log: PlatformLog,
        api: str = TELEMETRY_API,
    ):
        self.name = name
        self.api = api
        self.types = types
        self.max_items = buffering["maxItems"]
        self.max_bytes = buffering["maxBytes"]
        self.timeout = buffering["timeoutMs"] / 1000
        self.destination = destination
        self.log = log
        self._buffer: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._batches: deque[list[bytes]] = deque()
        self._sender: asyncio.Task | None = None
        self._closed = False

    def add(self, category: str, event: bytes) -> None:
        if self._closed or category not in self.types:
            return
        self._buffer.append(event)
        self._size += len(event)
        if len(self._buffer) >= self.max_items or self._size >= self.max_bytes:
            self._cut()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._cut)

    def update(self, types: frozenset[str], buffering: dict[str, int], destination: Destination) -> None:
        """A repeated subscription: its settings from now on, nothing replayed, nothing lost."""
        self.types = types
        self.max_items = buffering["maxItems"]
        self.max_bytes = buffering["maxBytes"]
        self.timeout = buffering["timeoutMs"] / 1000
        if destination.description != self.destination.description:
            self.destination.close()
            self.destination = destination

    def flush(self) -> asyncio.Future:
        """Send what is buffered now; a future done when everything so far is delivered (or dropped)."""
        self._cut()
        if self._sender is None or self._sender.done():
            future = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future
        return asyncio.shield(self._sender)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._sender is not None:
            self._sender.cancel()
        self.destination.close()

    def _cut(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer or self._closed:
            return
        self._batches.append(self._buffer)
        self._buffer, self._size = [], 0
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_batches())

    async def _send_batches(self) -> None:
        while self._batches:
            batch = self._batches[0]
            error: Exception | None = None
            for attempt in range(DELIVERY_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(0.1 * 2**attempt)
                try:
                    await asyncio.wait_for(self.destination.send(batch), DELIVERY_TIMEOUT)
                    error = None
                    break
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as failure:
                    error = failure
                    self.destination.close()
            if error is not None:
                self.log.note(
                    f"telemetry: dropped {len(batch)} events for extension {self.name} "
                    f"({self.destination.description}): {str(error) or type(error).__name__}"
                )
            self._batches.popleft()


# -- platform records ---------------------------------------------------------------------------
def rounded(milliseconds: float) -> float:
    return round(milliseconds, 3)


def report_metrics(
    duration_ms: float, memory_mb: int, max_memory_used_mb: int, init_duration_ms: float | None
) -> dict[str, object]:
    metrics: dict[str, object] = {
        "durationMs": rounded(duration_ms),
        "billedDurationMs": max(1, math.ceil(duration_ms)),
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = rounded(init_duration_ms)
    return metrics


def with_status(record: dict[str, Any], status: str, error_type: str | None) -> dict[str, Any]:
    record["status"] = status
    if error_type and status != "success":
        record["errorType"] = error_type
    return record


def tracing(trace_id: str) -> dict[str, str]:
    return {"type": "X-Amzn-Trace-Id", "value": trace_id}
