"""Resolve a handler string (`module.function`, `dir/module.function`) to the function, once.

Grammar and failure classes are awslambdaric 4.2.2's: split on the last dot, refuse built-in module names,
import with `/` read as `.`, then look the function up on the module.
"""

from __future__ import annotations

import importlib
import os
import sys

from fastric.runtime.faults import FaultError

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect
_CO_ASYNC_GENERATOR = 0x200  # inspect.CO_ASYNC_GENERATOR


def _async_kind(handler: Callable) -> int:
    """CO_COROUTINE or CO_ASYNC_GENERATOR for the function behind a handler (itself, its `__call__`, or a
    partial's `func`); 0 for a plain function."""
    method = getattr(handler, "__call__", None)  # noqa: B004 (the bound method, not a callable() test)
    for candidate in (handler, method, getattr(handler, "func", None)):
        code = getattr(candidate, "__code__", None)
        if code is not None and code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR):
            return code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR)
    return 0


def is_async_handler(handler: Callable) -> bool:
    """True for `async def` functions and async generator functions (`fastric.streaming` handlers), and for
    callables (or partials) whose function is one: they run on the uvloop loop."""
    return _async_kind(handler) != 0


def is_async_generator_handler(handler: Callable) -> bool:
    """True when calling the handler returns an async generator (it cannot be awaited)."""
    return _async_kind(handler) == _CO_ASYNC_GENERATOR


def add_task_root_to_path() -> None:
    """Put `LAMBDA_TASK_ROOT` first on sys.path when it is set and not there yet (as Lambda's wrapper does)."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root and task_root not in sys.path:
        sys.path.insert(0, task_root)


def load_handler(handler: str) -> Callable:
    """Import the handler's module and return the handler.

    Raises FaultError for the `Runtime.*` init failures; any other exception raised while the module is
    imported propagates unchanged, to be reported with its own type and stack trace.
    """
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            "Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module"
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise FaultError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        raise FaultError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc}",
            ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)],
        ) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise FaultError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None
