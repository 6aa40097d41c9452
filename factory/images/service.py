"""The service layer: the project's wheel and its app files, one layer over the dependency image.

A service image is the dependency image (base + ``/opt/venv`` of the lock's wheels, made by
``assemble`` as before) plus one top layer, made on the host like ``hostlayer``'s:

1. the project's wheel (``<wheelhouse>/project/``, sha256 checked against the manifest)
   installed into ``/opt/venv`` by pypa/installer, console scripts included;
2. the ``app-files`` (``core.tree.select``: ``.dockerignore`` rules) copied under ``app-dir``;
3. both byte-compiled by the **native** base's interpreter (``compileall --invalidation-mode
   checked-hash``, ``PYTHONHASHSEED=0``, network off), so nothing of the target arch runs;
4. every mtime set to SOURCE_DATE_EPOCH.

The layer goes up with an image config over the dependency image's (OCI image spec
``config.md``): ``Cmd``, ``Entrypoint``, ``Env``, ``WorkingDir``, ``ExposedPorts``,
``StopSignal``, ``Labels`` from ``[tool.factory.image]``. A code change therefore changes only
this layer, the config and the manifests: the dependency image, and every layer under it, keeps
its digest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bases import oci
from ..bases.imagelock import BaseImage
from ..core import tree
from ..core.engine import Engine
from ..core.errors import ImageBuildError
from ..core.service import ServiceSpec
from ..wheelhouse.manifest import ProjectEntry
from . import hostlayer, layerimage

HISTORY = "factory images: the service (its project's wheel in /opt/venv and its app files), laid out on the host"
PROJECT_DIR = "project"
# Bump when the layer's layout or config rules change: every service image is rebuilt.
LAYOUT_VERSION = 1


def app_files(spec: ServiceSpec) -> list[str]:
    """The app files of ``spec`` (relative to ``spec.files_root``), ``ConfigError`` from the selection."""
    return tree.select(spec.files_root, spec.app_files) if spec.app_files else []


def inputs(spec: ServiceSpec, project: ProjectEntry | None, deps_inputs: str, native: BaseImage, files: list[str]) -> str:
    """sha256 hex over what makes a service image on top of the dependency image of
    ``deps_inputs``: the project wheel's sha256, the app files' tree hash, ``app-dir``, the
    image config, the native base that byte-compiles, and the layer's layout version."""
    data = {
        "dependencies": deps_inputs,
        "project": project.sha256 if project else None,
        "app_files": tree.tree_sha256(spec.files_root, files) if files else None,
        "app_dir": spec.app_dir,
        "image": spec.image.to_json(),
        "compiler": native.ref,
        "layout": LAYOUT_VERSION,
        "history": HISTORY,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def lay_out(spec: ServiceSpec, project: ProjectEntry | None, wheelhouse: Path, files: list[str], engine: Engine, native: BaseImage, root: Path, epoch: int) -> None:
    """Lay the service layer out in ``root`` (empty): the project wheel installed into
    ``/opt/venv``, the app files under ``app-dir``, byte-compiled in a container of the
    ``native`` base (network off). ``ImageBuildError`` when a wheel does not hash to the
    manifest or the byte-compilation cannot run."""
    compiled: list[str] = []
    if project is not None:
        wheel = wheelhouse / PROJECT_DIR / project.filename
        hostlayer.install_wheels([(wheel, project.sha256)], root)
        compiled.append(f"{hostlayer.VENV}/lib")
    app = root / spec.app_dir.lstrip("/")
    app.mkdir(parents=True, exist_ok=True)
    for rel in files:
        source, dest = spec.files_root / rel, app / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest, follow_symlinks=False)
    if any(f.endswith(".py") for f in files):
        compiled.append(spec.app_dir)
    if spec.image.workdir:
        (root / spec.image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    readable(root)
    for directory in [app, *app.parents]:
        if directory == root:
            break
        directory.chmod(0o755)
    if compiled:
        _compile(engine, native, root, compiled)
    hostlayer.pin_mtimes(root, epoch)


def readable(root: Path) -> None:
    """Every file and directory under ``root`` readable (directories searchable) by anyone:
    the service runs as the app user, not as the files' owner."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | (0o555 if path.is_dir() else 0o444))


def _compile(engine: Engine, native: BaseImage, root: Path, paths: list[str]) -> None:
    """``compileall`` of ``paths`` (absolute in the image) with ``root`` mounted where the
    image will hold it, in a container of ``native`` (the host arch's base; its python3 is
    the image's version)."""
    volumes = {str(root / p.lstrip("/")): {"bind": p, "mode": "rw"} for p in paths}
    command = ["python3", "-c", "import os, subprocess, sys; sys.exit(subprocess.run(sys.argv[1:], env={**os.environ, 'PYTHONHASHSEED': '0'}).returncode)",
               "python3", "-m", "compileall", "-qq", "-j", "0", "--invalidation-mode", "checked-hash", *paths]  # fmt: skip
    status, out = engine.run(native.ref, command, volumes=volumes, platform=f"linux/{native.arch}", network=False)
    if status != 0:
        tail = " | ".join(out.strip().splitlines()[-3:])
        raise ImageBuildError(f"byte-compiling the service in {native.ref} failed (exit {status}): {tail[:300]}", "fix the syntax error it names")


def config_of(spec: ServiceSpec, layer: layerimage.Layer, labels: dict[str, str], epoch: int) -> Callable[[dict[str, Any]], bytes]:
    """A function from the dependency image's config (parsed) to the service image's config
    bytes: ``layer`` on top, and ``[tool.factory.image]`` over the dependency image's settings."""
    image = spec.image

    def make(deps: dict[str, Any]) -> bytes:
        inner = deps.get("config") or {}
        runtime = layerimage.RuntimeConfig(env=image.env, working_dir=image.workdir or spec.app_dir, cmd=image.command)
        config = json.loads(layerimage.image_config(deps, layer, runtime, inner.get("User") or "", labels, epoch, HISTORY))
        settings = config["config"]
        settings.pop("Entrypoint", None)
        if image.entrypoint:
            settings["Entrypoint"] = list(image.entrypoint)
        if image.ports:
            settings["ExposedPorts"] = {port: {} for port in image.ports}
        if image.stop_signal:
            settings["StopSignal"] = image.stop_signal
        settings["Labels"] = {**settings.get("Labels", {}), **dict(image.labels)}
        return oci.canonical(config)

    return make

