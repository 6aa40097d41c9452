"""The build stage: compile the sdists of pin × target cells that have no wheel on the index.

``SdistBuilder`` orchestrates, per cell, the lane's modules:

1. ``plan``: the sdist the lock allows (or a failed "no sdist" outcome), the build
   constraints lock, the build platform and the builder image;
2. ``archive`` + ``builddeps``: the sdist is fetched (hash-checked), inspected, and its build
   requirements checked against the constraints; their wheels are laid out for mounting;
3. ``buildcache``: a content key over everything that shapes the wheel; a sound entry is
   reused, otherwise the build runs in the entry's temporary sibling;
4. ``cibw``: one cibuildwheel run in the builder (no network, zig compilers when
   bootstrapped, auditwheel or ``musl_repair.py``);
5. ``checks``: static checks of the wheel; later, when the wheelhouse is assembled,
   the import check in the runtime base.

A failing cell does not stop the others: its outcome carries the reason and the log's last
lines. Environment errors (Docker down, binfmt missing, registry down) raise.

``build`` may be called from several threads at once (``cfg.build_jobs`` cells): what cells
share is made once, under a lock per key (the connection, zig, the builder of an arch, a
build dependency directory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import platform
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core import atomic, children, parallel, resources
from ..core.cache import sha256_file
from ..core.config import Config, SdistOptions
from ..core.engine import Engine, docker_login_credentials
from ..core.errors import (
    BuildDependencyError,
    IndexResponseError,
    IndexUnreachableError,
    LibraryRecipeError,
    LockCompileError,
    LockError,
    SdistError,
    WheelContentError,
)
from ..core.progress import console
from ..core.registry import Registry, credentials
from ..core.targets import Target, parse_target
from ..index.client import Index
from ..index.selection import unlocked_wheel
from ..locks.lockfile import Lock, Pin
from ..tools import toolchain
from . import buildcache, builddeps, buildlocks, cibw, libraries, project, pure, recipes, rust, stableabi
from .archive import SdistInfo, inspect_sdist
from .buildcache import BuildCache
from .builddeps import builddeps_dir, check_requires
from .checks import WheelChecks, best_tag
from .failures import PYO3_FORWARD, Cause, CauseKind, classify, headline
from .libraries import LibraryBuilder, keys_of, recipe_dir
from .outcome import BuildOutcome, BuildRequest, BuildRun, PlannedCell, cell_id
from .plan import CellPlanner, Connection
from .project import ProjectSource
from .recipes import closure
from .remotecache import RemoteCache

# The toolchain wheels a Rust cell's venv installs ``build`` from.
RUST_TOOLS = ("build", "packaging", "pyproject-hooks")
# The reason a pure-Python build's wheel carries when it was not pure after all: its cells
# go to cibuildwheel (never shown: no outcome with it reaches the matrix).
NOT_PURE = "the built wheel is not pure Python"
# Causes that say the pinned release's source is not ready for 3.14 (no recipe or option fixes
# it): the reason then names the first later release with a wheel for the target.
_NOT_READY = frozenset({CauseKind.PYO3_TOO_OLD, CauseKind.CAPI_REMOVED, CauseKind.CYTHON3, CauseKind.PURE_FALLBACK, CauseKind.BACKEND_IMPORT, CauseKind.BACKEND_HOOK})


def _forward(env: tuple[tuple[str, str], ...]) -> bool:
    """Whether a Rust cell's variables build it with PyO3's forward compatibility (abi3)."""
    return dict(env).get(PYO3_FORWARD) == "1"


def sweep(cache_dir: Path) -> list[Path]:
    """Remove every temporary directory a killed sdist-lane run left in ``cache_dir``
    (build entries, build dependencies, zig trees). Call once, holding the cache's run lock."""
    return buildcache.sweep(cache_dir) + builddeps.sweep(cache_dir) + toolchain.sweep(cache_dir) + libraries.sweep(cache_dir)


def remote_cache(cfg: Config) -> RemoteCache | None:
    """The run's shared build cache (``remote-cache``), or None when none is configured.
    Credentials as for the image registry (``FACTORY_REGISTRY_USER``/``_PASSWORD`` or
    ``docker login``)."""
    spec = cfg.remote_cache
    if spec is None:
        return None
    return RemoteCache(spec, Registry(spec.address, credentials(spec.address, docker_login=docker_login_credentials)))


class SdistBuilder:
    """Builds missing cells with cibuildwheel; one instance per factory run.

    ``connect()`` returns the ``Connection`` (engine, registry, runtime bases, pip wheel);
    it is called once, on the first need (a builder to bootstrap, exports to read, an
    import check), so a cell that fails before (no sdist, unsafe sdist, unpinned build
    dependency) needs no Docker.
    """

    def __init__(self, cfg: Config, index: Index, connect: Callable[[], Connection]) -> None:
        self.cfg, self.index, self._connect = cfg, index, connect
        self._connected: Connection | None = None
        self._once = parallel.KeyedLocks()
        self._pure_outcomes: dict[str, BuildOutcome] = {}
        self._zig_roots: dict[str | None, Path] = {}
        self.children = children.Children()
        self._fetched: set[str] = set()  # sdist sha256s, and "std", whose crates are in cargo-home
        self.plan = CellPlanner(cfg, index, self.connection, self._once)
        self.checks = WheelChecks(cfg, self.connection)
        self.cache = BuildCache(cfg.cache_dir / "builds", remote_cache(cfg))

    def connection(self) -> Connection:
        """The run's ``Connection``, made on first call."""
        with self._once("connection"):
            return self._connection_once()

    def _connection_once(self) -> Connection:
        if self._connected is None:
            self._connected = self._connect()
            # A killed run leaves its cibuildwheel container behind (cibuildwheel removes it
            # only on exit); we hold the cache's run lock, so any with our label is stale.
            self._connected.engine.remove_labelled(cibw.container_label(self.cfg.cache_dir))
        return self._connected

    def zig_for(self, machine: str | None) -> Path:
        """``toolchain.zig_root`` for this machine (None) or for a Docker host's ``machine``
        (``aarch64``...), unpacked (or found and hash-checked) once per run."""
        with self._once(("zig", machine)):
            if machine not in self._zig_roots:
                self._zig_roots[machine] = toolchain.zig_root(self.cfg, self.index, machine)
            return self._zig_roots[machine]

    @contextlib.contextmanager
    def _sources(self, engine: Engine | None, builder: str, mounts: cibw.Mounts, target: Target) -> Iterator[dict[str, str] | None]:
        """What a build container on ``engine`` mounts at each of ``cibw.mount_points``: None
        (the host paths) on this machine's engine (``engine`` None); on a configured host, volumes of its
        engine: zig and its wrappers filled once and kept, zig's cache kept, the rest staged
        for this build and removed after it."""
        if engine is None:
            yield None
            return
        plat = f"linux/{target.docker_arch}"
        points = cibw.mount_points(mounts)
        sources: dict[str, str] = {}
        if mounts.zig is not None:
            zig_id = hashlib.sha256(mounts.zig.name.encode()).hexdigest()[:16]
            with self._once(("remote-zig", engine.base_url)):
                for path, part in ((cibw.ZIG, "zig"), (cibw.ZIG_BIN, "bin")):
                    sources[path] = engine.cached_volume(f"factory-zig-{zig_id}-{part}", builder, plat, points.pop(path)[0])
            del points[cibw.ZIG_CACHE]
            sources[cibw.ZIG_CACHE] = "factory-zig-cache"
        with engine.staged(builder, {str(host): {"bind": path, "mode": mode} for path, (host, mode) in points.items()}, plat) as staged:
            yield sources | {spec["bind"]: name for name, spec in staged.items()}

    @functools.cached_property
    def toolchain_sha256(self) -> str:
        """sha256 hex of the toolchain lock file."""
        return sha256_file(self.cfg.toolchain)

    @property
    def zig(self) -> Path:
        """``toolchain.zig_root()`` for this machine, unpacked (or found) once per run."""
        return self.zig_for(None)

    @functools.cached_property
    def compile_jobs(self) -> int:
        """Parallel compile jobs inside one cell: the cores left to each of the run's cells."""
        return parallel.cores_per_cell(self.cfg.build_jobs)

    def request(self, pin: Pin, target: Target) -> BuildRequest | BuildOutcome:
        """The build request for a missing cell, or a failed outcome when the lock allows no sdist."""
        return self.plan.request(pin, target)

    def build_cells(self, cells: Sequence[tuple[Pin, Target]]) -> list[BuildOutcome]:
        """The outcome of each (pin, target) cell, in ``cells``' order: planned (``request``)
        and built (``build``), ``cfg.build_jobs`` cells at a time.

        Cells are taken pin by pin across targets, and a worker passes over the cells of an
        arch whose builder another worker is still making, so a cold run makes the builders
        of both arches at once and builds on one while the other is made. The first
        environment error (Docker down, registry down) is raised once the running cells
        end; cells not yet started are dropped.
        On ``KeyboardInterrupt`` (SIGINT; SIGTERM raises ``Interrupted`` meanwhile) the run's
        builds are stopped (``stop``) before it is raised, so the workers end within seconds,
        not after their cells.
        """
        pending = sorted(range(len(cells)), key=lambda i: (cells[i][0].name, cells[i][0].version, i))
        outcomes: dict[int, BuildOutcome] = {}
        making: set[str] = set()  # arches whose builder a worker is making now
        guard = threading.Lock()
        failed = threading.Event()

        def take() -> tuple[int, str] | None:
            with guard:
                if failed.is_set() or not pending:
                    return None
                free = [k for k, i in enumerate(pending) if cells[i][1].docker_arch not in making or self.plan.builder_made(cells[i][1])]
                i = pending.pop(free[0] if free else 0)
                arch = cells[i][1].docker_arch
                if self.plan.builder_made(cells[i][1]):
                    return i, ""
                making.add(arch)
                return i, arch

        def work() -> None:
            while (taken := take()) is not None:
                i, arch = taken
                try:
                    planned = self.request(*cells[i])
                    outcomes[i] = self.build(planned) if isinstance(planned, BuildRequest) else planned
                except BaseException:
                    failed.set()
                    raise
                finally:
                    with guard:
                        making.discard(arch)

        with children.sigterm_interrupts(), ThreadPoolExecutor(max_workers=self.cfg.build_jobs, thread_name_prefix="cell") as pool:
            futures = [pool.submit(work) for _ in range(min(self.cfg.build_jobs, len(cells)))]

            def stop() -> None:  # the workers must not finish their cells, nor take new ones
                failed.set()
                self.stop()

            children.results_or_stop(futures, stop)
        return [outcomes[i] for i in range(len(cells))]

    def stop(self) -> None:
        """End an interrupted run's builds at once: no child process or container starts any
        more, cibuildwheel children are terminated (``self.children``), and the run's
        containers are removed, cibuildwheel's by their label and those ``Engine.run`` waits
        on. The workers waiting on them get ``Interrupted``; no cell is cached or logged as
        failed. ``EngineError`` if the engine refuses the removal."""
        self.children.stop()
        if self._connected is not None:
            self._connected.engine.stop(cibw.container_label(self.cfg.cache_dir))

    def build(self, req: BuildRequest) -> BuildOutcome:
        """Build one cell (or reuse its cached result); never raises for the cell's own failure."""
        pin, target = req.pin, req.target
        base = BuildOutcome(pin.name, pin.version, target.name, ok=False, sdist=req.sdist.filename, sdist_sha256=req.sdist_sha256)
        try:
            sdist = self.index.fetch(req.sdist, req.sdist_sha256)
            info = inspect_sdist(sdist)
            build_lock = self.plan.build_lock(pin.name)
            try:
                check_requires(info, build_lock, target, self.cfg.python)
            except BuildDependencyError as e:
                build_lock = self._own_build_lock(pin, info, target, e)
        except (SdistError, BuildDependencyError) as e:
            return dataclasses.replace(base, reason=str(e))
        if build_lock.path != self.cfg.build_constraints:
            base = dataclasses.replace(base, build_constraints=self._shown(build_lock.path))
        if not info.compiled:
            pure = self._pure(req, sdist, info, build_lock, base)
            if pure is not None:
                return pure
        kind = rust.backend(info)
        if kind is not None:
            return self._rust(req, sdist, info, kind, build_lock, base)
        builder = self.plan.builder_for(target)
        base = dataclasses.replace(base, builder=builder, toolchain_sha256=self.toolchain_sha256, build_constraints_sha256=build_lock.sha256)
        options = self.cfg.sdist_options_for(pin.name)
        try:
            wanted = self._libraries_wanted(pin.name, sdist, req.sdist_sha256, options)
        except LibraryRecipeError as e:
            return dataclasses.replace(base, reason=str(e))
        tried: set[str] = set()
        asked: tuple[str, ...] = ()
        while True:  # a failure naming a header or library that a recipe provides: once more, with it
            tried |= set(wanted)
            outcome, cause = self._cibw_cell(req, sdist, builder, build_lock, base, wanted, options)
            if cause is not None and cause.kind is CauseKind.BUILD_REQUIRES and cause.detail not in asked:
                # what the backend asked for at build time conflicts: its own build lock, once more
                asked += (cause.detail,)
                try:
                    build_lock = self._own_build_lock(pin, info, target, BuildDependencyError(f"{pin.name}=={pin.version}: {cause}", cause.fix), asked)
                except BuildDependencyError as e:
                    return dataclasses.replace(outcome, reason=str(e))
                base = dataclasses.replace(base, build_constraints=self._shown(build_lock.path), build_constraints_sha256=build_lock.sha256)
                continue
            extra = None if outcome.ok or cause is None else self._recipe_for(cause)
            if cause is None or extra is None or extra in tried:
                return self._with_upgrade(outcome, cause, req)
            console.print(f"{pin.name}=={pin.version} for {target.name}: {cause.kind} {cause.detail}; building again with library recipe {extra}")
            wanted = tuple(sorted({*wanted, extra}))
            self._learn(req.sdist_sha256, wanted)

    def _rust(self, req: BuildRequest, sdist: Path, info: SdistInfo, kind: str, build_lock: Lock, base: BuildOutcome) -> BuildOutcome:
        """A Rust cell (``rust``): built in the host builder, natively for every target
        (musllinux with std built from Debian's rust-src); an sdist without a ``Cargo.lock``
        or whose crates cannot be fetched fails with that reason."""
        target = req.target
        base = dataclasses.replace(base, toolchain_sha256=self.toolchain_sha256, build_constraints_sha256=build_lock.sha256)
        lock_dir = rust.cargo_lock(sdist)
        if lock_dir is None:
            return dataclasses.replace(
                base, reason="Rust sdist without a Cargo.lock: its crates cannot be pinned and checked (fix: use a release whose sdist ships Cargo.lock)"
            )
        try:
            image = self.libraries.image()
        except LibraryRecipeError as e:
            return dataclasses.replace(base, reason=str(e))
        base = dataclasses.replace(base, builder=image)
        epoch = cibw.sdist_epoch(sdist)
        user_env = self.cfg.sdist_options_for(req.pin.name).environment
        key = self._rust_key(req, kind, epoch, build_lock, user_env)
        # a crate whose PyO3 predates 3.14, built again as PyO3's own error suggests
        forward = None if PYO3_FORWARD in dict(user_env) else (*user_env, (PYO3_FORWARD, "1"))
        forward_key = None if forward is None else self._rust_key(req, kind, epoch, build_lock, forward)
        for known, env in ((key, user_env), (forward_key, forward)):
            if known is None or env is None or (cached := self.cache.get(known)) is None:
                continue
            if _forward(env) and self._outside_stable_abi(self.cache.entry(known) / cached.filename):
                shutil.rmtree(self.cache.entry(known), ignore_errors=True)  # an entry from before the check: built again, and refused
                continue
            return cached
        native = self._native()
        try:
            with self._once(("builddeps", native.name, build_lock.sha256)):
                deps = builddeps_dir(self.cfg.cache_dir, build_lock, native, self.cfg.python, self.index)
        except BuildDependencyError as e:
            return dataclasses.replace(base, reason=str(e))
        cargo_home = self.cfg.cache_dir / "cargo-home"
        # every platform's crates, once a run: the sdist's, and std's own lock for musl (it builds std)
        fetches: list[tuple[str, str, Path | None]] = [(req.sdist_sha256, rust.sdist_manifest(info.top, lock_dir), sdist)]
        if rust.is_musl(target):
            fetches.append(("std", rust.STD_WORKSPACE, None))
        for fetched, manifest, unpacked in fetches:
            with self._once(("cargo-fetch", fetched)):
                cargo_home.mkdir(parents=True, exist_ok=True)
                status, output = (0, "") if fetched in self._fetched else rust.fetch(
                    self.connection().engine, image, cargo_home, self.cfg.ca_bundle, self.cfg.build_timeout_for(req.pin.name), manifest, unpacked
                )  # fmt: skip
                if status == 0:
                    self._fetched.add(fetched)
            if status != 0:
                tail = tuple(output.strip().splitlines()[-rust.LOG_TAIL:])
                return dataclasses.replace(base, reason=f"cargo fetch --locked failed: {' | '.join(tail[-2:])[:300]}", log_tail=tail)
        zig_cache = self.cfg.cache_dir / "zig-cache"
        zig_cache.mkdir(parents=True, exist_ok=True)
        with self._once("rust-tools"):
            tools = self._tools
        mounts = {"deps": deps, "tools": tools, "cargo_home": cargo_home, "zig": self.zig, "zig_cache": zig_cache}

        def runner(env: tuple[tuple[str, str], ...], added: tuple[str, ...]) -> Callable[[Path], BuildOutcome]:
            def run(work: Path) -> BuildOutcome:
                console.print(f"building {req.pin.name}=={req.pin.version} for {target.name} (Rust, {kind}; sdist {req.sdist.filename}{''.join(f'; {a}' for a in added)})")
                result = rust.run(
                    self.connection().engine, image, kind, target, sdist, info.top, mounts, work, epoch, self.compile_jobs,
                    self.cfg.build_timeout_for(req.pin.name), env,
                )  # fmt: skip
                outcome, cause = self._finish(result, work, target, image, dataclasses.replace(base, environment=added))
                if outcome.ok and _forward(env) and (outside := self._outside_stable_abi(work / outcome.filename)):
                    cause = Cause(CauseKind.PYO3_TOO_OLD, outside, "use a release built with PyO3 0.25 or later")
                    (work / outcome.filename).unlink()
                    outcome = dataclasses.replace(base, environment=added, seconds=outcome.seconds, reason=str(cause))
                return self._with_upgrade(outcome, cause, req)

            return run

        first = self.cache.put(key, runner(user_env, ()))
        if first.ok or forward is None or forward_key is None or not first.reason.startswith(str(CauseKind.PYO3_TOO_OLD)):
            return first
        again = self.cache.put(forward_key, runner(forward, (f"{PYO3_FORWARD}=1",)))
        # the first attempt's fix was this retry: keep what it found, not its advice
        return again if again.ok else dataclasses.replace(again, reason=f"{headline(first.reason)}; built again with {PYO3_FORWARD}=1: {again.reason}")

    @staticmethod
    def _outside_stable_abi(wheel: Path) -> str:
        """What of ``wheel``, built with ``PYO3_FORWARD`` (so meant for the stable ABI), is
        outside the stable ABI (``stableabi``), as a cause's detail; "" when nothing is."""
        try:
            outside = sorted({symbol for symbols in stableabi.outside_stable_abi(wheel).values() for symbol in symbols})
        except WheelContentError as e:
            return f"built with {PYO3_FORWARD}=1, and its extension modules cannot be read to check the stable ABI: {e}"
        if not outside:
            return ""
        shown = ", ".join(outside[:4]) + (f" and {len(outside) - 4} more" if len(outside) > 4 else "")
        return f"built with {PYO3_FORWARD}=1 but not against the stable ABI: it imports {shown} (the variable did not reach this PyO3's cross-compile configuration)"

    def _rust_key(self, req: BuildRequest, kind: str, epoch: int, build_lock: Lock, user_env: tuple[tuple[str, str], ...]) -> buildcache.BuildKey:
        return buildcache.rust_key(
            python=self.cfg.python, target=req.target, builder=self.libraries.builder_digest(), kind=kind, sdist_sha256=req.sdist_sha256,
            epoch=epoch, toolchain_sha256=self.toolchain_sha256, build_constraints_sha256=build_lock.sha256, user_env=user_env,
        )  # fmt: skip

    @functools.cached_property
    def _tools(self) -> Path:
        """A directory of the toolchain's ``build`` wheels (and their dependencies), for
        the host builder's venv."""
        root = self.cfg.cache_dir / "rust-tools" / self.toolchain_sha256[:16]
        if not root.is_dir():

            def fill(tmp: Path) -> None:
                for name in RUST_TOOLS:
                    shutil.copy(toolchain.tool_wheel(self.cfg, self.index, name), tmp)

            atomic.replace_dir(root, fill)
        return root

    def _cibw_cell(
        self, req: BuildRequest, sdist: Path, builder: str, build_lock: Lock, base: BuildOutcome, libraries: tuple[str, ...], options: SdistOptions
    ) -> tuple[BuildOutcome, Cause | None]:
        """One cibuildwheel build of the cell with ``libraries`` (recipe names) linked: its
        outcome (cached or built) and, when the build failed, its classified cause."""
        pin, target = req.pin, req.target
        upstream = self.plan.upstream(target)
        epoch = cibw.sdist_epoch(sdist)
        try:  # the recipes' keys, not their builds: a cached cell (here or remote) needs none
            recipes = closure(libraries, recipe_dir())
            lib_keys = keys_of(self.libraries, libraries, target)
        except LibraryRecipeError as e:
            return dataclasses.replace(base, reason=str(e)), None
        if recipes:
            base = dataclasses.replace(base, libraries=tuple(r.label for r in recipes))
        key = self._cibw_key(req, self.plan.builder_identity(target), epoch, build_lock, lib_keys, options)
        cached = self.cache.get(key)
        if cached is not None:
            return cached, None
        try:
            sysroot = self.libraries.sysroot(libraries, target) if libraries else None
        except LibraryRecipeError as e:
            return dataclasses.replace(base, reason=str(e)), None
        build_platform = self.plan.build_platform(target)
        try:
            with self._once(("builddeps", build_platform.name, build_lock.sha256)):
                deps = builddeps_dir(self.cfg.cache_dir, build_lock, build_platform, self.cfg.python, self.index)
        except BuildDependencyError as e:
            return dataclasses.replace(base, reason=str(e)), None
        zig_cache = self.cfg.cache_dir / "zig-cache"
        if not upstream:
            zig_cache.mkdir(parents=True, exist_ok=True)
        # A native Docker host of the target's arch ([tool.factory.hosts]) runs the build; else this machine's engine.
        engine = self.connection().engine.for_arch(target.docker_arch) if self.cfg.host_for(target.docker_arch) else None
        zig = None if upstream else (self.zig_for(engine.machine) if engine else self.zig)
        mounts = cibw.Mounts(deps, zig, zig_cache, resources.path(cibw.RESOURCE_DIR), sysroot.path if sysroot else None)
        causes: list[Cause] = []

        def run(work: Path) -> BuildOutcome:
            with_libs = f"; library recipes {', '.join(sysroot.labels)}" if sysroot else ""
            on = f" on {engine.base_url}" if engine else ""
            console.print(f"building {pin.name}=={pin.version} for {target.name}{on} (sdist {req.sdist.filename}{with_libs})")
            cell = cibw.cell_label()
            with self._sources(engine, builder, mounts, target) as sources:
                labels = (cibw.container_label(self.cfg.cache_dir), cell)
                env = cibw.cibuildwheel_env(self.cfg.python, target, builder, mounts, epoch, labels, self.compile_jobs, options, sources)
                result = cibw.run(
                    sdist, target, env, work, self.cfg.build_timeout_for(pin.name), docker_host=engine.base_url if engine else None,
                    on_timeout=lambda: (engine or self.connection().engine).remove_labelled(cell), running=self.children,
                )  # fmt: skip
            outcome, cause = self._finish(result, work, target, builder, base, cross_built=target.libc == "musllinux" and not upstream)
            causes.extend([cause] if cause else [])
            return outcome

        outcome = self.cache.put(key, run)
        return outcome, (causes[0] if causes else None)

    def _finish(
        self, result: BuildRun, work: Path, target: Target, builder: str, base: BuildOutcome, cross_built: bool = False
    ) -> tuple[BuildOutcome, Cause | None]:
        """The outcome of one build run (cibuildwheel or Rust) in ``work``, and the classified
        cause of a run that exited non-zero or timed out (a run that exited 0 without exactly
        one wheel keeps that reason). The one wheel is moved into ``work`` and verified for
        ``target`` (``builder``: where musl exports are read)."""
        failed = dataclasses.replace(base, seconds=result.seconds, log_tail=result.tail)
        if result.failure:
            if result.returncode == 0:
                return dataclasses.replace(failed, reason=result.failure), None
            cause = classify(result.log.read_text(errors="replace"), timed_out=result.returncode is None, limit=self.cfg.build_timeout_for(base.name))
            return dataclasses.replace(failed, reason=f"{cause} [{result.failure}]"), cause
        wheel = work / result.wheels[0].name
        os.replace(result.wheels[0], wheel)
        try:
            self.checks.verify(wheel, target, builder)
        except WheelContentError as e:
            return dataclasses.replace(failed, reason=str(e)), None
        return dataclasses.replace(
            base, ok=True, seconds=result.seconds, filename=wheel.name, sha256=sha256_file(wheel),
            tag=best_tag(wheel, target, self.cfg.python), cross_built=cross_built,
        ), None  # fmt: skip

    @functools.cached_property
    def libraries(self) -> LibraryBuilder:
        """The run's ``LibraryBuilder`` (library recipes per target)."""
        return LibraryBuilder(self.cfg, lambda: self.connection().engine, lambda: self.zig, self._once, self.compile_jobs)

    def _learned_file(self, sdist_sha256: str) -> Path:
        return self.cfg.cache_dir / "libraries" / "learned" / f"{sdist_sha256}.json"

    def _learn(self, sdist_sha256: str, names: tuple[str, ...]) -> None:
        """Remember that the sdist needs the recipes ``names``, so that a later run (or
        ``plan``) starts with them instead of failing first."""
        atomic.write_text(self._learned_file(sdist_sha256), json.dumps(sorted(names)) + "\n")

    def _libraries_wanted(self, project: str, sdist: Path, sdist_sha256: str, options: SdistOptions) -> tuple[str, ...]:
        """The recipes a cell starts with: the configured ones, those whose headers the
        sdist's sources include, and those an earlier run learned from its log.
        ``LibraryRecipeError`` for a configured name no recipe has."""
        try:
            learned = json.loads(self._learned_file(sdist_sha256).read_text())
        except (OSError, ValueError):
            learned = []
        names = {*options.libraries, *recipes.wanted_by(sdist, recipe_dir()), *(n for n in learned if isinstance(n, str))}
        for name in sorted(names):
            recipes.recipe(name, recipe_dir())
        return tuple(sorted(names))

    def _with_upgrade(self, outcome: BuildOutcome, cause: Cause | None, req: BuildRequest) -> BuildOutcome:
        """``outcome``, its reason naming the wheel of this very release that the index now
        lists for the target but the lock predates (``selection.unlocked_wheel``), or else,
        when the cause says this release's source is not ready for 3.14, the first later
        release with a wheel for the target."""
        if outcome.ok:
            return outcome
        pin, target = req.pin, req.target
        try:
            newer_file = unlocked_wheel(pin, target, self.cfg.python, self.index.files(pin.name, pin.version))
            if newer_file is not None:
                hint = (
                    f"; the index now lists {newer_file} for this release, which the lock predates (its sha256 is not "
                    f"in the lock): lock again (`factory lock`, or pip-compile --upgrade-package {pin.name}) to take it"
                )
                return dataclasses.replace(outcome, reason=f"{outcome.reason}{hint}")
            if cause is None or cause.kind not in _NOT_READY:
                return outcome
            upgrade = self.plan.upgrade(pin, target)
        except (IndexUnreachableError, IndexResponseError):
            return outcome
        return dataclasses.replace(outcome, reason=f"{outcome.reason}{upgrade}") if upgrade else outcome

    @staticmethod
    def _recipe_for(cause: Cause) -> str | None:
        """The shipped recipe that provides what ``cause`` says is missing, or None."""
        section, key = {
            CauseKind.MISSING_HEADER: ("headers", cause.detail),
            CauseKind.MISSING_LIBRARY: ("libraries", cause.detail.removeprefix("-l")),
            CauseKind.MISSING_PROGRAM: ("programs", cause.detail),
        }.get(cause.kind, ("", ""))
        if cause.kind is CauseKind.MISSING_LIBRARY and cause.detail.startswith("pkg-config module "):
            section, key = "pkgconfig", cause.detail.removeprefix("pkg-config module ")
        found = recipes.providing(section, key, recipe_dir()) if section else None
        return found.name if found else None

    def _cibw_key(
        self, req: BuildRequest, builder: str, epoch: int, build_lock: Lock, libraries: tuple[str, ...] = (), options: SdistOptions | None = None
    ) -> buildcache.BuildKey:
        return buildcache.cell_key(
            python=self.cfg.python, target=req.target, builder=builder, zig=not self.plan.upstream(req.target),
            sdist_sha256=req.sdist_sha256, epoch=epoch, toolchain_sha256=self.toolchain_sha256,
            build_constraints_sha256=build_lock.sha256, libraries=libraries, options=options,
        )  # fmt: skip

    def _pure_key(self, req: BuildRequest, builder: str, epoch: int, build_lock: Lock) -> buildcache.BuildKey:
        return self._pure_key_of(req.sdist_sha256, builder, epoch, build_lock)

    def _pure_key_of(self, source_sha256: str, builder: str, epoch: int, build_lock: Lock) -> buildcache.BuildKey:
        return buildcache.pure_key(
            python=self.cfg.python, builder=builder, sdist_sha256=source_sha256, epoch=epoch,
            toolchain_sha256=self.toolchain_sha256, build_constraints_sha256=build_lock.sha256,
        )  # fmt: skip

    def planned(self, pin: Pin, target: Target, builders: Mapping[str, str]) -> PlannedCell:
        """The ``PlannedCell`` of a missing cell, without building or bootstrapping anything:
        the sdist is fetched and inspected, the builder is the upstream image or the one of
        ``builders`` (arch -> ``builders.cache_identity`` of the builders.lock entry), and the
        key is the one ``build`` would look up. Raises only the index's errors."""
        cell = PlannedCell(cell_id(pin.name, pin.version, target.name), pin.name, pin.version, target.name, str(target.docker_arch))
        req = self.request(pin, target)
        if isinstance(req, BuildOutcome):
            return dataclasses.replace(cell, reason=req.reason)
        try:
            sdist = self.index.fetch(req.sdist, req.sdist_sha256)
            info = inspect_sdist(sdist)
            build_lock = self.plan.build_lock(pin.name)
            check_requires(info, build_lock, target, self.cfg.python)
        except SdistError as e:
            return dataclasses.replace(cell, reason=str(e))
        except BuildDependencyError as e:
            generated = self.plan.own_lock(pin.name) is None and self.plan.generated_lock(pin.name) is not None
            return cell if generated else dataclasses.replace(cell, reason=str(e))  # a generated lock: key known once built
        kind = rust.backend(info)
        if kind is not None:
            epoch = cibw.sdist_epoch(sdist)
            key = self._rust_key(req, kind, epoch, build_lock, self.cfg.sdist_options_for(pin.name).environment)
            return dataclasses.replace(cell, key=key.hexdigest(), cached=self.cache.has(key))
        pure = not info.compiled
        native = self._native() if pure else target
        builder = self.cfg.builder_image(native) or builders.get(str(native.docker_arch))
        if builder is None:
            return cell
        epoch = cibw.sdist_epoch(sdist)
        if pure:
            key = self._pure_key(req, builder, epoch, build_lock)
        else:
            options = self.cfg.sdist_options_for(pin.name)
            try:
                libs = keys_of(self.libraries, self._libraries_wanted(pin.name, sdist, req.sdist_sha256, options), target)
            except LibraryRecipeError as e:
                return dataclasses.replace(cell, reason=str(e))
            key = self._cibw_key(req, builder, epoch, build_lock, libs, options)
        return dataclasses.replace(cell, key=key.hexdigest(), cached=self.cache.has(key))

    def _shown(self, path: Path) -> str:
        """``path`` relative to the project root when it is inside it."""
        return str(path.relative_to(self.cfg.root)) if path.is_relative_to(self.cfg.root) else str(path)

    def _own_build_lock(self, pin: Pin, info: SdistInfo, target: Target, conflict: BuildDependencyError, asked: tuple[str, ...] = ()) -> Lock:
        """A build lock of the sdist's own when its requirements ``conflict`` with the shared
        one: generated once per project (``buildlocks.generate``) unless the user named one
        in ``[tool.factory.build-overrides]`` (then ``conflict`` is raised, as it is when the
        generation fails, with its reason added). ``asked``: requirements its backend asked
        for at build time (``get_requires_for_build_wheel``), locked beside ``build-system.requires``."""
        if asked:
            info = dataclasses.replace(info, requires=(*info.requires, *asked))
        out = self.plan.generated_lock(pin.name)
        if self.plan.own_lock(pin.name) is not None or out is None:
            raise conflict
        with self._once(("build-lock", pin.name)):
            current = self.plan.build_lock(pin.name)
            if current.path == out:  # generated before (this run's other cells, or a committed one)
                try:
                    check_requires(info, current, target, self.cfg.python)
                    return current
                except BuildDependencyError:
                    pass
            conn = self.connection()
            base = conn.bases.get("amd64") or next(iter(conn.bases.values()))
            try:
                buildlocks.generate(self.cfg, conn.engine, self.index, base.ref, pin, info, self.plan.build_lock(""), out)
            except (LockCompileError, LockError) as e:
                raise BuildDependencyError(f"{conflict.problem}; generating its own build lock failed: {e.problem}", conflict.fix) from None
            self.plan.forget(out)
            console.print(f"{pin.name}=={pin.version}: its build requirements conflict with build-constraints; wrote its own build lock {self._shown(out)} (review and commit it)")
            lock = self.plan.build_lock(pin.name)
        check_requires(info, lock, target, self.cfg.python)
        return lock

    def _native(self) -> Target:
        """The manylinux target of this host's arch: its builder runs without emulation."""
        machine = platform.machine()
        return next((t for t in self.cfg.targets if t.libc == "manylinux" and t.arch == machine), None) or parse_target(f"manylinux_2_28_{machine}")

    def _pure(self, req: BuildRequest, sdist: Path, info: SdistInfo, build_lock: Lock, base: BuildOutcome) -> BuildOutcome | None:
        """The cell's outcome from the sdist's one pure-Python build (``pure``), made by
        the first of its cells and shared by the others; None when the built wheel is not
        pure (the cell then goes to cibuildwheel)."""
        with self._once(("pure", req.sdist_sha256)):
            if req.sdist_sha256 not in self._pure_outcomes:
                self._pure_outcomes[req.sdist_sha256] = self._build_pure(req, sdist, info, build_lock, base)
        built = self._pure_outcomes[req.sdist_sha256]
        if built.reason == NOT_PURE:
            return None
        cell = dataclasses.replace(built, target=req.target.name)
        if not built.ok:
            return cell
        try:
            self.checks.verify(built.wheel, req.target, built.builder)
        except WheelContentError as e:
            return dataclasses.replace(cell, ok=False, reason=str(e))
        return dataclasses.replace(cell, tag=best_tag(built.wheel, req.target, self.cfg.python))

    def _build_pure(self, req: BuildRequest, sdist: Path, info: SdistInfo, build_lock: Lock, base: BuildOutcome) -> BuildOutcome:
        native = self._native()
        builder = self.plan.builder_for(native)
        base = dataclasses.replace(base, builder=builder, toolchain_sha256=self.toolchain_sha256, build_constraints_sha256=build_lock.sha256)
        epoch = cibw.sdist_epoch(sdist)
        key = self._pure_key(req, self.plan.builder_identity(native), epoch, build_lock)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        try:
            with self._once(("builddeps", native.name, build_lock.sha256)):
                deps = builddeps_dir(self.cfg.cache_dir, build_lock, native, self.cfg.python, self.index)
        except BuildDependencyError as e:
            return dataclasses.replace(base, reason=str(e))

        def run(work: Path) -> BuildOutcome:
            console.print(f"building {req.pin.name}=={req.pin.version} once for every target (pure Python; sdist {req.sdist.filename})")
            result = pure.run(
                self.connection().engine, builder, native.docker_arch.platform, sdist, info.top, deps, work, epoch, self.cfg.build_timeout_for(req.pin.name)
            )
            failed = dataclasses.replace(base, seconds=result.seconds, log_tail=result.tail)
            if result.failure:
                cause = classify(result.log.read_text(errors="replace"), timed_out=result.returncode is None, limit=self.cfg.build_timeout_for(req.pin.name))
                return dataclasses.replace(failed, reason=f"{cause} [{result.failure}]")
            if not pure.is_pure(result.wheels[0]):
                return dataclasses.replace(failed, reason=NOT_PURE)
            wheel = work / result.wheels[0].name
            os.replace(result.wheels[0], wheel)
            return dataclasses.replace(base, ok=True, seconds=result.seconds, filename=wheel.name, sha256=sha256_file(wheel))

        return self.cache.put(key, run)

    def build_project(self, source: ProjectSource, lock: Lock) -> BuildOutcome:
        """The service project's wheel (``project``): built once from its source tree in the
        native builder, network off, its backend from the build constraints; cached by the
        tree's content hash. A failed outcome (``target`` ``project.TARGET``) carries the
        build's classified cause, a wheel that is not pure Python, or a ``Requires-Dist`` the
        ``lock`` does not pin; nothing is raised for those."""
        name = source.project.name
        native = self._native()
        build_lock = self.plan.build_lock(name)
        base = BuildOutcome(
            name=name, version="", target=project.TARGET, ok=False, sdist=f"{name} source tree", sdist_sha256=source.tree_sha256,
            toolchain_sha256=self.toolchain_sha256, build_constraints_sha256=build_lock.sha256,
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="factory-project-") as tmp:
            tar = Path(tmp) / f"{name}-source.tar"
            source.write_tar(tar)
            try:
                info = inspect_sdist(tar)
                check_requires(info, build_lock, native, self.cfg.python)
            except (SdistError, BuildDependencyError) as e:
                return dataclasses.replace(base, reason=str(e))
            builder = self.plan.builder_for(native)
            base = dataclasses.replace(base, builder=builder)
            key = dataclasses.replace(
                self._pure_key_of(source.tree_sha256, self.plan.builder_identity(native), project.EPOCH, build_lock), target=project.TARGET
            )
            outcome = self.cache.get(key)
            if outcome is None:
                try:
                    deps = builddeps_dir(self.cfg.cache_dir, build_lock, native, self.cfg.python, self.index)
                except BuildDependencyError as e:
                    return dataclasses.replace(base, reason=str(e))

                def run(work: Path) -> BuildOutcome:
                    console.print(f"building the project {name} from its source tree ({len(source.files)} files, tree {source.tree_sha256[:12]})")
                    result = pure.run(
                        self.connection().engine, builder, native.docker_arch.platform, tar, info.top, deps, work, project.EPOCH, self.cfg.build_timeout_for(name)
                    )
                    failed = dataclasses.replace(base, seconds=result.seconds, log_tail=result.tail)
                    if result.failure:
                        cause = classify(result.log.read_text(errors="replace"), timed_out=result.returncode is None, limit=self.cfg.build_timeout_for(name))
                        return dataclasses.replace(failed, reason=f"{cause} [{result.failure}]")
                    built = result.wheels[0]
                    if not pure.is_pure(built):
                        return dataclasses.replace(
                            failed, reason=f"the project builds {built.name}, not a pure-Python wheel: factory ships pure-Python projects (fix: move the compiled code into a package of its own and lock it)"
                        )
                    wheel = work / built.name
                    os.replace(built, wheel)
                    return dataclasses.replace(
                        base, ok=True, version=project.wheel_version(wheel), seconds=result.seconds, filename=wheel.name, sha256=sha256_file(wheel), tag="py3-none-any"
                    )

                outcome = self.cache.put(key, run)
        if outcome.ok:
            unpinned = project.unpinned_requirement(outcome.wheel, lock, self.cfg.targets, self.cfg.python)
            if unpinned:
                return dataclasses.replace(outcome, ok=False, reason=f"{name}: {unpinned} (fix: lock again so the lock holds the project's dependencies)")
        return outcome

    def import_check(self, target: Target, wheel_dir: Path, outcomes: list[BuildOutcome]) -> list[BuildOutcome]:
        """``WheelChecks.import_check``: ``outcomes`` with each built manylinux wheel of
        ``target`` that does not install and import in its runtime base turned failed."""
        return self.checks.import_check(target, wheel_dir, outcomes)
