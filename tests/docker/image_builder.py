"""Execute a Dockerfile's own instructions into root directories, one per stage, with no container engine.

Each stage starts from a copy of its base (a `python:X.Y-slim-RELEASE` root made by `rootfs`, or an earlier stage)
and its instructions run as `docker build` runs them: `RUN` in the stage's root (chroot, clean environment of the
stage's `ENV`/`ARG`s, its `WORKDIR`, `/bin/sh -c` for the shell form, `--mount=type=bind,from=...` bind mounts),
`COPY` from the `.dockerignore`-filtered context or `--from` a stage, `ENV`/`ARG`/`WORKDIR` with Docker's variable
expansion, `ENTRYPOINT`/`CMD` recorded as the image's configuration. An instruction or flag this builder does not
implement raises `DockerfileError`, never passes silently.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from build_context import context_files
from dockerfile_syntax import Dockerfile, DockerfileError, Instruction, expand, parse, parse_arg, parse_env, split_words
from namespaces import Bind, container_command, host_path
from rootfs import BaseImage


@dataclass
class Image:
    """A built stage: its root directory and the configuration `docker run` would use."""

    root: Path
    env: dict[str, str]
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: str | None = None
    log: list[str] = field(default_factory=list)  # one line per executed instruction, with RUN output

    def argv(self) -> list[str]:
        """ENTRYPOINT + CMD, as `docker run IMAGE` starts them."""
        return self.entrypoint + self.cmd


BaseFactory = Callable[[str, Path], BaseImage]  # (image reference, destination) → the base image's root


def host_network_settings() -> tuple[tuple[Bind, ...], dict[str, str]]:
    """What a `docker build` on this machine gives RUN steps to reach the package registries: the host's DNS
    configuration and CA bundle (registries may sit behind a TLS-inspecting proxy whose CA only the host's
    bundle has), and its proxy variables, which Docker forwards to builds by default."""
    binds = [Bind("/etc/resolv.conf", "/etc/resolv.conf"), Bind("/etc/hosts", "/etc/hosts")]
    env = {}
    bundle = ssl.get_default_verify_paths().cafile or os.environ.get("PIP_CERT")
    if bundle and os.path.exists(bundle):
        binds.append(Bind(os.path.realpath(bundle), "/etc/ssl/certs/ca-certificates.crt"))
        env["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "PIP_INDEX_URL", "PIP_DEFAULT_TIMEOUT"):
        for variant in (name, name.lower()):
            if os.environ.get(variant):
                env[variant] = os.environ[variant]
    return tuple(binds), env


class Builder:
    """Builds the stages of `dockerfile` from `context` under `work_dir`."""

    def __init__(
        self,
        dockerfile: Path,
        context: Path,
        work_dir: Path,
        base_factory: BaseFactory,
        run_binds: tuple[Bind, ...] = (),
        run_env: dict[str, str] | None = None,
    ):
        self.dockerfile: Dockerfile = parse(dockerfile.read_text())
        self.context = context
        self.context_files = context_files(context)
        self.work_dir = work_dir
        self.base_factory = base_factory
        self.run_binds = run_binds
        self.run_env = run_env or {}
        self.stages: dict[str, Image] = {}
        self._bases: dict[str, BaseImage] = {}

    def build(self) -> Image:
        """Build every stage in order; return the last (the image `docker build` tags)."""
        image = None
        for index, stage in enumerate(self.dockerfile.stages):
            image = self._build_stage(index)
            self.stages[stage.name or str(index)] = image
            self.stages[str(index)] = image
        assert image is not None
        return image

    # -- stages ----------------------------------------------------------------------------
    def base_reference(self, index: int) -> str:
        """The expanded `FROM` of stage `index` (global ARG defaults substituted)."""
        defaults = {k: v for k, v in self.dockerfile.global_args.items() if v is not None}
        return expand(self.dockerfile.stages[index].base, defaults)

    def _build_stage(self, index: int) -> Image:
        stage = self.dockerfile.stages[index]
        reference = self.base_reference(index)
        root = self.work_dir / f"stage-{index}"
        if reference in self.stages:
            parent = self.stages[reference]
            _copy_tree(parent.root, root)
            image = Image(
                root, dict(parent.env), parent.workdir, list(parent.entrypoint), list(parent.cmd), parent.user
            )
        else:
            if reference not in self._bases:
                self._bases[reference] = self.base_factory(reference, self.work_dir / f"base-{len(self._bases)}")
            base = self._bases[reference]
            _copy_tree(base.root, root)
            image = Image(root, dict(base.env), "/", [], list(base.cmd))
        image.log.append(f"FROM {reference}")
        args: dict[str, str] = {}
        cmd_inherited = True
        for instruction in stage.instructions:
            image.log.append(f"{instruction.keyword} {instruction.text}")
            scope = {**args, **image.env}
            keyword = instruction.keyword
            if keyword == "ARG":
                name, value = parse_arg(instruction.text)
                if value is None:
                    value = self.dockerfile.global_args.get(name)
                args[name] = expand(value, scope) if value is not None else ""
            elif keyword == "ENV":
                image.env.update(parse_env(instruction.text, scope))
            elif keyword == "WORKDIR":
                (path,) = split_words(instruction.text, scope)
                image.workdir = posixpath.normpath(posixpath.join(image.workdir, path))
                os.makedirs(host_path(root, image.workdir), exist_ok=True)
            elif keyword == "COPY":
                self._copy(instruction, image, scope)
            elif keyword == "RUN":
                self._run(instruction, image, args)
            elif keyword == "ENTRYPOINT":
                image.entrypoint = _command(instruction)
                if cmd_inherited:
                    image.cmd = []  # Docker resets an inherited CMD when a stage sets ENTRYPOINT
            elif keyword == "CMD":
                image.cmd = _command(instruction)
                cmd_inherited = False
            elif keyword == "USER":
                (user,) = split_words(instruction.text, scope)
                if not all(part.isdigit() for part in user.split(":")):
                    raise DockerfileError(f"line {instruction.line}: only numeric USER uid[:gid] is supported")
                image.user = user if ":" in user else f"{user}:{user}"
            elif keyword in ("LABEL", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK"):
                pass  # metadata only: nothing in the file system or the process changes
            else:
                raise DockerfileError(f"line {instruction.line}: {keyword} is not supported by this builder")
        return image

    # -- instructions ----------------------------------------------------------------------
    def _copy(self, instruction: Instruction, image: Image, scope: dict[str, str]) -> None:
        unsupported = {name for name, _ in instruction.flags} - {"from"}
        if unsupported:
            raise DockerfileError(f"line {instruction.line}: COPY flags {sorted(unsupported)} are not supported")
        words = (
            [expand(word, scope) for word in instruction.exec_form]
            if instruction.exec_form is not None
            else split_words(instruction.text, scope)
        )
        if len(words) < 2:
            raise DockerfileError(f"line {instruction.line}: COPY needs a source and a destination")
        *sources, dest = words
        dest_abs = posixpath.normpath(posixpath.join(image.workdir, dest))
        dest_is_dir = dest.endswith("/") or len(sources) > 1 or os.path.isdir(host_path(image.root, dest_abs))
        from_stage = instruction.flag("from")
        for source in sources:
            entries = self._stage_entries(from_stage, source) if from_stage else self._context_entries(source)
            if not entries:
                raise DockerfileError(f"line {instruction.line}: COPY source {source!r} not found")
            for host_file, relative, is_dir_source in entries:
                if is_dir_source:
                    target = posixpath.join(dest_abs, relative)
                elif dest_is_dir or len(entries) > 1:
                    target = posixpath.join(dest_abs, posixpath.basename(relative))
                else:
                    target = dest_abs
                _copy_entry(host_file, image.root, target)

    def _context_entries(self, source: str) -> list[tuple[str, str, bool]]:
        """(host path, path relative to what is copied, whether it comes from a directory source)."""
        pattern = posixpath.normpath(source.lstrip("/"))
        if pattern == ".":
            return [(str(self.context / f), f, True) for f in self.context_files]
        if any(char in pattern for char in "*?["):
            matched = [
                f for f in self.context_files if fnmatch.fnmatchcase(f, pattern) and f.count("/") == pattern.count("/")
            ]
            return [(str(self.context / f), f, False) for f in matched]
        if pattern in self.context_files:
            return [(str(self.context / pattern), pattern, False)]
        prefix = pattern + "/"
        return [(str(self.context / f), f[len(prefix) :], True) for f in self.context_files if f.startswith(prefix)]

    def _stage_entries(self, stage_name: str, source: str) -> list[tuple[str, str, bool]]:
        if any(char in source for char in "*?["):
            raise DockerfileError("COPY --from with wildcards is not supported")
        host = host_path(self.stages[stage_name].root, source)
        if not os.path.isdir(host) or os.path.islink(host):
            return [(host, posixpath.basename(source), False)] if os.path.lexists(host) else []
        entries = []
        for directory, _dirs, names in os.walk(host):
            for name in names:
                full = os.path.join(directory, name)
                entries.append((full, os.path.relpath(full, host), True))
        return entries

    def _run(self, instruction: Instruction, image: Image, args: dict[str, str]) -> None:
        binds = [bind for bind in self.run_binds if os.path.exists(host_path(image.root, bind.target))]
        created: list[str] = []
        for name, value in instruction.flags:
            if name != "mount":
                raise DockerfileError(f"line {instruction.line}: RUN --{name} is not supported")
            options = dict(item.partition("=")[::2] for item in value.split(","))
            if options.get("type") != "bind" or set(options) - {"type", "from", "source", "target", "rw", "ro"}:
                raise DockerfileError(
                    f"line {instruction.line}: only RUN --mount=type=bind,from=,source=,target= "
                    f"is supported, not {value!r}"
                )
            source_root = self.stages[options["from"]].root if "from" in options else self.context
            target = host_path(image.root, options["target"])
            if not os.path.exists(target):
                os.makedirs(target)
                created.append(target)
            binds.append(
                Bind(
                    host_path(source_root, options.get("source", "/")), options["target"], readonly="rw" not in options
                )
            )
        argv = instruction.exec_form if instruction.exec_form is not None else ["/bin/sh", "-c", instruction.text]
        env = {**self.run_env, **args, **image.env}
        env.setdefault("HOME", "/root")
        try:
            result = subprocess.run(
                container_command(image.root, argv, env=env, cwd=image.workdir, user=image.user, binds=tuple(binds)),
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            for target in reversed(created):
                os.rmdir(target)  # BuildKit leaves no mount point behind either
        image.log.append(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(
                f"line {instruction.line}: RUN failed with {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )


def _command(instruction: Instruction) -> list[str]:
    if instruction.flags:
        raise DockerfileError(f"line {instruction.line}: {instruction.keyword} takes no flags")
    if instruction.exec_form is not None:
        return instruction.exec_form
    return ["/bin/sh", "-c", instruction.text]


def _copy_tree(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    subprocess.run(["cp", "-a", f"{source}/.", str(dest)], check=True)


def _copy_entry(host_file: str, root: Path, target: str) -> None:
    """Copy one file or symlink to absolute `target` inside `root`, creating its directories (mode 0755)."""
    parent = host_path(root, posixpath.dirname(target))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    dest = os.path.join(parent, posixpath.basename(target))
    if os.path.lexists(dest) and (os.path.islink(dest) or not os.path.isdir(dest)):
        os.unlink(dest)
    if os.path.islink(host_file):
        os.symlink(os.readlink(host_file), dest)
    else:
        shutil.copy2(host_file, dest)
        os.chown(dest, 0, 0)


def remove_tree(path: Path) -> None:
    """Delete a root directory, refusing if anything is still mounted under it (it never should be)."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            mount_point = line.split()[4]
            if mount_point == real or mount_point.startswith(real + "/"):
                raise RuntimeError(f"{mount_point} is still mounted; not deleting {path}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)
