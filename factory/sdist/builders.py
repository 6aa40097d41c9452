"""Builder images: one per arch, bootstrapped here and laid out the way cibuildwheel expects.

A builder is the ``builder-recipe`` rootfs (forky + python3.14-dev + patchelf + musl, made
by ``bootstrap.build_rootfs``) plus ``resources/images/builder.Dockerfile``: a venv at
``/opt/python/cp314-cp314`` holding the toolchain's pip, build, auditwheel and wheel
(installed ``--require-hashes`` from ``resources/constraints/toolchain.txt``), a cp39 link and
auditwheel on PATH. The same builder serves the manylinux and the musllinux target of its
arch, because the libc a wheel needs is chosen by the mounted zig compiler, not the image.

Builders are cached by recipe hash + Dockerfile + tool wheels, pushed to the registry and
recorded by digest in ``builders.lock`` (``imagelock.BuilderImagesLock``: per arch the ref, the
tag and the builder key as ``inputs_sha256``; the former bases.lock-shaped file, whose
``recipe_sha256`` held the same key, is still read). A target with an upstream image in
``[tool.factory.builders]`` uses that image as configured.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from ..bases.bootstrap import build_rootfs
from ..bases.imagelock import BuilderImage, BuilderImagesLock
from ..core import binfmt
from ..core.config import Config, load_recipe
from ..core.engine import Engine
from ..core.errors import BootstrapError, ConfigError
from ..core.progress import console
from ..core.registry import Registry
from ..core.targets import Arch
from ..index.client import Index
from ..tools.toolchain import tool_requirements, tool_wheel

# What the builder's /opt/python/cp314-cp314 holds (with their dependencies, all pinned in
# the toolchain lock). Build backends are not here: they come per sdist from build.txt.
BUILDER_TOOLS = ("pip", "build", "packaging", "pyproject-hooks", "auditwheel", "pyelftools", "wheel")
# The builders of two arches may be made at once (parallel cells); each records its entry
# in the one builders.lock by reading it again under this lock, so neither loses the other's.
_LOCK_FILE = threading.Lock()


def cache_identity(entry: BuilderImage) -> str:
    """What a build cache key names for a bootstrapped builder: its inputs (``inputs_sha256``),
    not its digest. Builders are not bit-reproducible (their pip layer keeps build-time
    mtimes), so two machines that bootstrap the same builder get two digests; the wheels they
    build are the same, and a shared build cache must serve both."""
    return f"bootstrapped-builder:{entry.inputs_sha256}"


def builder_key(cfg: Config, arch: str, recipe_sha256: str, tools: list[Path]) -> str:
    """sha256 hex over the recipe hash, the builder Dockerfile and the tool wheel names."""
    assert cfg.builder_dockerfile is not None
    data = "\n".join([recipe_sha256, hashlib.sha256(cfg.builder_dockerfile.read_bytes()).hexdigest(), arch, *sorted(p.name for p in tools)])
    return hashlib.sha256(data.encode()).hexdigest()


def _context(dest: Path, dockerfile: Path, rootfs: Path, tools: list[Path], requirements: str) -> None:
    with tarfile.open(dest, "w") as t:
        for name, data in (("Dockerfile", dockerfile.read_bytes()), ("tools/requirements.txt", requirements.encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
        t.add(rootfs, arcname="rootfs.tar")
        for wheel in tools:
            t.add(wheel, arcname=f"tools/{wheel.name}")


def read_builders_lock(path: Path) -> dict[str, BuilderImage]:
    """Entries of the builders lock at ``path`` by arch ({} when the file does not exist).
    ``ArtifactError`` if it is not JSON or of neither ``BuilderImagesLock`` form."""
    if not path.exists():
        return {}
    return dict(BuilderImagesLock.load(path).builders)


def ensure_builder(cfg: Config, arch: str, engine: Engine, registry: Registry, index: Index) -> BuilderImage:
    """The builder image for ``arch`` (``amd64``/``arm64``), bootstrapped and pushed if needed.

    Returns its ``builders.lock`` entry (``ref`` is ``<repo>@sha256:…``, present in the local
    engine afterwards). Raises ``ConfigError`` for a missing recipe, ``BootstrapError`` /
    ``EngineError`` / ``RegistryError`` / ``BinfmtMissingError`` from the steps.
    """
    assert cfg.builder_recipe is not None and cfg.builders_lock is not None and cfg.builder_dockerfile is not None
    if not cfg.builder_dockerfile.is_file():
        raise ConfigError(f"builder Dockerfile {cfg.builder_dockerfile} not found", "point builder-dockerfile at an existing file, or remove it to use the packaged one")
    recipe = load_recipe(cfg.builder_recipe)
    tools = [tool_wheel(cfg, index, name) for name in BUILDER_TOOLS]
    recipe_sha256 = recipe.digest(arch, cfg.python)
    key = builder_key(cfg, arch, recipe_sha256, tools)
    platform = f"linux/{arch}"
    previous = read_builders_lock(cfg.builders_lock)
    entry = previous.get(arch)
    if entry is not None and entry.inputs_sha256 == key and registry.manifest_of_ref(entry.ref) is not None:
        engine.ensure_local(entry.ref, platform, registry.auth)
        return entry
    if arch == "arm64":
        binfmt.require_arm64()
    started = time.monotonic()
    console.print(f"builder {arch}: making (rootfs, image, push)", soft_wrap=True)
    rootfs = build_rootfs(cfg, recipe, arch, recipe_sha256)
    repo = f"{cfg.registry}/{cfg.builder_repository}"
    tag = f"{cfg.python}-{recipe.suite}-{arch}"
    with tempfile.TemporaryDirectory(dir=rootfs.parent) as tmp:
        ctx = Path(tmp) / "context.tar"
        _context(ctx, cfg.builder_dockerfile, rootfs, tools, tool_requirements(cfg, BUILDER_TOOLS))
        with open(ctx, "rb") as f:
            image_id = engine.build(
                f,
                tag=f"{repo}:{tag}",
                platform=platform,
                buildargs={"TRIPLET": Arch(arch).triplet, "PIP_WHEEL": tools[0].name},
                labels={"org.opencontainers.image.title": "factory builder", "io.factory.builder.sha256": key},
                nocache=not cfg.engine_cache,
            )
    info = engine.inspect(image_id)
    if info is None or info.platform != platform:
        # cibuildwheel pulls (--pull=always) any image whose platform is not exactly this.
        raise BootstrapError(
            f"builder image for {arch} inspects as {info.platform if info else 'missing'}",
            "use a Docker engine that honours --platform for FROM scratch builds",
        )
    digest = engine.push(repo, tag, registry.auth)
    result = BuilderImage(arch=arch, ref=f"{repo}@{digest}", tag=f"{repo}:{tag}", inputs_sha256=key)
    record_builder(cfg.builders_lock, cfg.python, result)
    console.print(f"builder {arch}: {result.ref} ({time.monotonic() - started:.0f} s)", soft_wrap=True)
    return result


def record_builder(path: Path, python: str, entry: BuilderImage) -> None:
    """Write ``entry`` into the builders lock at ``path``, keeping the other arches' entries
    as the file holds them now (read again under a lock, so builders made at once by
    parallel cells do not drop each other's)."""
    with _LOCK_FILE:
        current = read_builders_lock(path)
        BuilderImagesLock(python=python, builders={**current, entry.arch: entry}).dump(path)


def require_recipe(cfg: Config) -> None:
    """``BootstrapError`` unless the builder recipe exists (checked before any sdist work)."""
    if cfg.builder_recipe is None or not cfg.builder_recipe.is_file():
        raise BootstrapError(f"builder recipe {cfg.builder_recipe} not found", "point builder-recipe at an existing file, or remove it to use the packaged one")
