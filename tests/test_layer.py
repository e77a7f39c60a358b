"""`fastric layer build` and the layer's wrapper script (AWS_LAMBDA_EXEC_WRAPPER on the managed Python runtimes).

The wrapper first with a recording stand-in for the managed runtime's interpreter and a hand-made layer (argv,
PYTHONPATH, environment, `exec`, the fallback, a chained wrapper); then real layers built from PyPI wheels (slow:
one build per target per session): their contents, and the managed runtime simulated, the layer unpacked into an
/opt-like directory and the wrapper started as Lambda starts it, against the recording Runtime API.
"""

from __future__ import annotations

import ast
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from runtime_api import RuntimeAPIServer, base_env

from fastric import __version__
from fastric.layer import builder, wheels
from fastric.layer.target import Target, running_python

REPO = Path(__file__).resolve().parent.parent
WRAPPER = REPO / "fastric" / "layer" / "fastric-wrapper"
EXAMPLES = REPO / "examples"
EVENT = {"queryStringParameters": {"foo": "bar"}}
MACHINE = platform.machine()
OTHER_ARCH = "arm64" if MACHINE == "x86_64" else "x86_64"
NATIVE_ARCH = "arm64" if MACHINE == "aarch64" else "x86_64"
LAYER_PYTHON = "3.12"  # of the hand-made layers; the stand-in interpreter is named after it

RECORDING_INTERPRETER = """#!/bin/sh
# Stands in for the managed runtime's interpreter: answers -V, records how it was started.
if [ "${1-}" = "-V" ]; then echo "Python VERSION.1"; exit 0; fi
printf '%s\\n' "$$" "$@" > "$RECORD"
env > "$RECORD.env"
exit 7
"""

RECORDING_WRAPPER = """#!/bin/sh
# Stands in for a vendor's wrapper: records its arguments, then runs them.
printf '%s\\n' "$@" > "$RECORD.next"
exec "$@"
"""


def script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def hand_made_layer(opt: Path, marker: str | None = f"{LAYER_PYTHON} {MACHINE}\n") -> Path:
    """An /opt with the wrapper and a stub python/fastric: enough for the wrapper's checks."""
    wrapper = script(opt / "fastric-wrapper", WRAPPER.read_text())
    (opt / "python" / "fastric").mkdir(parents=True)
    (opt / "python" / "fastric" / "__main__.py").write_text("")
    if marker is not None:
        (opt / "python" / "fastric-layer.target").write_text(marker)
    return wrapper


def lambda_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FASTRIC_NEXT_WRAPPER")}
    env.update(extra)
    return env


def run_wrapper(tmp_path: Path, *, interpreter: str = f"python{LAYER_PYTHON}", args=None, opt=None, **env) -> dict:
    """Start the wrapper as a managed runtime does (INTERPRETER ORIGINAL-ARGS) with the recording interpreter."""
    opt = opt or tmp_path / "opt"
    if not (opt / "fastric-wrapper").exists():
        hand_made_layer(opt)
    python = script(tmp_path / "lang" / "bin" / interpreter, RECORDING_INTERPRETER.replace("VERSION", LAYER_PYTHON))
    record = tmp_path / "record"
    args = ["/var/runtime/bootstrap.py"] if args is None else args
    full_env = lambda_env(RECORD=str(record), **env)
    proc = subprocess.Popen(
        [str(opt / "fastric-wrapper"), str(python), *args], env=full_env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 7, stderr  # the interpreter's status comes back unchanged
    pid, *argv = record.read_text().splitlines()
    recorded_env = dict(
        line.split("=", 1) for line in (tmp_path / "record.env").read_text().splitlines() if "=" in line
    )
    next_record = tmp_path / "record.next"
    return {
        "exec": int(pid) == proc.pid,
        "argv": argv,
        "env": recorded_env,
        "stderr": stderr.decode(),
        "next": next_record.read_text().splitlines() if next_record.exists() else None,
    }


# -- the wrapper, with a recording interpreter -----------------------------------------------


def test_the_wrapper_is_a_posix_sh_script():
    assert WRAPPER.read_text().startswith("#!/bin/sh\n")
    assert WRAPPER.stat().st_mode & stat.S_IXOTH


def test_the_wrapper_execs_fastric_in_place_of_the_managed_runtime(tmp_path):
    """The original arguments (the managed bootstrap.py) are dropped; fastric reads the handler from $_HANDLER."""
    record = run_wrapper(tmp_path, _HANDLER="app.handler")
    assert record["exec"]
    assert record["argv"] == ["-m", "fastric"]
    assert record["env"]["_HANDLER"] == "app.handler"
    assert record["stderr"] == ""


def test_the_import_path_is_the_managed_runtimes(tmp_path):
    """LAMBDA_TASK_ROOT, then the layers' python/lib/pythonX.Y/site-packages and python/, then the runtime's dir."""
    record = run_wrapper(tmp_path, LAMBDA_TASK_ROOT="/var/task", LAMBDA_RUNTIME_DIR="/var/runtime")
    opt = tmp_path / "opt"
    assert record["env"]["PYTHONPATH"] == (
        f"/var/task:{opt}/python/lib/python{LAYER_PYTHON}/site-packages:{opt}/python:/var/runtime"
    )


def test_a_PYTHONPATH_set_on_the_function_replaces_the_layer_entries(tmp_path):
    record = run_wrapper(tmp_path, LAMBDA_TASK_ROOT="/var/task", PYTHONPATH="/mine:/also")
    assert record["env"]["PYTHONPATH"] == f"/var/task:/mine:/also:{tmp_path}/opt/python"


def test_unset_directories_leave_no_empty_path_entries(tmp_path):
    """An empty PYTHONPATH entry would put the current directory on sys.path."""
    record = run_wrapper(tmp_path)
    entries = record["env"]["PYTHONPATH"].split(":")
    assert entries == [f"{tmp_path}/opt/python/lib/python{LAYER_PYTHON}/site-packages", f"{tmp_path}/opt/python"]


def test_the_layer_is_found_relative_to_the_wrapper(tmp_path):
    """Started by a relative path, the wrapper still puts its own directory's python/ on the path, absolute."""
    hand_made_layer(tmp_path / "somewhere")
    python = script(tmp_path / f"python{LAYER_PYTHON}", RECORDING_INTERPRETER.replace("VERSION", LAYER_PYTHON))
    env = lambda_env(RECORD=str(tmp_path / "record"))
    run = subprocess.run(["somewhere/fastric-wrapper", str(python)], cwd=tmp_path, env=env, timeout=10)
    assert run.returncode == 7
    environ = (tmp_path / "record.env").read_text()
    assert (
        f"PYTHONPATH={tmp_path}/somewhere/python/lib/python{LAYER_PYTHON}/site-packages:{tmp_path}/somewhere/python\n"
        in environ
    )


def test_the_managed_runtimes_environment_passes_through(tmp_path):
    lambda_vars = {
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{LAYER_PYTHON}",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "LAMBDA_TASK_ROOT": "/var/task",
        "_HANDLER": "app.handler",
        "TZ": ":UTC",
    }
    record = run_wrapper(tmp_path, **lambda_vars)
    assert {name: record["env"].get(name) for name in lambda_vars} == lambda_vars


@pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
def test_under_bash_the_machine_is_bashs_HOSTTYPE(tmp_path):
    """Amazon Linux's /bin/sh is bash, whose HOSTTYPE names the machine as `uname -m` does."""
    wrapper = hand_made_layer(tmp_path / "opt")
    python = script(tmp_path / f"python{LAYER_PYTHON}", RECORDING_INTERPRETER.replace("VERSION", LAYER_PYTHON))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "env").symlink_to(shutil.which("env"))  # the stand-in's only command: no uname
    env = lambda_env(RECORD=str(tmp_path / "record"), PATH=str(tmp_path / "bin"))
    run = subprocess.run([shutil.which("bash"), str(wrapper), str(python)], env=env, capture_output=True, timeout=10)
    assert (run.returncode, run.stderr) == (7, b"")
    assert (tmp_path / "record").read_text().splitlines()[1:] == ["-m", "fastric"]


def test_an_interpreter_named_without_its_version_is_asked(tmp_path):
    record = run_wrapper(tmp_path, interpreter="python3")
    assert record["argv"] == ["-m", "fastric"]
    assert f"python{LAYER_PYTHON}/site-packages" in record["env"]["PYTHONPATH"]


@pytest.mark.parametrize(
    "marker, reason",
    [
        (f"3.99 {MACHINE}\n", f"the layer is for Python 3.99, {{python}} is Python {LAYER_PYTHON}"),
        (f"{LAYER_PYTHON} sparc64\n", f"the layer is for sparc64, this machine is {MACHINE}"),
        (None, "no fastric layer in {opt}"),
    ],
    ids=["other-python", "other-architecture", "incomplete"],
)
def test_a_layer_that_cannot_serve_the_interpreter_runs_the_original_command(tmp_path, marker, reason):
    opt = tmp_path / "opt"
    hand_made_layer(opt, marker)
    args = ["/var/runtime/bootstrap.py", "an argument"]
    record = run_wrapper(tmp_path, opt=opt, args=args, _HANDLER="app.handler")
    assert record["exec"]
    assert record["argv"] == args
    assert "PYTHONPATH" not in record["env"]
    python = tmp_path / "lang" / "bin" / f"python{LAYER_PYTHON}"
    [line] = record["stderr"].splitlines()
    assert line.startswith("fastric-wrapper: " + reason.format(python=python, opt=opt))
    assert line.endswith("; starting the runtime without fastric")


def test_FASTRIC_NEXT_WRAPPER_chains_a_second_wrapper(tmp_path):
    vendor = script(tmp_path / "vendor-wrapper", RECORDING_WRAPPER)
    record = run_wrapper(tmp_path, FASTRIC_NEXT_WRAPPER=str(vendor))
    python = str(tmp_path / "lang" / "bin" / f"python{LAYER_PYTHON}")
    assert record["next"] == [python, "-m", "fastric"]
    assert record["argv"] == ["-m", "fastric"]
    assert record["exec"]
    assert "FASTRIC_NEXT_WRAPPER" not in record["env"]  # a wrapper chaining back here cannot loop


def test_the_fallback_goes_through_the_chained_wrapper_too(tmp_path):
    vendor = script(tmp_path / "vendor-wrapper", RECORDING_WRAPPER)
    hand_made_layer(tmp_path / "opt", marker=f"3.99 {MACHINE}\n")
    record = run_wrapper(tmp_path, FASTRIC_NEXT_WRAPPER=str(vendor))
    python = str(tmp_path / "lang" / "bin" / f"python{LAYER_PYTHON}")
    assert record["next"] == [python, "/var/runtime/bootstrap.py"]


@pytest.mark.parametrize("make, status, message", [(False, 127, "does not exist"), (True, 126, "is not an executable")])
def test_a_chained_wrapper_that_cannot_run_fails_as_Lambda_does(tmp_path, make, status, message):
    vendor = tmp_path / "vendor-wrapper"
    if make:
        vendor.write_text("#!/bin/sh\n")
        vendor.chmod(0o644)
    wrapper = hand_made_layer(tmp_path / "opt")
    env = lambda_env(FASTRIC_NEXT_WRAPPER=str(vendor))
    run = subprocess.run([str(wrapper), f"python{LAYER_PYTHON}", "x"], env=env, capture_output=True, timeout=10)
    assert (run.returncode, run.stderr.decode()) == (status, f"{vendor}: {message}\n")


def test_the_wrapper_without_arguments_explains_itself(tmp_path):
    run = subprocess.run([str(hand_made_layer(tmp_path / "opt"))], capture_output=True, timeout=10)
    assert run.returncode == 2
    assert b"AWS_LAMBDA_EXEC_WRAPPER" in run.stderr


# -- the builder's pieces -------------------------------------------------------------------


def test_targets_ask_pip_for_the_manylinux_wheels_their_runtime_can_load():
    """python3.10/3.11 run on Amazon Linux 2 (glibc 2.26), python3.12+ on AL2023 (glibc 2.34)."""
    al2 = Target("3.11", "arm64").platforms()
    assert al2[0] == "manylinux_2_26_aarch64" and "manylinux_2_28_aarch64" not in al2
    assert al2[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    al2023 = Target("3.13", "x86_64").platforms()
    assert al2023[0] == "manylinux_2_34_x86_64" and "manylinux2014_x86_64" in al2023
    assert Target("3.13", "x86_64").abi == "cp313"
    assert Target("3.12", "arm64").marker() == "3.12 aarch64\n"
    assert Target("3.12", "arm64").zip_name() == "fastric-layer-python3.12-arm64.zip"


@pytest.mark.parametrize("python, arch", [("3.9", "x86_64"), ("3.12", "aarch64"), ("2.7", "arm64")])
def test_unsupported_targets_are_refused(python, arch):
    with pytest.raises(ValueError):
        Target(python, arch)


def test_the_command_refuses_an_unsupported_python(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "fastric", "layer", "build", "--python", "3.9", "-o", str(tmp_path / "l.zip")],
        capture_output=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert b"Python 3.9 has no managed Lambda runtime" in run.stderr
    assert not (tmp_path / "l.zip").exists()


def test_the_dependencies_are_fastrics_runtime_requirements():
    names = sorted(requirement.split(">")[0].split("=")[0].strip() for requirement in wheels.dependencies())
    assert names == ["httptools", "orjson", "uvloop"]


def test_a_wheel_installs_its_importable_files_only(tmp_path):
    wheel = tmp_path / "demo-1.0-cp312-cp312-manylinux2014_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/__init__.py", "x = 1\n")
        archive.writestr("demo-1.0.dist-info/WHEEL", "Tag: cp312-cp312-manylinux2014_x86_64\n")
        archive.writestr("demo-1.0.data/platlib/demo_ext.so", b"\x7fELF")
        archive.writestr("demo-1.0.data/scripts/demo", "#!python\n")
    site = tmp_path / "python"
    wheels.install(wheel, site)
    files = sorted(path.relative_to(site).as_posix() for path in site.rglob("*") if path.is_file())
    assert files == ["demo-1.0.dist-info/WHEEL", "demo/__init__.py", "demo_ext.so"]


def test_a_wheel_with_a_path_outside_the_directory_is_refused(tmp_path):
    wheel = tmp_path / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("../outside.py", "")
    with pytest.raises(wheels.BuildError):
        wheels.install(wheel, tmp_path / "python")
    assert not (tmp_path / "outside.py").exists()


def test_the_zip_keeps_the_wrapper_executable_and_is_reproducible(tmp_path):
    root = tmp_path / "root"
    script(root / "fastric-wrapper", "#!/bin/sh\n")
    (root / "python" / "pkg").mkdir(parents=True)
    (root / "python" / "pkg" / "__init__.py").write_text("")
    builder.write_zip(root, tmp_path / "a.zip")
    os.utime(root / "python" / "pkg" / "__init__.py", (0, 0))
    builder.write_zip(root, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    modes = zip_modes(tmp_path / "a.zip")
    assert modes == {"fastric-wrapper": 0o755, "python/": 0o755, "python/pkg/": 0o755, "python/pkg/__init__.py": 0o644}


def test_without_an_interpreter_of_the_target_version_the_layer_ships_sources(tmp_path, monkeypatch):
    other = "3.13" if running_python() != "3.13" else "3.12"
    monkeypatch.setenv("PATH", str(tmp_path))
    note = builder.byte_compile(tmp_path, Target(other, "x86_64"))
    assert note and f"no python{other} on PATH" in note


def test_the_layer_package_uses_the_standard_library_only_and_the_runtime_never_imports_it():
    stdlib = set(sys.stdlib_module_names)
    for path in (REPO / "fastric" / "layer").glob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top in stdlib or module == "fastric" or module.startswith("fastric.layer"), (path.name, module)
    for path in (REPO / "fastric" / "runtime").rglob("*.py"):
        assert not [m for m in imported_modules(path) if m.startswith("fastric.layer")], path


def imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return modules


def zip_modes(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}


# -- real layers, built from PyPI wheels ----------------------------------------------------


def unpack(layer: Path, opt: Path) -> Path:
    """Unpack a layer as Lambda does, file modes included (zipfile.extractall ignores them)."""
    with zipfile.ZipFile(layer) as archive:
        for info in archive.infolist():
            path = archive.extract(info, opt)
            os.chmod(path, (info.external_attr >> 16) & 0o777)
    return opt / "fastric-wrapper"


@pytest.fixture(scope="session")
def built_layers(tmp_path_factory) -> dict[str, tuple[Target, Path, str]]:
    """The layer for this machine's Python and architecture, and one for another Python on the other architecture,
    each built once per session by `fastric layer build` (pip downloads their wheels from the package index)."""
    other_python = "3.13" if running_python() != "3.13" else "3.12"
    targets = {"native": Target(running_python(), NATIVE_ARCH), "other": Target(other_python, OTHER_ARCH)}
    out = tmp_path_factory.mktemp("layers")
    layers = {}
    for name, target in targets.items():
        path = out / target.zip_name()
        command = [sys.executable, "-m", "fastric", "layer", "build", "--python", target.python, "--arch", target.arch]
        run = subprocess.run([*command, "-o", str(path)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        layers[name] = (target, path, run.stdout)
    return layers


def wheel_tags(site: Path) -> dict[str, list[str]]:
    """The `Tag:` lines of every installed distribution's WHEEL file, by distribution."""
    tags = {}
    for wheel_file in site.glob("*.dist-info/WHEEL"):
        lines = wheel_file.read_text().splitlines()
        tags[wheel_file.parent.name.split("-")[0]] = [
            line.split(": ", 1)[1] for line in lines if line.startswith("Tag:")
        ]
    return tags


@pytest.mark.slow
@pytest.mark.parametrize("name", ["native", "other"])
def test_a_built_layer_holds_fastric_and_wheels_for_its_target(built_layers, tmp_path, name):
    target, path, output = built_layers[name]
    modes = zip_modes(path)
    assert modes["fastric-wrapper"] == 0o755
    assert all(
        mode == 0o644 for member, mode in modes.items() if not member.endswith("/") and member != "fastric-wrapper"
    )
    opt = tmp_path / "opt"
    unpack(path, opt)
    assert (opt / "fastric-wrapper").read_bytes() == WRAPPER.read_bytes()
    site = opt / "python"
    assert (site / "fastric-layer.target").read_text() == target.marker()
    assert (site / "fastric" / "__main__.py").is_file() and (site / "fastric" / "lambda-entrypoint.sh").is_file()
    assert f"Version: {__version__}" in (site / f"fastric-{__version__}.dist-info" / "METADATA").read_text()
    tags = wheel_tags(site)
    assert sorted(tags) == ["httptools", "orjson", "uvloop"]
    for distribution, distribution_tags in tags.items():
        assert distribution_tags, distribution
        for tag in distribution_tags:
            python_tag, abi, platform_tag = tag.split("-")
            assert (python_tag, abi) == (target.abi, target.abi), tag
            assert platform_tag.startswith("manylinux") and platform_tag.endswith(target.machine), tag
    extensions = [p.name for p in site.rglob("*.so")]
    assert extensions and all(f".cpython-{target.abi[2:]}-{target.machine}-linux-gnu.so" in n for n in extensions)
    # what the command printed: the zip and its size, and the two settings
    assert f"{path}: " in output and " MB " in output
    assert "AWS_LAMBDA_EXEC_WRAPPER=/opt/fastric-wrapper" in output
    assert f"--compatible-runtimes {target.runtime} --compatible-architectures {target.arch}" in output


@pytest.mark.slow
def test_the_native_layer_is_precompiled_with_unchecked_hash_pycs(built_layers, tmp_path):
    """Lambda unpacks layers read-only: without .pyc files every cold start compiles fastric again."""
    target, path, _ = built_layers["native"]
    unpack(path, tmp_path / "opt")
    tag = sys.implementation.cache_tag
    pyc = tmp_path / "opt" / "python" / "fastric" / "runtime" / "__pycache__" / f"startup.{tag}.pyc"
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked


def base_interpreter() -> Path:
    """The interpreter under this test run's virtual environment, named pythonX.Y as /var/lang/bin/python3.12 is:
    fastric and its dependencies are not installed in it, so whatever it runs comes from the layer."""
    python = Path(sys.base_prefix, "bin", f"python{running_python()}")
    if not python.exists():
        pytest.skip(f"no {python}")
    return python


def start_like_lambda(opt: Path, server: RuntimeAPIServer, task_root: Path, **env: str):
    """Start the layer's wrapper as a managed runtime does, with its environment, until the server ends it."""
    full_env = {k: v for k, v in base_env(server.address).items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    full_env.update(
        _HANDLER="app.handler",
        LAMBDA_TASK_ROOT=str(task_root),
        LAMBDA_RUNTIME_DIR="/var/runtime",
        AWS_EXECUTION_ENV=f"AWS_Lambda_python{running_python()}",
        **env,
    )
    command = [str(opt / "fastric-wrapper"), str(base_interpreter()), "/var/runtime/bootstrap.py"]
    return subprocess.run(command, env=full_env, cwd=task_root, capture_output=True, timeout=60)


@pytest.mark.slow
def test_on_a_simulated_managed_runtime_fastric_serves_the_function(built_layers, tmp_path):
    _, path, _ = built_layers["native"]
    opt = tmp_path / "opt"
    unpack(path, opt)
    with RuntimeAPIServer() as server:
        request_id = server.add_invocation(EVENT)
        run = start_like_lambda(opt, server, EXAMPLES)
    responses = server.requests_to(f"/invocation/{request_id}/response")
    assert len(responses) == 1, run.stderr.decode(errors="replace")
    namespace: dict = {}
    exec(compile((EXAMPLES / "app.py").read_text(), "app.py", "exec"), namespace)
    assert responses[0].json() == namespace["handler"](EVENT, None)
    version = ".".join(map(str, sys.version_info[:3]))
    assert {r.header("User-Agent") for r in server.requests} == {f"aws-lambda-python/{version} fastric/{__version__}"}
    assert b"fastric-wrapper" not in run.stderr  # no fallback


WHERE_APP = """
import os, sys
import fastric, orjson, user_module

def handler(event, context):
    names = ("AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_FORMAT", "LAMBDA_TASK_ROOT", "PYTHONPATH", "_HANDLER")
    return {"fastric": fastric.__file__, "orjson": orjson.__file__, "user_module": user_module.__file__,
            "sys.path": sys.path, "env": {name: os.environ.get(name) for name in names}}
"""


@pytest.mark.slow
def test_the_function_imports_from_its_task_root_first_then_the_layers(built_layers, tmp_path):
    """User code first (LAMBDA_TASK_ROOT), then the layers in /opt/python (fastric's own among them); a module in
    the task root shadows a layer's module of the same name, as on the managed runtime."""
    _, path, _ = built_layers["native"]
    opt = tmp_path / "opt"
    unpack(path, opt)
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(WHERE_APP)
    (task / "user_module.py").write_text("")
    (opt / "python" / "user_module.py").write_text("raise ImportError('the layer shadowed the task root')\n")
    with RuntimeAPIServer() as server:
        request_id = server.add_invocation({})
        run = start_like_lambda(opt, server, task, AWS_LAMBDA_LOG_FORMAT="JSON")
    responses = server.requests_to(f"/invocation/{request_id}/response")
    assert len(responses) == 1, run.stderr.decode(errors="replace")
    where = responses[0].json()
    site = opt / "python"
    assert where["fastric"] == str(site / "fastric" / "__init__.py")
    assert where["orjson"] == str(site / "orjson" / "__init__.py")
    assert where["user_module"] == str(task / "user_module.py")
    layer_site = f"{site}/lib/python{running_python()}/site-packages"
    expected = [str(task), layer_site, str(site), "/var/runtime"]
    assert [p for p in dict.fromkeys(where["sys.path"]) if p in expected] == expected
    assert where["sys.path"].index(str(task)) <= 1  # the current directory (the task root as well) may come first
    assert where["env"] == {
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{running_python()}",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "LAMBDA_TASK_ROOT": str(task),
        "PYTHONPATH": ":".join(expected),
        "_HANDLER": "app.handler",
    }


@pytest.mark.slow
def test_a_layer_for_another_target_falls_back_to_the_original_command(built_layers, tmp_path):
    """The other layer (another Python, the other architecture) cannot serve this interpreter: the wrapper says so
    in one line and runs the managed runtime's own command, which here records what it was given."""
    target, path, _ = built_layers["other"]
    opt = tmp_path / "opt"
    unpack(path, opt)
    bootstrap = tmp_path / "bootstrap.py"
    record = tmp_path / "record.json"
    bootstrap.write_text(
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv, 'PYTHONPATH': os.environ.get('PYTHONPATH')}}, open({str(record)!r}, 'w'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    python = base_interpreter()
    run = subprocess.run(
        [str(opt / "fastric-wrapper"), str(python), str(bootstrap), "--flag"], env=env, capture_output=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(record.read_text()) == {"argv": [str(bootstrap), "--flag"], "PYTHONPATH": None}
    [line] = run.stderr.decode().splitlines()
    assert line == (
        f"fastric-wrapper: the layer is for Python {target.python}, {python} is Python {running_python()}; "
        "starting the runtime without fastric"
    )


def test_a_failed_precompile_says_why(tmp_path, monkeypatch):
    """With the target's interpreter: its compileall output's gist is in the note."""
    other = "3.13" if running_python() != "3.13" else "3.12"
    bin_dir = tmp_path / "bin"
    script(bin_dir / f"python{other}", "#!/bin/sh\necho '*** Error compiling broken.py: invalid syntax' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    note = builder.byte_compile(tmp_path, Target(other, "x86_64"))
    assert note and "compileall failed" in note and "Error compiling broken.py: invalid syntax" in note


def test_a_module_that_does_not_compile_is_named(tmp_path):
    """In this interpreter: the module that failed, and why."""
    (tmp_path / "broken.py").write_text("def (:\n")
    note = builder.byte_compile(tmp_path, Target(running_python(), "x86_64"))
    assert note and "broken.py" in note and "did not compile" in note
