"""The pytest plugin (entry point `pytest11`: `fastric`): the `lambda_function` fixture.

Loading it imports nothing but pytest's own names: the emulator starts, in a process of its own, when a test
first calls the fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastric.testing.function import LocalFunction


@pytest.fixture
def lambda_function() -> Iterator[Callable[..., LocalFunction]]:
    """A factory of started `LocalFunction`s; every one is stopped when the test ends, whatever happened.

    `lambda_function(handler=None, *, task_root=".", command=None, env=None, timeout=3.0, memory=128,
    extensions=None, concurrency=None, runtime="fastric", function_name="function", import_profile=False)`.
    `runtime="awslambdaric"` skips the test when awslambdaric is not installed.
    """
    started: list[LocalFunction] = []

    def start(
        handler: str | None = None,
        *,
        task_root: Any = ".",
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 3.0,
        memory: int = 128,
        extensions: Any = None,
        concurrency: int | None = None,
        runtime: str = "fastric",
        function_name: str = "function",
        import_profile: bool = False,
    ) -> LocalFunction:
        from fastric.testing.function import LocalFunction, RuntimeNotInstalled

        try:
            function = LocalFunction(
                handler,
                task_root=task_root,
                command=command,
                env=env,
                timeout=timeout,
                memory=memory,
                extensions=extensions,
                concurrency=concurrency,
                runtime=runtime,
                function_name=function_name,
                import_profile=import_profile,
            )
        except RuntimeNotInstalled as missing:
            pytest.skip(str(missing))
        started.append(function)
        return function.start()

    yield start
    for function in reversed(started):
        function.close()
