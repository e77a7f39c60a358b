"""Run a function right after a module is first imported, without importing it now.

`logs.setup()` configures the root logger as awslambdaric does, but `logging` (with `re`, `threading` and
`traceback` behind it) is a fifth of awslambdaric's own start-up; a function that never logs need not pay for it.
So when `logging` is not imported yet, `after_import("logging", configure)` puts a finder first on
`sys.meta_path`. It finds nothing itself: when `logging` is imported, by the function's code or by fastric, it asks
the other finders for the module and wraps the loader they give, so that `configure` runs as soon as the module's
code has run, before the `import` statement that asked for it returns. The module then looks exactly as if
imported normally (its `__loader__` and `__spec__.loader` are the real loader), and the finder is gone.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations are not evaluated
if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any


def after_import(name: str, then: Callable[[], None]) -> None:
    """Call `then()` right after `name` is imported: now if it is imported already, else on its first import."""
    if name in sys.modules:
        then()
        return
    if not any(isinstance(finder, _Watch) and finder.name == name for finder in sys.meta_path):
        sys.meta_path.insert(0, _Watch(name, then))


def catch_up(name: str) -> None:
    """If `name` got imported while a call waited for it (another finder found it first), make that call now."""
    if name in sys.modules:
        for finder in list(sys.meta_path):
            if isinstance(finder, _Watch) and finder.name == name:
                sys.meta_path.remove(finder)
                finder.then()


def pending(name: str) -> bool:
    """Whether a call waits for `name` to be imported."""
    return any(isinstance(finder, _Watch) and finder.name == name for finder in sys.meta_path)


class _Watch:
    """A meta path finder for one module name that delegates the finding and wraps the loader found."""

    def __init__(self, name: str, then: Callable[[], None]):
        self.name = name
        self.then = then

    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != self.name:
            return None
        try:
            sys.meta_path.remove(self)  # once; the import system stops iterating when a spec is returned
        except ValueError:
            pass
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenLoader(spec.loader, self.then)
        return spec


class _ThenLoader:
    """The real loader, then `then()`; puts the real loader back on the module before its code runs."""

    def __init__(self, loader: Any, then: Callable[[], None]):
        self.loader = loader
        self.then = then

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.then()

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... asked before exec_module
        return getattr(self.loader, name)
