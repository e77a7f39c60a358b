"""fastric: a fast, drop-in AWS Lambda Runtime Interface Client for Python.

`import fastric` stays light: the names below are imported from the runtime on first use (PEP 562).
"""

__version__ = "0.1.0"

_LAZY = {  # public name -> the module that defines it
    "on_shutdown": "fastric.runtime.lifecycle",
    "after_response": "fastric.runtime.lifecycle",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastric' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted([*globals(), *_LAZY])
