"""The build cache: one entry per cell build, named by a content key over every input that
shapes the wheel.

``<cache>/builds/<key>/`` holds the wheel, ``build.log`` and ``outcome.json``
(``BuildOutcome.to_json``). The key (``BuildKey``) covers the sdist's sha256, the target,
the Python version, the builder (an upstream image by digest, a bootstrapped one by its
inputs: ``builders.cache_identity``), the toolchain lock's and the
build constraints lock's sha256, every file of the build's resources directory
(cibuildwheel options, musl repair, zig wrapper: ``resources.digest``), the ``CIBW_*``
environment (compiler variables and flags, repair command, container options; host paths
replaced by placeholders), the cibuildwheel version and ``PROCEDURE_VERSION``. An entry is
written in a temporary sibling and renamed (``atomic.replace_dir``); on reuse the wheel is
re-hashed against ``outcome.json`` and a corrupt entry is evicted. Failed builds are not
cached: their logs go to ``<cache>/builds/failed/<name>-<version>-<target>.log``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core import atomic, resources
from ..core.cache import sha256_file
from ..core.config import SdistOptions
from ..core.targets import Target
from ..tools import toolchain
from . import cibw, pure, rust
from .outcome import BuildOutcome
from .remotecache import RemoteCache

# Bump when factory's own build code changes the wheels in a way no other key input shows.
PROCEDURE_VERSION = 2


@dataclass(frozen=True)
class BuildKey:
    """Everything that shapes one cell's wheel; ``hexdigest()`` names its cache entry.

    Hashes are sha256 hex; ``environment`` is the sorted ``CIBW_*`` items of
    ``cibw.cibuildwheel_env`` with ``cibw.Mounts.placeholders``.
    """

    sdist_sha256: str
    target: str
    python: str
    builder: str
    toolchain_sha256: str
    build_constraints_sha256: str
    resources_sha256: str
    environment: tuple[tuple[str, str], ...]
    cibuildwheel_version: str
    procedure: int = PROCEDURE_VERSION
    # the build key of each library recipe the cell links (libraries.Sysroot.keys)
    libraries: tuple[str, ...] = ()

    def hexdigest(self) -> str:
        """sha256 hex of the key's fields as canonical JSON."""
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()


def cell_key(
    *,
    python: str,
    target: Target,
    builder: str,
    zig: bool,
    sdist_sha256: str,
    epoch: int,
    toolchain_sha256: str,
    build_constraints_sha256: str,
    libraries: tuple[str, ...] = (),
    options: SdistOptions | None = None,
) -> BuildKey:
    """The ``BuildKey`` of one cell, reading the current resources and cibuildwheel version.

    ``zig`` says whether the builder is bootstrapped (zig compilers) or upstream; ``epoch``
    is the build's SOURCE_DATE_EPOCH (``cibw.sdist_epoch``); ``libraries`` the build keys of
    the library recipes it links; ``options`` its ``[tool.factory.sdist.<project>]``.
    ``FileNotFoundError`` if the package lacks its build resources.
    """
    env = cibw.cibuildwheel_env(python, target, builder, cibw.Mounts.placeholders(zig, bool(libraries)), epoch, options=options)
    return BuildKey(
        sdist_sha256=sdist_sha256,
        target=target.name,
        python=python,
        builder=builder,
        toolchain_sha256=toolchain_sha256,
        build_constraints_sha256=build_constraints_sha256,
        resources_sha256=resources.digest(cibw.RESOURCE_DIR),
        environment=tuple(sorted(env.items())),
        cibuildwheel_version=cibw.version(),
        libraries=libraries,
    )


# The BuildKey target of a pure-Python build: one wheel, every target.
PURE_TARGET = "py3-none-any"


def pure_key(*, python: str, builder: str, sdist_sha256: str, epoch: int, toolchain_sha256: str, build_constraints_sha256: str) -> BuildKey:
    """The ``BuildKey`` of a pure-Python build (``pure``): the target is
    ``PURE_TARGET``, the environment the container command and SOURCE_DATE_EPOCH."""
    command = " ".join(pure.command("<sdist>", "<top>"))
    return BuildKey(
        sdist_sha256=sdist_sha256,
        target=PURE_TARGET,
        python=python,
        builder=builder,
        toolchain_sha256=toolchain_sha256,
        build_constraints_sha256=build_constraints_sha256,
        resources_sha256="",
        environment=(("command", command), ("SOURCE_DATE_EPOCH", str(epoch))),
        cibuildwheel_version="",
    )


def rust_key(
    *, python: str, target: Target, builder: str, kind: str, sdist_sha256: str, epoch: int, toolchain_sha256: str, build_constraints_sha256: str,
    user_env: tuple[tuple[str, str], ...] = (),
) -> BuildKey:
    """The ``BuildKey`` of a Rust cell (``rust``): ``builder`` names the host builder
    (its recipe digest), the environment is the container's variables and command (with
    the project's ``user_env`` exports) for the backend ``kind``; the zig wrapper (and on
    musl ``musl_repair.py`` and ``std_crates.py``) is hashed as the build resources."""
    env = rust.environment(kind, target, epoch, jobs=0)
    env.pop("CARGO_BUILD_JOBS")  # how many jobs compile it does not change the wheel
    command = rust.command(kind, "<sdist>", "<top>", target, user_env)[-1]
    return BuildKey(
        sdist_sha256=sdist_sha256,
        target=target.name,
        python=python,
        builder=builder,
        toolchain_sha256=toolchain_sha256,
        build_constraints_sha256=build_constraints_sha256,
        resources_sha256=resources.digest(toolchain.ZIG_WRAPPER, *([rust.MUSL_REPAIR, rust.STD_CRATES] if rust.is_musl(target) else [])),
        environment=(*sorted(env.items()), ("command", command)),
        cibuildwheel_version="",
    )


class _NotCached(Exception):
    """A build failed: its temporary entry must not be renamed into place."""


class BuildCache:
    """The entries under ``root`` (``<cache>/builds``). Use it under the cache's run lock.

    With ``remote`` (the shared cache in a registry), an entry missing here is looked up
    there before a build, and a new entry is pushed there once built."""

    def __init__(self, root: Path, remote: RemoteCache | None = None) -> None:
        self.root = root
        self.remote = remote

    def has(self, key: BuildKey) -> bool:
        """Whether ``key`` has an entry here or in the remote cache (nothing is downloaded)."""
        return self.entry(key).is_dir() or (self.remote is not None and self.remote.has(key.hexdigest()))

    def entry(self, key: BuildKey) -> Path:
        """The directory of ``key``'s entry (it may not exist)."""
        return self.root / key.hexdigest()

    def get(self, key: BuildKey) -> BuildOutcome | None:
        """The cached outcome of ``key`` (``cached`` set, ``log`` in the entry), or None when
        there is none. An entry whose ``outcome.json`` is unreadable or whose wheel is
        missing or does not hash to it is removed and None returned."""
        entry = self.entry(key)
        if not entry.is_dir() and not self._pulled(key):
            return None
        try:
            outcome = BuildOutcome.from_json(json.loads((entry / "outcome.json").read_text()))
            wheel = entry / outcome.filename
            sound = outcome.ok and bool(outcome.filename) and wheel.is_file() and sha256_file(wheel) == outcome.sha256
        except (OSError, ValueError):
            sound = False
        if not sound:
            shutil.rmtree(entry, ignore_errors=True)  # corrupt: evict, so the cell is rebuilt
            return None
        return dataclasses.replace(outcome, cached=True, log=str(entry / "build.log"))

    def _pulled(self, key: BuildKey) -> bool:
        """Fetch ``key``'s entry from the remote cache into place; True when it came."""
        if self.remote is None:
            return False

        def fill(work: Path) -> None:
            assert self.remote is not None
            if not self.remote.fetch(key.hexdigest(), work):
                raise _NotCached

        self.root.mkdir(parents=True, exist_ok=True)
        try:
            atomic.replace_dir(self.entry(key), fill)
        except _NotCached:
            return False
        return True

    def put(self, key: BuildKey, build: Callable[[Path], BuildOutcome]) -> BuildOutcome:
        """Run ``build(work)`` in a fresh temporary sibling of ``key``'s entry and return its
        outcome. ``build`` leaves ``work/build.log`` and, when ``ok``, the wheel
        ``work/<outcome.filename>``. An ok outcome is written to ``outcome.json`` and the
        directory renamed into place (``log`` then points into the entry); a failed one
        leaves no entry, its log copied to ``failed/``. ``OutputError`` when the disk is full.
        """
        result: list[BuildOutcome] = []

        def fill(work: Path) -> None:
            outcome = build(work)
            if not outcome.ok:
                log = self.root / "failed" / f"{outcome.name}-{outcome.version}-{outcome.target}.log"
                atomic.write_text(log, (work / "build.log").read_text(errors="replace") if (work / "build.log").is_file() else "")
                result.append(dataclasses.replace(outcome, log=str(log)))
                raise _NotCached
            outcome = dataclasses.replace(outcome, log=str(self.entry(key) / "build.log"))
            (work / "outcome.json").write_text(json.dumps(outcome.to_json(), indent=1))
            result.append(outcome)

        self.root.mkdir(parents=True, exist_ok=True)
        try:
            atomic.replace_dir(self.entry(key), fill)
        except _NotCached:
            return result[0]
        if self.remote is not None:
            self.remote.push(key.hexdigest(), self.entry(key))
        return result[0]


def sweep(cache_dir: Path) -> list[Path]:
    """Remove the temporary build directories and logs a killed run left under
    ``<cache_dir>/builds`` (call with the cache's run lock held). Returns what went."""
    builds = cache_dir / "builds"
    return atomic.sweep_dir(builds) + atomic.sweep_dir(builds / "failed")
