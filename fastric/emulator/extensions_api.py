"""The Extensions API (`/2020-01-01/extension/...`), Telemetry API (`/2022-07-01/telemetry`) and Logs API
(`/2020-08-15/logs`) over HTTP.

They are served on the Runtime API's address (`AWS_LAMBDA_RUNTIME_API`), answering as RAPID does:
- `POST extension/register` (`Lambda-Extension-Name`, body `{"events": [...]}`): 200 with
  `Lambda-Extension-Identifier` and `{"functionName", "functionVersion", "handler"}` (plus `accountId` with
  `Lambda-Extension-Accept-Feature: accountId`); 403 with an `Extension.*` error type otherwise.
- `GET extension/event/next`: 200 with the next event and `Lambda-Extension-Event-Identifier`.
- `POST extension/init/error` and `extension/exit/error` (`Lambda-Extension-Function-Error-Type`): 202.
- `PUT telemetry` and `PUT logs`: 200 `"OK"`; 400 `ValidationError`; 403 `Telemetry.SubscriptionClosed` /
  `Logs.SubscriptionClosed` after init, `*.SubscriptionConflict` when the extension subscribed with the other
  API, `Logs.NotSupported` for the Logs API under Managed Instances (see `telemetry.py`).
Every call but register needs `Lambda-Extension-Identifier` (403 `Extension.MissingExtensionIdentifier`,
`Extension.InvalidExtensionIdentifier`, `Extension.UnknownExtensionIdentifier`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any

import orjson

from . import documents
from .config import ACCOUNT_ID
from .extensions import Extension, Extensions, Refusal
from .httpserver import App, Exchange
from .runtime_api import RuntimeAPI, canceller, refuse
from .sandbox import Sandbox
from .telemetry import LOGS_API

EXTENSION_PREFIX = "/2020-01-01/extension/"
TELEMETRY_PATH = "/2022-07-01/telemetry"
LOGS_PATH = "/2020-08-15/logs"
SUBSCRIPTION_PATHS = (TELEMETRY_PATH, LOGS_PATH)
JSON = [("Content-Type", "application/json")]


def local_apis(sandbox: Sandbox) -> App:
    """The app for the address the bootstrap and extensions call: Runtime, Extensions and Telemetry APIs."""
    runtime, extensions = RuntimeAPI(sandbox), ExtensionsAPI(sandbox)

    def route(exchange: Exchange) -> Coroutine[Any, Any, None] | None:
        path = exchange.path
        if path.startswith(EXTENSION_PREFIX) or path.rstrip("/") in SUBSCRIPTION_PATHS:
            return extensions(exchange)
        return runtime(exchange)

    return route


class ExtensionsAPI:
    """Routes extensions' requests to the extensions of the sandbox's environments."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    async def __call__(self, exchange: Exchange) -> None:
        path, method = exchange.path, exchange.method
        if path.rstrip("/") == TELEMETRY_PATH:
            expected, handler = "PUT", self.subscribe
        elif path.rstrip("/") == LOGS_PATH:
            expected, handler = "PUT", self.subscribe_logs
        else:
            route = path[len(EXTENSION_PREFIX) :]
            if route == "register":
                expected, handler = "POST", self.register
            elif route == "event/next":
                expected, handler = "GET", self.next
            elif route == "init/error":
                expected, handler = "POST", self.init_error
            elif route == "exit/error":
                expected, handler = "POST", self.exit_error
            else:
                return await refuse(exchange, 404, documents.NOT_FOUND)
        if method != expected:
            return await refuse(exchange, 405, documents.METHOD_NOT_ALLOWED)
        try:
            await handler(exchange)
        except Refusal as refusal:
            await refuse(exchange, refusal.status, refusal.document)

    async def register(self, exchange: Exchange) -> None:
        body = await exchange.read_body()
        name = exchange.header("lambda-extension-name")
        if not name:
            raise Refusal("Extension.InvalidExtensionName", "Empty extension name")
        events = _registered_events(body)
        environments = self.sandbox.environments
        if not environments:
            raise Refusal("Extension.RegistrationClosed", "Extension registration closed already")
        extension = environments[-1].register(name, events)
        config = self.sandbox.config
        answer = {"functionName": config.function_name, "functionVersion": "$LATEST", "handler": config.handler or ""}
        features = {
            feature.strip() for feature in (exchange.header("lambda-extension-accept-feature") or "").split(",")
        }
        if "accountId" in features:
            answer["accountId"] = ACCOUNT_ID
        exchange.respond(200, [*JSON, ("Lambda-Extension-Identifier", extension.id)], orjson.dumps(answer))

    async def next(self, exchange: Exchange) -> None:
        environment, extension = self._identify(exchange)
        await exchange.read_body()
        waiting = asyncio.ensure_future(environment.next_event(extension))
        exchange.on_close(canceller(waiting))
        try:
            event = await waiting
        except asyncio.CancelledError:
            return
        if exchange.closed:  # the poller went away as it was served: keep the event for its next poll
            extension.take_back(event)
            return
        headers = [
            *JSON,
            ("Lambda-Extension-Event-Identifier", str(uuid.uuid4())),
            ("Lambda-Extension-Identifier", extension.id),
        ]
        exchange.respond(200, headers, event)

    async def init_error(self, exchange: Exchange) -> None:
        await self._error(exchange, during_init=True)

    async def exit_error(self, exchange: Exchange) -> None:
        await self._error(exchange, during_init=False)

    async def _error(self, exchange: Exchange, during_init: bool) -> None:
        environment, extension = self._identify(exchange)
        body = await exchange.read_body()
        error_type = exchange.header("lambda-extension-function-error-type")
        if not error_type:
            raise Refusal("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found")
        environment.report_error(extension, error_type, during_init)
        if body.strip():
            self.sandbox.log.note(f"extension {extension.name} error: {body.decode('utf-8', 'replace')}")
        exchange.respond(202, JSON, documents.ACCEPTED)

    async def subscribe(self, exchange: Exchange) -> None:
        environment, extension = self._identify(exchange)
        body = await exchange.read_body()
        status, answer = environment.telemetry.subscribe(extension.name, body)
        exchange.respond(status, JSON, answer)

    async def subscribe_logs(self, exchange: Exchange) -> None:
        environment, extension = self._identify(exchange)
        body = await exchange.read_body()
        status, answer = environment.telemetry.subscribe(extension.name, body, api=LOGS_API)
        exchange.respond(status, JSON, answer)

    def _identify(self, exchange: Exchange) -> tuple[Extensions, Extension]:
        """The extension a request comes from, by its Lambda-Extension-Identifier; else a Refusal."""
        identifier = exchange.header("lambda-extension-identifier")
        if not identifier:
            raise Refusal("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
        try:
            uuid.UUID(identifier)
        except ValueError:
            raise Refusal("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier") from None
        for environment in reversed(self.sandbox.environments):
            extension = environment.find(identifier)
            if extension is not None:
                return environment, extension
        raise Refusal("Extension.UnknownExtensionIdentifier", f"Unknown extension {identifier}")


def _registered_events(body: bytes) -> list[str]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Refusal("InvalidRequestFormat", str(error)) from None
    if not isinstance(request, dict):
        raise Refusal("InvalidRequestFormat", "the body must be a JSON object")
    if request.get("configurationKeys"):
        raise Refusal("InvalidRequestFormat", "configurationKeys are deprecated; use environment variables instead")
    events = request.get("events") or []
    if not isinstance(events, list) or not all(isinstance(event, str) for event in events):
        raise Refusal("InvalidRequestFormat", "events must be an array of strings")
    return events
