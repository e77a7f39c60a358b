"""The environment the user set reaches the bootstrap: `_HANDLER` is set by the emulator only when it was given
a handler; for any `-- COMMAND` the user's own `_HANDLER` (and every other variable) passes through. Includes
the README's recipe for running the layer's wrapper locally, as Lambda starts it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

from emulator_process import REPO, clean_env
from test_cli_invoke import fastric_invoke

HANDLER = """
import os


def handler(event, context):
    return {name: os.environ.get(name) for name in ("_HANDLER", "FOO", "PYTHONPATH")}
"""


def _function(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "envy.py").write_text(HANDLER)
    return root


def test_users_handler_passes_through_a_multi_word_command(tmp_path):
    root = _function(tmp_path)
    command = ["env", "FOO=1", sys.executable, "-m", "fastric"]
    result = fastric_invoke("--task-root", str(root), "--", *command, env=clean_env(_HANDLER="envy.handler"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["_HANDLER"] == "envy.handler" and seen["FOO"] == "1"


def test_a_given_handler_is_set_exactly(tmp_path):
    root = _function(tmp_path)
    result = fastric_invoke("--task-root", str(root), "envy.handler", env=clean_env(_HANDLER="other.handler"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["_HANDLER"] == "envy.handler"


def test_no_handler_is_invented_for_a_command(tmp_path):
    probe = tmp_path / "probe.sh"
    probe.write_text(
        '#!/bin/sh\nbody="{\\"handler\\": \\"${_HANDLER-unset}\\"}"\n'
        'id=$(curl -sS -D - "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next" -o /dev/null'
        " | tr -d '\\r' | sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: //p')\n"
        'curl -sS -X POST -d "$body" "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/$id/response"\n'
    )
    if shutil.which("curl") is None:
        return
    result = fastric_invoke("--", "sh", str(probe), "last-word")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"handler": "unset"}  # not "last-word" (the RIE's guess)


def test_the_layer_wrapper_recipe(tmp_path):
    """README: unpack the layer under a directory (Lambda's /opt) and start its wrapper as Lambda does,
    `WRAPPER INTERPRETER /var/runtime/bootstrap.py`, with `_HANDLER` set. The layer here is assembled from
    this checkout in the layer's layout (`fastric layer build` would download wheels)."""
    opt = tmp_path / "opt"
    (opt / "python").mkdir(parents=True)
    shutil.copy(REPO / "fastric" / "layer" / "fastric-wrapper", opt / "fastric-wrapper")
    os.chmod(opt / "fastric-wrapper", 0o755)
    os.symlink(REPO / "fastric", opt / "python" / "fastric")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    (opt / "python" / "fastric-layer.target").write_text(f"{version} {platform.machine()}\n")
    root = _function(tmp_path)
    command = [str(opt / "fastric-wrapper"), sys.executable, "/var/runtime/bootstrap.py"]
    result = fastric_invoke("--task-root", str(root), "--", *command, env=clean_env(_HANDLER="envy.handler"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["_HANDLER"] == "envy.handler"
    assert seen["PYTHONPATH"].split(":")[0] == str(root)  # the wrapper's import order: the task root first
    assert str(opt / "python") in seen["PYTHONPATH"].split(":")
    assert b"starting the runtime without fastric" not in result.stderr
