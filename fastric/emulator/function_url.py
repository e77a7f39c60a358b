"""`--function-url`: plain HTTP requests become Function URL invocations (API Gateway payload format 2.0).

The request is mapped to the event Lambda builds for a Function URL (auth type NONE), and the function's
result back to an HTTP response as Lambda maps it:

- an object with `statusCode`: its `statusCode`, `headers`, `cookies` (one `Set-Cookie` each) and `body`
  (base64-decoded when `isBase64Encoded`); Content-Type defaults to `application/json`;
- anything else (an object without `statusCode`, a list, a string, a number): 200 `application/json` with the
  result's JSON as the body;
- a function error, a timeout or a crash: 502 `Internal Server Error`;
- a streamed response of type `application/vnd.awslambda.http-integration-response`: a JSON prelude
  (`statusCode`, `headers`, `cookies`), 8 NUL bytes, then the body, relayed to the client as it arrives.
  Other streamed responses are relayed as a 200 with their content type. An error after the head went out
  cuts the connection before the last chunk, so the client sees a truncated body.

Request bodies of text types (`text/*`, JSON, XML, JavaScript) valid as UTF-8 are passed as text; other
bodies are base64-encoded with `isBase64Encoded: true`. The Cookie header becomes `cookies`; `x-forwarded-for`,
`-proto` and `-port` are added, as Lambda's front end adds them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

import orjson

from . import documents
from .config import FunctionConfig
from .httpserver import App, Exchange
from .invocation import Invocation, ResponseSink
from .report import PlatformLog
from .scheduler import Scheduler

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
MAX_PRELUDE = 1024 * 1024  # a stream still without its 8 NULs past this is malformed
EMULATOR_PATH = re.compile(r"/\d{4}-\d{2}-\d{2}/")  # /2015-03-31/…, /2021-11-15/…: the emulator's own endpoints
TEXT_TYPES = frozenset({"application/json", "application/javascript", "application/xml", "application/x-javascript"})
HOP_BY_HOP = frozenset(
    {"connection", "content-length", "date", "keep-alive", "trailer", "transfer-encoding", "upgrade"}
)
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
BAD_GATEWAY = b"Internal Server Error"

Headers = list[tuple[str, str]]


class MalformedResponse(Exception):
    """A function result Lambda could not turn into an HTTP response (the client gets 502)."""


# -- request → event ----------------------------------------------------------------------------
def is_text(content_type: str | None) -> bool:
    """Whether a request body of this type is passed as text (else base64)."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_TYPES or media_type.endswith(("+json", "+xml"))


def query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded query parameters, the values of a repeated key joined with commas."""
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def event_headers(header_list: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Lower-cased headers (repeated ones joined with commas) without Cookie, and the cookies, one per item."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, raw_value in header_list:
        value = _utf8(raw_value)
        if name == "cookie":
            cookies.extend(item.strip() for item in value.split(";") if item.strip())
        else:
            headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers, cookies


def request_event(exchange: Exchange, body: bytes, request_id: str, api_id: str) -> dict[str, Any]:
    """The payload-format-2.0 event of a Function URL request."""
    transport = exchange.conn.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    local = transport.get_extra_info("sockname") if transport is not None else None
    source_ip = str(peer[0]) if peer else "127.0.0.1"
    headers, cookies = event_headers(exchange.header_list)
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    if local:
        headers.setdefault("x-forwarded-port", str(local[1]))
    path, query = _utf8(exchange.path), _utf8(exchange.query)
    now = time.time()
    event: dict[str, Any] = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query}
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query_parameters(query)
    event["requestContext"] = {
        "accountId": "anonymous",
        "apiId": api_id,
        "domainName": headers.get("host") or f"{api_id}.lambda-url.local",
        "domainPrefix": api_id,
        "http": {
            "method": exchange.method,
            "path": path,
            "protocol": f"HTTP/{exchange.http_version}",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    base64_encoded = False
    if body:
        text = _utf8_or_none(body) if is_text(headers.get("content-type")) else None
        base64_encoded = text is None
        event["body"] = base64.b64encode(body).decode("ascii") if text is None else text
    event["isBase64Encoded"] = base64_encoded
    return event


def url_id(function_name: str) -> str:
    """A stable 32-character id standing for the `<url-id>` of https://<url-id>.lambda-url.<region>.on.aws."""
    return hashlib.md5(function_name.encode(), usedforsecurity=False).hexdigest()


# -- result → response --------------------------------------------------------------------------
def buffered_response(content_type: str, payload: bytes) -> tuple[int, Headers, bytes]:
    """The HTTP response for a function's whole (non-streamed) result."""
    if content_type.split(";", 1)[0].strip().lower() == HTTP_INTEGRATION:
        head, separator, body = payload.partition(PRELUDE_END)
        if not separator:
            raise MalformedResponse("an http-integration response without the 8 NUL bytes after its prelude")
        status, headers = prelude_head(head)
        return status, headers, body
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise MalformedResponse("the result is not JSON") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, [("Content-Type", "application/json")], payload
    status, headers = _head_of(result)
    return status, headers, _body_of(result)


def prelude_head(prelude: bytes) -> tuple[int, Headers]:
    """Status and headers from a streamed response's JSON prelude."""
    try:
        value = orjson.loads(prelude)
    except orjson.JSONDecodeError:
        raise MalformedResponse("the http-integration prelude is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedResponse("the http-integration prelude is not a JSON object")
    return _head_of(value, default_status=200)


def _head_of(value: dict[str, Any], default_status: int | None = None) -> tuple[int, Headers]:
    status = value.get("statusCode", default_status)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status!r} is not an HTTP status code")
    headers: Headers = []
    given = value.get("headers") or {}
    if not isinstance(given, dict):
        raise MalformedResponse("headers is not an object")
    for name, raw in given.items():
        if name.lower() not in HOP_BY_HOP:
            headers.append((name, _header_value(raw)))
    cookies = value.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResponse("cookies is not a list")
    headers.extend(("Set-Cookie", _header_value(cookie)) for cookie in cookies)
    for name, header_value in headers:
        if not HEADER_NAME.fullmatch(name) or any(c in header_value for c in "\r\n\0"):
            raise MalformedResponse(f"header {name!r} cannot be sent")
        try:
            header_value.encode("latin-1")
        except UnicodeEncodeError:
            raise MalformedResponse(f"header {name!r} is not Latin-1") from None
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ("Content-Type", "application/json"))
    return status, headers


def _body_of(result: dict[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        return orjson.dumps(body)
    if result.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponse("isBase64Encoded is true but the body is not base64") from None
    return body.encode("utf-8")


def _header_value(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _utf8(latin1: str) -> str:
    """Text the HTTP parser decoded as Latin-1, re-read as the UTF-8 clients send."""
    return latin1.encode("latin-1").decode("utf-8", "replace")


def _utf8_or_none(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# -- the HTTP side ------------------------------------------------------------------------------
class FunctionURLSink(ResponseSink):
    """Maps an invocation's result to the HTTP response of a Function URL request, streaming it if it streams."""

    def __init__(self, exchange: Exchange, log: PlatformLog):
        self.exchange = exchange
        self.log = log
        self._prelude: bytearray | None = None  # a streamed http-integration response still in its prelude
        self._buffered: tuple[int, Headers, bytearray] | None = None  # HEAD and HTTP/1.0 clients get no chunks
        self._open = False  # a chunked response's head went out
        self._over = False

    def _headers(self, headers: Headers) -> Headers:
        return [*headers, ("X-Amzn-RequestId", self.request_id)]

    def complete(self, status: int, content_type: str, body: bytes, function_error: bool) -> None:
        if function_error or status != 200:
            return self._bad_gateway(None)
        try:
            status, headers, body = buffered_response(content_type, body)
        except MalformedResponse as error:
            return self._bad_gateway(str(error))
        self._respond(status, headers, body)

    def start(self, content_type: str) -> None:
        if content_type.split(";", 1)[0].strip().lower() == HTTP_INTEGRATION:
            self._prelude = bytearray()
        else:
            self._start(200, [("Content-Type", content_type)])

    def write(self, data: bytes) -> None:
        if self._over:
            return
        if self._prelude is not None:
            self._prelude += data
            index = self._prelude.find(PRELUDE_END)
            if index < 0:
                if len(self._prelude) > MAX_PRELUDE:
                    self._bad_gateway(f"no 8 NUL bytes after the http-integration prelude in {MAX_PRELUDE} bytes")
                return
            prelude, data = bytes(self._prelude[:index]), bytes(self._prelude[index + len(PRELUDE_END) :])
            self._prelude = None
            try:
                status, headers = prelude_head(prelude)
            except MalformedResponse as error:
                return self._bad_gateway(str(error))
            self._start(status, headers)
        if self._buffered is not None:
            self._buffered[2].extend(data)
        else:
            self.exchange.write(data)

    def end(self, error_type: str | None, error_document: bytes | None) -> None:
        if self._over:
            return
        if error_document is not None:
            if self._open:  # the status is gone: cut the body short so the client knows it is incomplete
                self._over = True
                transport = self.exchange.conn.transport
                if transport is not None:
                    transport.close()
                return
            return self._bad_gateway(None)
        if self._prelude is not None:
            return self._bad_gateway("the stream ended before the 8 NUL bytes after its http-integration prelude")
        if self._buffered is not None:
            status, headers, body = self._buffered
            return self._respond(status, headers, bytes(body))
        self._over = True
        self.exchange.end()

    def when_writable(self, callback: Callable[[], None]) -> None:
        self.exchange.when_writable(callback)

    @property
    def writable(self) -> bool:
        return self.exchange.writable

    # -- helpers ---------------------------------------------------------------------------
    def _start(self, status: int, headers: Headers) -> None:
        if self.exchange.method == "HEAD" or self.exchange.http_version == "1.0":
            self._buffered = (status, headers, bytearray())
        else:
            self._open = True
            self.exchange.start_stream(status, self._headers(headers))

    def _respond(self, status: int, headers: Headers, body: bytes) -> None:
        self._over = True
        self.exchange.respond(status, self._headers(headers), b"" if self.exchange.method == "HEAD" else body)

    def _bad_gateway(self, reason: str | None) -> None:
        if reason is not None:
            self.log.note(f"function URL: {self.request_id}: 502: {reason}")
        self._respond(502, [("Content-Type", "application/json")], BAD_GATEWAY)


class FunctionURL:
    """Turns any HTTP request into a Function URL invocation on the scheduler."""

    def __init__(self, scheduler: Scheduler, config: FunctionConfig, log: PlatformLog):
        self.scheduler = scheduler
        self.log = log
        self.api_id = url_id(config.function_name)

    async def __call__(self, exchange: Exchange) -> None:
        body = await exchange.read_body()
        if exchange.over_limit:
            return exchange.respond(413, [("Content-Type", "application/json")], documents.PAYLOAD_TOO_LARGE)
        invocation = Invocation(b"", FunctionURLSink(exchange, self.log), trace_id=exchange.header("x-amzn-trace-id"))
        invocation.event = orjson.dumps(request_event(exchange, body, invocation.request_id, self.api_id))
        if len(invocation.event) > documents.MAX_PAYLOAD:
            return exchange.respond(413, [("Content-Type", "application/json")], documents.PAYLOAD_TOO_LARGE)
        exchange.on_close(invocation.abandon)
        self.scheduler.submit(invocation)


class FunctionURLRouter:
    """The emulator's endpoints (paths under a dated API version, `/2015-03-31/…`) to `api`, every other path to
    `function_url`."""

    def __init__(self, api: App, function_url: FunctionURL):
        self.api = api
        self.function_url = function_url

    def __call__(self, exchange: Exchange) -> Coroutine[Any, Any, None] | None:
        if EMULATOR_PATH.match(exchange.path):
            return self.api(exchange)
        return self.function_url(exchange)
