"""The sdist lane's cell planner: from a missing (pin, target) cell to what its build needs.

- the **request**: the pinned version's sdist whose sha256 the lock allows, or a failed
  outcome ("no sdist") when the index has none;
- the **build constraints** lock for the sdist (``build-constraints`` or its
  ``[tool.factory.build-overrides]`` entry);
- the **build platform**: the platform the build backend runs on, whose wheels the build
  dependencies must be;
- the **builder** image for the target: the configured upstream image, or the
  bootstrapped one (``builders.ensure_builder``), made on first use.

The container engine, registry and base images (``Connection``) are reached only when a
builder must be bootstrapped, so cells that fail before (no sdist) need no Docker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version
from pypi_simple import DistributionPackage

from ..bases.bootstrap import BaseImage
from ..bases.imagelock import BuilderImage
from ..core import parallel
from ..core.config import Config
from ..core.engine import Engine
from ..core.errors import LockError
from ..core.registry import Registry
from ..core.targets import Target, parse_target
from ..index.client import Index
from ..locks.lockfile import Lock, Pin, read_lock
from . import builders
from .outcome import BuildOutcome, BuildRequest


@dataclass(frozen=True)
class Connection:
    """What the sdist lane reaches lazily, on its first real build: the container engine,
    the registry, the runtime base images per arch (``amd64``/``arm64``) and the path of the
    toolchain's pip wheel (for import checks)."""

    engine: Engine
    registry: Registry
    bases: Mapping[str, BaseImage]
    pip_wheel: Path


def best_sdist(pin: Pin, files: list[DistributionPackage]) -> tuple[DistributionPackage, str] | None:
    """The pinned version's sdist among the index ``files`` whose sha256 the lock allows,
    with that sha256 hex; None if there is none. Sdist names follow PEP 625."""
    for pkg in files:
        if pkg.package_type != "sdist":
            continue
        try:
            name, version = parse_sdist_filename(pkg.filename)
        except InvalidSdistFilename:
            continue
        sha = pkg.digests.get("sha256", "")
        if name == pin.name and str(version) == pin.version and sha in pin.hashes:
            return pkg, sha
    return None


def first_ready_release(files: list[DistributionPackage], pinned: str, target: Target, python: str) -> str | None:
    """The lowest final release above ``pinned`` among the index ``files`` of one project that
    has a wheel ``target`` can install under CPython ``python`` (by ``Target.rank``), or None.
    What to upgrade a pin to whose sdist cannot be built for 3.14."""
    rank = target.rank(python)
    floor, ready = Version(pinned), set[Version]()
    for pkg in files:
        if pkg.package_type != "wheel" or pkg.is_yanked:
            continue
        try:
            _, version, _, tags = parse_wheel_filename(pkg.filename)
        except InvalidWheelFilename:
            continue
        if version > floor and not version.is_prerelease and any(tag in rank for tag in tags):
            ready.add(version)
    return str(min(ready)) if ready else None


class CellPlanner:
    """Plans the cells of one factory run. ``connection`` is called (by the caller's
    memoising function) only to bootstrap a builder. ``once`` serialises the making of each
    arch's builder when cells are planned from several threads."""

    def __init__(self, cfg: Config, index: Index, connection: Callable[[], Connection], once: parallel.KeyedLocks | None = None) -> None:
        self.cfg, self.index, self._connection = cfg, index, connection
        self._once = once or parallel.KeyedLocks()
        self._build_locks: dict[Path, Lock] = {}
        self._builders: dict[str, BuilderImage] = {}

    def request(self, pin: Pin, target: Target) -> BuildRequest | BuildOutcome:
        """The build request for a missing cell, or a failed outcome when the lock allows no
        sdist. Raises the index's errors (unreachable, bad page)."""
        if target.free_threaded and not self.upstream(target):
            return BuildOutcome(
                pin.name, pin.version, target.name, ok=False, sdist="", sdist_sha256="",
                reason=(
                    f"no free-threaded CPython for {target.name}: the bootstrapped builder has only Debian's python3.14 "
                    "(Debian ships no python3.14t and CPython's sources cannot be reached here) "
                    f"(fix: set [tool.factory.builders] {target.name} to a builder image that ships cp314t, e.g. pypa's, pinned by digest)"
                ),
            )  # fmt: skip
        files = self.index.files(pin.name, pin.version)
        found = best_sdist(pin, files)
        if found is None:
            return BuildOutcome(
                pin.name, pin.version, target.name, ok=False, sdist="", sdist_sha256="",
                reason=self._no_sdist(pin, target, files),
            )  # fmt: skip
        return BuildRequest(pin, target, found[0], found[1])

    def _no_sdist(self, pin: Pin, target: Target, files: list[DistributionPackage]) -> str:
        """Why a cell with neither a wheel nor an allowed sdist fails, and its fix: the lock
        left out the sdist's sha256 (lock again), or the release publishes none (the first
        later release with a wheel for ``target``, when the index has one)."""
        what = f"no wheel for {target.name} and no sdist whose sha256 the lock allows"
        sdists = [pkg for pkg in files if pkg.package_type == "sdist"]
        left_out = sorted(pkg.filename for pkg in sdists if pkg.digests.get("sha256", "") not in pin.hashes)
        if left_out:
            return f"{what}: the lock's hashes leave out {left_out[0]} (fix: lock again with every file's hash, e.g. `factory lock`)"
        if sdists:
            return f"{what}: {sdists[0].filename} is not an sdist name factory reads (fix: ask {pin.name} for a PEP 625 `.tar.gz` sdist)"
        what = f"{what}: {pin.name} {pin.version} publishes no sdist"
        upgrade = self.upgrade(pin, target)
        return f"{what}{upgrade}" if upgrade else f"{what} (fix: use a release of {pin.name} with a wheel for {target.name}, or a package that ships an sdist)"

    def upgrade(self, pin: Pin, target: Target) -> str:
        """The words a failed cell's reason ends with to name the first later release of
        ``pin`` with a wheel for ``target`` (``first_ready_release`` over the index's files),
        or "" when there is none. Raises the index's errors."""
        newer = first_ready_release(self.index.files(pin.name), pin.version, target, self.cfg.python)
        if newer is None:
            return ""
        return f"; {pin.name} {newer} is the first later release with a wheel for {target.name}: upgrade the pin to it or above"

    def own_lock(self, name: str) -> Path | None:
        """The user's own build lock for ``name`` from ``[tool.factory.build-overrides]``
        (it always wins), or None."""
        return dict(self.cfg.build_overrides).get(name)

    def generated_lock(self, name: str) -> Path | None:
        """Where a build lock generated for ``name`` is written and read
        (``<build-overrides-dir>/<name>.txt``), or None when none is configured."""
        return self.cfg.build_overrides_dir / f"{name}.txt" if self.cfg.build_overrides_dir else None

    def forget(self, path: Path) -> None:
        """Drop the memo of the lock at ``path`` (after it was written anew)."""
        self._build_locks.pop(path, None)

    def build_lock(self, name: str = "") -> Lock:
        """The build constraints lock for the sdist of ``name``: its override from
        ``[tool.factory.build-overrides]`` if it has one (e.g. a lock with ``Cython<3``), else
        the one generated for it earlier (``generated_lock``) if present, else
        ``build-constraints``. ``LockError`` naming the file when missing or invalid."""
        generated = self.generated_lock(name) if name else None
        path = self.own_lock(name) or (generated if generated and generated.is_file() else None) or self.cfg.build_constraints
        assert path is not None
        if path not in self._build_locks:
            try:
                self._build_locks[path] = read_lock(path)
            except LockError as e:
                raise LockError(f"build constraints: {e.problem}", e.fix) from None
        return self._build_locks[path]

    def upstream(self, target: Target) -> bool:
        """True when ``target`` builds in a configured upstream image (its own compiler)."""
        return self.cfg.builder_image(target) is not None

    def build_platform(self, target: Target) -> Target:
        """The platform the build backend runs on, whose wheels the build dependencies must be.

        The target itself in an upstream builder; in a bootstrapped (glibc) builder, the
        manylinux target of the same arch, also when cross-building for musl.
        """
        if target.libc == "manylinux" or self.upstream(target):
            return target
        for t in self.cfg.targets:
            if t.libc == "manylinux" and t.arch == target.arch:
                return t
        return parse_target(f"manylinux_2_28_{target.arch}")

    def builder_made(self, target: Target) -> bool:
        """True when ``builder_for(target)`` will not have to make a builder (an upstream
        image, or this run's builder of the arch is made)."""
        return self.upstream(target) or target.docker_arch in self._builders

    def builder_for(self, target: Target) -> str:
        """The builder image reference for ``target``: the configured upstream image, or
        the bootstrapped builder of its arch (made and pushed on first use; ``BootstrapError``,
        ``EngineError``, ``RegistryError`` from there)."""
        upstream = self.cfg.builder_image(target)
        if upstream is not None:
            return upstream
        with self._once(("builder", target.docker_arch)):
            if target.docker_arch not in self._builders:
                builders.require_recipe(self.cfg)
                conn = self._connection()
                entry = builders.ensure_builder(self.cfg, target.docker_arch, conn.engine.for_arch(target.docker_arch), conn.registry, self.index)
                self._builders[target.docker_arch] = entry
            return self._builders[target.docker_arch].ref

    def builder_identity(self, target: Target) -> str:
        """What ``target``'s build cache keys name as the builder: the upstream image's
        reference, or ``builders.cache_identity`` of the bootstrapped builder (made as
        ``builder_for`` makes it)."""
        ref = self.builder_for(target)
        if self.upstream(target):
            return ref
        return builders.cache_identity(self._builders[target.docker_arch])
