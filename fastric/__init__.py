"""fastric: a fast, drop-in AWS Lambda Runtime Interface Client for Python.

`import fastric` stays light: the names below are imported from the runtime on first use (PEP 562).
"""

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from fastric.runtime.lifecycle import after_response as after_response
    from fastric.runtime.lifecycle import on_shutdown as on_shutdown
    from fastric.runtime.streaming import http_prelude as http_prelude
    from fastric.runtime.streaming import streaming as streaming

# Public names for handler code, imported on first use (PEP 562): `import fastric` stays as light as this file,
# and the emulator, which imports `fastric.__version__`, never pulls the runtime in.
_LAZY = {
    "streaming": "fastric.runtime.streaming",
    "http_prelude": "fastric.runtime.streaming",
    "on_shutdown": "fastric.runtime.lifecycle",
    "after_response": "fastric.runtime.lifecycle",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastric' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
