"""Test a Lambda function through the real runtime, locally: the `lambda_function` pytest fixture and `LocalFunction`.

    def test_echo(lambda_function):
        fn = lambda_function("app.handler", task_root="src")
        assert fn.invoke({"x": 1}).payload == {"x": 1}

    with LocalFunction("app.handler", task_root="src") as fn:   # without pytest
        result = fn.invoke({"x": 1})

`import fastric.testing` stays light (the pytest plugin imports it when pytest starts): the names below are
imported on first use (PEP 562), and the emulator itself runs in a process of its own.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from fastric.testing.function import LocalFunction as LocalFunction
    from fastric.testing.function import LocalFunctionError as LocalFunctionError
    from fastric.testing.function import RuntimeNotInstalled as RuntimeNotInstalled
    from fastric.testing.results import Headers as Headers
    from fastric.testing.results import HTTPResult as HTTPResult
    from fastric.testing.results import InvokeResult as InvokeResult
    from fastric.testing.results import InvokeStream as InvokeStream

_LAZY = {
    "LocalFunction": "fastric.testing.function",
    "LocalFunctionError": "fastric.testing.function",
    "RuntimeNotInstalled": "fastric.testing.function",
    "InvokeResult": "fastric.testing.results",
    "InvokeStream": "fastric.testing.results",
    "HTTPResult": "fastric.testing.results",
    "Headers": "fastric.testing.results",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastric.testing' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
