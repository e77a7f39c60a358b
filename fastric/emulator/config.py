"""The emulated function's configuration: its bootstrap command and the environment Lambda would give it."""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field

from .importprofile import ENVIRONMENT as IMPORT_TIMING

DEFAULT_FUNCTION_NAME = "test_function"  # the RIE's
DEFAULT_TIMEOUT = 300.0  # seconds, the RIE's
DEFAULT_INIT_TIMEOUT = 10.0  # seconds, Lambda's init limit for on-demand functions
DEFAULT_MEMORY = 3008  # MB, the RIE's
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "012345678912"  # the RIE's
SYSTEM_BOOTSTRAP = "/var/runtime/bootstrap"
SYSTEM_EXTENSIONS = "/opt/extensions"  # where Lambda looks for external extensions


class ConfigError(Exception):
    """A configuration the emulator cannot run."""


@dataclass
class FunctionConfig:
    """What `fastric emulate` / `fastric invoke` run, and how."""

    command: list[str]
    task_root: str
    handler: str | None = None
    function_name: str = DEFAULT_FUNCTION_NAME
    timeout: float = DEFAULT_TIMEOUT
    init_timeout: float = DEFAULT_INIT_TIMEOUT  # beyond it, an on-demand init counts against the first invoke
    memory_mb: int = DEFAULT_MEMORY
    concurrency: int | None = None  # None: classic, one invocation at a time, no AWS_LAMBDA_MAX_CONCURRENCY
    region: str = DEFAULT_REGION
    extensions_dir: str | None = None  # external extensions: its executable files, started before the runtime
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    import_profile: bool = False  # --import-profile: the bootstrap runs with PYTHONPROFILEIMPORTTIME=1

    @property
    def slots(self) -> int:
        return self.concurrency or 1

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def environment(self, runtime_api: str) -> dict[str, str]:
        """The bootstrap's environment: the emulator's own, plus what Lambda sets.

        `TZ=:UTC` is set only when TZ is unset, so a user's explicit TZ wins.
        """
        env = dict(self.base_env)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": runtime_api,
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"
                if self.concurrency is None
                else "lambda-managed-instances",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.base_env.get("AWS_DEFAULT_REGION", self.region),
                "LAMBDA_TASK_ROOT": self.task_root,
            }
        )
        env.setdefault("TZ", ":UTC")
        if self.import_profile:
            env.update(IMPORT_TIMING)
        if self.handler:
            env["_HANDLER"] = self.handler
        if self.concurrency is None:
            env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
        else:
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.concurrency)
        return env


def resolve_command(handler: str | None, command: list[str], task_root: str) -> tuple[list[str], str | None]:
    """The bootstrap command line and the handler string (`_HANDLER`) for it.

    - `command` given: run it (a relative program path is taken from the current directory if it exists
      there, else from the task root); the handler is `handler` alone (never guessed from the command's words,
      so a user's `_HANDLER` reaches `-- sh entrypoint.sh`, `-- python -m fastric` or a layer's wrapper);
    - `handler` alone: `python -m fastric HANDLER` with the current interpreter;
    - neither: `bootstrap` in the task root, then `/var/runtime/bootstrap`.
    """
    if command:
        program = command[0]
        if os.sep in program and not os.path.isabs(program) and os.path.exists(program):
            program = os.path.abspath(program)  # relative to where the user is, not to the task root
        return [program, *command[1:]], handler
    if handler:
        return [sys.executable, "-m", "fastric", handler], handler
    for candidate in (os.path.join(task_root, "bootstrap"), SYSTEM_BOOTSTRAP):
        if os.path.isfile(candidate):
            return [candidate], None
    raise ConfigError(
        f"no bootstrap: give a HANDLER, `-- COMMAND ...`, or put an executable `bootstrap` in "
        f"{task_root} or {SYSTEM_BOOTSTRAP}"
    )
