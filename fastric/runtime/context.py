"""The context object handed to handlers: attributes, types and repr exactly as awslambdaric 4.2.2's."""

from __future__ import annotations

import os
import sys
import time

from fastric.runtime import logs
from fastric.runtime.faults import FaultError

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from typing import Any

_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext:
    """What `handler(event, context)` receives as `context`.

    A plain instance `__dict__`, as awslambdaric's: `vars(context)` shows the same twelve attributes in the same
    order (costs no more to build than `__slots__` did).
    """

    aws_request_id: str
    log_group_name: str | None
    log_stream_name: str | None
    function_name: str | None
    memory_limit_in_mb: str | None
    function_version: str | None
    invoked_function_arn: str | None
    tenant_id: str | None
    _w3c_fields: dict
    client_context: ClientContext | None
    identity: CognitoIdentity
    _epoch_deadline_time_in_ms: int

    def __init__(
        self,
        invoke_id: str,
        client_context: str | dict | None,
        cognito_identity: str | dict | None,
        epoch_deadline_time_in_ms: int,
        invoked_function_arn: str | None = None,
        tenant_id: str | None = None,
    ):
        self.aws_request_id = invoke_id
        (
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
        ) = _environment()
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        if client_context is None:
            self._w3c_fields = {}
            self.client_context = None
        else:
            self._w3c_fields, self.client_context = _read_client_context(client_context)
        self.identity = make_cognito_identity(
            cognito_identity
            if cognito_identity is None or isinstance(cognito_identity, dict)
            else _parse_json(cognito_identity, "Cognito Identity")
        )
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the deadline (wall clock, as awslambdaric); 0 once past or when unknown."""
        remaining = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def w3c(self) -> dict:
        """The W3C trace fields (traceparent, tracestate, baggage) the caller's client context carried."""
        return dict(self._w3c_fields)

    def log(self, msg) -> None:
        """Write `msg` to the function's log as is (no newline added)."""
        logs.context_log(str(msg))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},identity={self.identity},tenant_id={self.tenant_id}])"
        )


_ENVIRONMENT = (
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
)
_ENVIRONMENT_KEYS = tuple(name.encode() for name in _ENVIRONMENT)
_FS_ENCODING = sys.getfilesystemencoding()


def _environment() -> tuple[str | None, ...]:
    """The five variables, read now (as awslambdaric reads them for every context): `os.environ.get` for each,
    from the bytes mapping behind `os.environ` where there is one. The bytes are looked up for every context; they
    are decoded again only when one of them changed (a handler may set them), so the answer is always today's.
    (Five explicit `get`s: half the instructions of `tuple(map(get, keys))`, a tenth of five `os.environ.get`s.)"""
    global _last_raw, _last_values
    data = getattr(os.environ, "_data", None)
    if data is None or not _POSIX:
        return tuple(os.environ.get(name) for name in _ENVIRONMENT)
    get = data.get
    raw = (get(_GROUP), get(_STREAM), get(_NAME), get(_MEMORY), get(_VERSION))
    if raw != _last_raw:
        _last_values = tuple(None if value is None else value.decode(_FS_ENCODING, "surrogateescape") for value in raw)
        _last_raw = raw
    return _last_values


_GROUP, _STREAM, _NAME, _MEMORY, _VERSION = _ENVIRONMENT_KEYS
_POSIX = os.name == "posix"
_last_raw: tuple = ()
_last_values: tuple[str | None, ...] = ()


def _read_client_context(value: str | dict) -> tuple[dict, ClientContext | None]:
    """The W3C fields and the client context in a client context (awslambdaric pops `w3c` out of it)."""
    data = dict(value) if isinstance(value, dict) else _parse_json(value, "Client Context")
    w3c = data.pop("w3c", None) if isinstance(data, dict) else None
    fields = {k: w3c[k] for k in _W3C_FIELDS if isinstance(w3c.get(k), str)} if isinstance(w3c, dict) else {}
    return fields, make_client_context(data)


def _parse_json(text: str, what: str) -> Any:
    import json  # here, not at the top: only invocations that carry a client context or an identity need it

    try:
        return json.loads(text)
    except Exception as exc:
        raise FaultError("Runtime.LambdaContextUnmarshalError", f"Unable to parse {what} JSON: {exc}") from None


class CognitoIdentity:
    """`context.identity`: the Amazon Cognito identity of the caller (attributes None when absent)."""

    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]
    cognito_identity_id: str | None
    cognito_identity_pool_id: str | None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    """`context.client_context.client`: the calling mobile app."""

    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]
    installation_id: str | None
    app_title: str | None
    app_version_name: str | None
    app_version_code: str | None
    app_package_name: str | None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([installation_id={self.installation_id},app_title={self.app_title},"
            f"app_version_name={self.app_version_name},app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}])"
        )


class ClientContext:
    """`context.client_context`: the client context the caller sent (custom, env, client)."""

    __slots__ = ["custom", "env", "client"]
    custom: dict | None
    env: dict | None
    client: Client | None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}([custom={self.custom},env={self.env},client={self.client}])"


def make_cognito_identity(data: dict | None) -> CognitoIdentity:
    identity = CognitoIdentity()
    if data:
        identity.cognito_identity_id = data.get("cognitoIdentityId")
        identity.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")
    else:  # what most invocations carry: no identity
        identity.cognito_identity_id = identity.cognito_identity_pool_id = None
    return identity


def make_client_context(data: dict | None) -> ClientContext | None:
    if data is None:
        return None
    context = ClientContext()
    context.custom = data.get("custom")
    context.env = data.get("env")
    client = data.get("client")
    if client is None:
        context.client = None
    else:
        context.client = Client()
        for name in Client.__slots__:
            setattr(context.client, name, client.get(name))
    return context
