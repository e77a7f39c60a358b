"""The logging state of the runtime process: one object, `state`, in place of module globals.

`state.request_id` / `state.tenant_id` are the one place the ids that log records carry live: `set_request`
writes them per invocation, `LambdaLoggerFilter` reads them for every record. By default they are plain attributes,
one value for the whole process as in awslambdaric (threads the handler starts see them too).

`make_ids_task_local()` switches the object, in place, to `TaskLocalLogState`, where they are held in
`contextvars.ContextVar`s: each asyncio Task (each concurrent invocation) then sees the ids it set itself, and so
does a thread it starts with `asyncio.to_thread` (a plain `threading.Thread` starts with an empty context: "").
The switch changes the object's class rather than the code reading it, so neither `set_request` nor the filter
tests a mode on every call, and every module holding `state` sees the switch.
"""

from __future__ import annotations

from fastric.runtime.logs.sinks import StandardLogSink

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    import logging
    from contextvars import ContextVar

    from fastric.runtime.logs.sinks import LogSink


class LogState:
    """What `setup()` decided (sink, format, timestamp precision, the root handler) and the current ids."""

    __slots__ = ("sink", "json_format", "milliseconds", "log_level", "root_handler", "request_id", "tenant_id")

    def __init__(self) -> None:
        self.sink: LogSink = StandardLogSink()
        self.json_format = False
        self.milliseconds = False
        self.log_level = ""  # AWS_LAMBDA_LOG_LEVEL as `parse_log_level` reads it; "" leaves the root level alone
        self.root_handler: logging.Handler | None = None
        self.request_id = ""  # "" before the first invocation, as awslambdaric stamps it
        self.tenant_id: str | None = None


class TaskLocalLogState(LogState):
    """`LogState` whose ids are per asyncio Task: each Task reads the ids set in its own context.

    Same slots (so an instance can switch class in place); the ids' slots are shadowed by the properties below.
    """

    __slots__ = ()
    _request_id_var: ContextVar[str]
    _tenant_id_var: ContextVar[str | None]

    @property
    def request_id(self) -> str:
        return self._request_id_var.get()

    @request_id.setter
    def request_id(self, value: str) -> None:
        self._request_id_var.set(value)

    @property
    def tenant_id(self) -> str | None:
        return self._tenant_id_var.get()

    @tenant_id.setter
    def tenant_id(self, value: str | None) -> None:
        self._tenant_id_var.set(value)


def make_ids_task_local(log_state: LogState, enabled: bool = True) -> None:
    """Switch `log_state` to task-local ids (or back), keeping the current ids as the current context's."""
    request_id, tenant_id = log_state.request_id, log_state.tenant_id
    if enabled and not isinstance(log_state, TaskLocalLogState):
        if not hasattr(TaskLocalLogState, "_request_id_var"):
            from contextvars import ContextVar

            TaskLocalLogState._request_id_var = ContextVar("fastric_request_id", default="")
            TaskLocalLogState._tenant_id_var = ContextVar("fastric_tenant_id", default=None)
        log_state.__class__ = TaskLocalLogState
    elif not enabled:
        log_state.__class__ = LogState
    log_state.request_id, log_state.tenant_id = request_id, tenant_id


def parse_log_format(value: str | None) -> bool:
    """True for JSON (`AWS_LAMBDA_LOG_FORMAT`, case-insensitive); anything else is TEXT."""
    return value is not None and value.upper() == "JSON"


def parse_log_level(value: str | None) -> str:
    """`AWS_LAMBDA_LOG_LEVEL` as awslambdaric reads it: unset → "", exactly "TRACE" → "DEBUG", else upper-cased."""
    if value is None:
        return ""
    return "DEBUG" if value == "TRACE" else value.upper()


state = LogState()
