"""The build stage: compile the sdists of pin × target cells that have no wheel on the index.

Per cell: fetch the sdist (hash-checked against the lock), inspect it (``sdist``), check
its build requirements against ``resources/constraints/build.txt`` (``builddeps``), then run
cibuildwheel once for it, with:

- the target's builder image (``builders``; aarch64 under QEMU) and ``CIBW_BUILD`` pinned
  to ``cp314-<libc>_<arch>``, our own absolute ``--config-file``;
- ``CC``/``CXX`` = the host's native ``zig cc``/``zig c++`` (mounted), with
  ``-target <arch>-linux-gnu.<floor>`` (manylinux) or ``<arch>-linux-musl`` (musllinux);
- no network (``--network=none``), build dependencies from a mounted find-links directory;
- repair: auditwheel (manylinux), ``resources/musl_repair.py`` (musllinux).

Each result is verified (tags, ELF machine, glibc floor or the musl static checks) and
cached under ``<cache>/builds/<key>/``, key = sdist sha256 + target + builder digest +
toolchain lock sha256 + build constraints sha256 + ``procedure_sha256()``. A failing cell does not stop the others;
its outcome carries the reason and the log's last lines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pypi_simple import DistributionPackage

from . import builders
from .bootstrap import BaseImage
from .builddeps import builddeps_dir, check_requires
from .cache import sha256_file
from .children import die_with_parent
from .config import Config
from .engine import Engine
from .errors import BuildDependencyError, LockError, SdistError, WheelContentError
from .index import Index
from .lockfile import Lock, Pin, read_lock
from .progress import console
from .registry import Registry
from .sdist import inspect_sdist
from .targets import Target, parse_target
from .toolchain import zig_root
from .verify import check_musl_wheel, check_wheel, elf_exports, glibc_versions_above

RESOURCES = Path(__file__).parent / "resources"
BUILD_VERSION = 1  # bump when the build procedure changes, so every build cache key does
LOG_TAIL = 12


@functools.cache
def procedure_sha256() -> str:
    """sha256 hex of what drives every build besides its inputs: ``BUILD_VERSION`` and the
    files in ``factory/resources`` the builder uses (cibuildwheel options, musl repair)."""
    h = hashlib.sha256(str(BUILD_VERSION).encode())
    for name in ("cibuildwheel.toml", "musl_repair.py"):
        h.update((RESOURCES / name).read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class BuildRequest:
    """One cell to compile: the pin, the target, and the sdist the lock allows."""

    pin: Pin
    target: Target
    sdist: DistributionPackage
    sdist_sha256: str


@dataclass
class BuildOutcome:
    """The result of one cell. ``ok`` with ``wheel`` (a path in the cache), or not with ``reason``.

    ``seconds`` is the build's wall time (the original build's when ``cached``);
    ``cross_built`` is True for musllinux wheels (statically checked, not import-tested).
    """

    name: str
    version: str
    target: str
    ok: bool
    sdist: str
    sdist_sha256: str
    builder: str = ""
    toolchain_sha256: str = ""
    build_constraints_sha256: str = ""
    filename: str = ""
    sha256: str = ""
    tag: str = ""
    seconds: float = 0.0
    cross_built: bool = False
    reason: str = ""
    log_tail: list[str] = field(default_factory=list)
    log: str = ""
    cached: bool = False

    @property
    def wheel(self) -> Path:
        return Path(self.log).parent / self.filename



def best_sdist(pin: Pin, files: list[DistributionPackage]) -> tuple[DistributionPackage, str] | None:
    """The pinned version's sdist among the index ``files`` whose sha256 the lock allows."""
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename

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


def zig_target(target: Target) -> str:
    """zig's ``-target`` for a wheel target: glibc floor or musl (``aarch64-linux-gnu.2.28``)."""
    if target.libc == "manylinux":
        return f"{target.arch}-linux-gnu.{target.floor[0]}.{target.floor[1]}"
    return f"{target.arch}-linux-musl"


def container_label(cache_dir: Path) -> str:
    """The label (``key=value``) on every build container of runs on ``cache_dir``."""
    return f"io.factory.build-cache={hashlib.sha256(str(cache_dir.resolve()).encode()).hexdigest()[:16]}"


def cibuildwheel_env(
    python: str, target: Target, builder: str, deps: Path, zig: Path | None, zig_cache: Path, epoch: int, label: str = ""
) -> dict[str, str]:
    """The ``CIBW_*`` variables for one cell.

    ``zig`` is ``zig_root()`` for a bootstrapped builder (CC/CXX are zig wrappers targeting
    the glibc floor or musl; musllinux repair is ``musl_repair.py``), or None for an
    upstream builder (its own compiler and cibuildwheel's default auditwheel repair). The
    container always runs with ``--network=none``, the host not mounted, and pip pointed at
    the mounted build dependencies (``deps``) only.
    """
    pip_env = f"PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/factory/deps PIP_CONSTRAINT=/opt/factory/deps/constraints.txt SOURCE_DATE_EPOCH={epoch}"
    mounts = [f"--volume={deps}:/opt/factory/deps:ro", *([f"--label={label}"] if label else [])]
    env = {
        "CIBW_BUILD": f"cp{python.replace('.', '')[:3]}-{target.libc}_{target.arch}",
        f"CIBW_{target.libc.upper()}_{target.arch.upper()}_IMAGE": builder,
        "CIBW_BUILD_FRONTEND": "build",
        "CIBW_ENVIRONMENT": pip_env,
    }
    if zig is not None:
        mounts += [
            f"--volume={zig / 'zig'}:/opt/factory/zig:ro",
            f"--volume={zig / 'bin'}:/opt/factory/bin:ro",
            f"--volume={zig_cache}:/opt/factory/zig-cache",
            f"--volume={RESOURCES}:/opt/factory/resources:ro",
        ]
        compilers = (
            "CC=/opt/factory/bin/cc CXX=/opt/factory/bin/c++ LDSHARED='/opt/factory/bin/cc -shared' "
            f"LDCXXSHARED='/opt/factory/bin/c++ -shared' FACTORY_ZIG_TARGET={zig_target(target)} "
            "ZIG_GLOBAL_CACHE_DIR=/opt/factory/zig-cache ZIG_LOCAL_CACHE_DIR=/tmp/zig-local-cache"
        )
        env["CIBW_ENVIRONMENT"] = f"{compilers} {pip_env}"
        if target.libc == "musllinux":
            env["CIBW_REPAIR_WHEEL_COMMAND"] = f"python /opt/factory/resources/musl_repair.py {{wheel}} {{dest_dir}} {target.arch}"
        else:
            env["CIBW_REPAIR_WHEEL_COMMAND"] = "auditwheel repair -w {dest_dir} {wheel}"
    env["CIBW_CONTAINER_ENGINE"] = "docker; disable_host_mount: true; create_args: --network=none " + " ".join(mounts)
    return env


def _sdist_epoch(path: Path) -> int:
    """SOURCE_DATE_EPOCH for a build: the newest member mtime of the sdist (reproducible)."""
    with tarfile.open(path) as tar:
        return int(max((m.mtime for m in tar.getmembers()), default=0)) or 315532800


class SdistBuilder:
    """Builds missing cells with cibuildwheel; one instance per factory run.

    ``connect()`` returns (engine, registry, runtime base images per arch, pip's wheel); it is
    called on the first real build, so a cell that fails before (no sdist, unsafe sdist,
    unpinned build dependency) needs no Docker. The bases install and import each built
    manylinux wheel on its target. Environment errors (Docker down, binfmt missing,
    registry down) raise; a cell's own failure becomes its outcome.
    """

    def __init__(self, cfg: Config, index: Index, connect: Callable[[], tuple[Engine, Registry, dict[str, BaseImage], Path]]) -> None:
        self.cfg, self.index, self._connect = cfg, index, connect
        self._connected: tuple[Engine, Registry, dict[str, BaseImage], Path] | None = None
        self._build_locks: dict[Path, Lock] = {}
        self._builders: dict[str, str] = {}
        self._exports: dict[str, set[str]] = {}

    def _env(self) -> tuple[Engine, Registry, dict[str, BaseImage], Path]:
        # Docker, the registry, the base images and pip's wheel, reached on first real build.
        if self._connected is None:
            self._connected = self._connect()
            # A killed run leaves its cibuildwheel container behind (cibuildwheel removes it
            # only on exit); we hold the cache's run lock, so any with our label is stale.
            self._connected[0].remove_labelled(container_label(self.cfg.cache_dir))
        return self._connected

    @functools.cached_property
    def toolchain_sha256(self) -> str:
        return sha256_file(self.cfg.toolchain)

    @functools.cached_property
    def zig(self) -> Path:
        """``zig_root()``, unpacked (or found) once per run."""
        return zig_root(self.cfg, self.index)

    def build_lock(self, name: str = "") -> Lock:
        """The build constraints lock for the sdist of ``name``: its override from
        ``[tool.factory.build-overrides]`` if it has one (e.g. a lock with ``Cython<3``),
        else ``build-constraints``. ``LockError`` naming the file when missing or invalid."""
        path = dict(self.cfg.build_overrides).get(name) or self.cfg.build_constraints
        assert path is not None
        if path not in self._build_locks:
            try:
                self._build_locks[path] = read_lock(path)
            except LockError as e:
                raise LockError(f"build constraints: {e.problem}", e.fix) from None
        return self._build_locks[path]

    @property
    def engine(self) -> Engine:
        return self._env()[0]

    @property
    def registry(self) -> Registry:
        return self._env()[1]

    # -- requests ---------------------------------------------------------------------
    def request(self, pin: Pin, target: Target) -> BuildRequest | BuildOutcome:
        """The build request for a missing cell, or a failed outcome when the lock allows no sdist."""
        found = best_sdist(pin, self.index.files(pin.name))
        if found is None:
            return BuildOutcome(
                pin.name, pin.version, target.name, ok=False, sdist="", sdist_sha256="",
                reason=f"no wheel for {target.name} and no sdist whose sha256 the lock allows",
            )
        return BuildRequest(pin, target, found[0], found[1])

    def builder_for(self, target: Target) -> str:
        """The builder image reference for ``target`` (bootstrapped on first use)."""
        upstream = self.cfg.builder_image(target)
        if upstream is not None:
            return upstream
        if target.docker_arch not in self._builders:
            builders.require_recipe(self.cfg)
            entry = builders.ensure_builder(self.cfg, target.docker_arch, self.engine, self.registry, self.index)
            self._builders[target.docker_arch] = entry.ref
        return self._builders[target.docker_arch]

    # -- one cell ---------------------------------------------------------------------
    def build(self, req: BuildRequest) -> BuildOutcome:
        """Build one cell (or reuse its cached result); never raises for the cell's own failure."""
        pin, target = req.pin, req.target
        base = BuildOutcome(pin.name, pin.version, target.name, ok=False, sdist=req.sdist.filename, sdist_sha256=req.sdist_sha256)
        try:
            sdist = self.index.fetch(req.sdist, req.sdist_sha256)
            info = inspect_sdist(sdist)
            build_lock = self.build_lock(pin.name)
            check_requires(info, build_lock, target, self.cfg.python)
        except (SdistError, BuildDependencyError) as e:
            base.reason = str(e)
            return base
        builder = self.builder_for(target)
        base.builder, base.toolchain_sha256, base.build_constraints_sha256 = builder, self.toolchain_sha256, build_lock.sha256
        key = hashlib.sha256(
            json.dumps([procedure_sha256(), req.sdist_sha256, target.name, builder, self.toolchain_sha256, build_lock.sha256]).encode()
        ).hexdigest()
        entry = self.cfg.cache_dir / "builds" / key
        cached = self._cached(entry)
        if cached is not None:
            return cached
        deps = builddeps_dir(self.cfg.cache_dir, build_lock, self.build_platform(target), self.cfg.python, self.index)
        entry.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        try:
            outcome = self._run_cibuildwheel(req, sdist, builder, deps, work, base)
            if outcome.ok:
                outcome.log = str(entry / "build.log")  # where it will be once work is renamed
                (work / "outcome.json").write_text(json.dumps(asdict(outcome), indent=1))
                shutil.rmtree(entry, ignore_errors=True)
                os.replace(work, entry)
            else:
                logs = self.cfg.cache_dir / "builds" / "failed"
                logs.mkdir(parents=True, exist_ok=True)
                log = logs / f"{pin.name}-{pin.version}-{target.name}.log"
                shutil.copy(work / "build.log", log)
                outcome.log = str(log)
            return outcome
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def build_platform(self, target: Target) -> Target:
        """The platform the build backend runs on, whose wheels the build dependencies must be.

        The target itself in an upstream builder; in a bootstrapped (glibc) builder, the
        manylinux target of the same arch, also when cross-building for musl.
        """
        if target.libc == "manylinux" or self.cfg.builder_image(target) is not None:
            return target
        for t in self.cfg.targets:
            if t.libc == "manylinux" and t.arch == target.arch:
                return t
        return parse_target(f"manylinux_2_28_{target.arch}")

    def _cached(self, entry: Path) -> BuildOutcome | None:
        try:
            outcome = BuildOutcome(**json.loads((entry / "outcome.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None
        wheel = entry / outcome.filename
        if not wheel.is_file() or sha256_file(wheel) != outcome.sha256:
            shutil.rmtree(entry, ignore_errors=True)  # corrupt: evict and rebuild
            return None
        outcome.cached, outcome.log = True, str(entry / "build.log")
        return outcome

    def _run_cibuildwheel(self, req: BuildRequest, sdist: Path, builder: str, deps: Path, work: Path, base: BuildOutcome) -> BuildOutcome:
        target = req.target
        upstream = self.cfg.builder_image(target) is not None
        out = work / "out"
        zig = None
        if not upstream:
            zig = self.zig
            (self.cfg.cache_dir / "zig-cache").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
        env.update(cibuildwheel_env(self.cfg.python, target, builder, deps, zig, self.cfg.cache_dir / "zig-cache", _sdist_epoch(sdist), container_label(self.cfg.cache_dir)))
        cmd = [
            sys.executable, "-m", "cibuildwheel", str(sdist),
            "--platform", "linux", "--archs", target.arch,
            "--output-dir", str(out), "--config-file", str(RESOURCES / "cibuildwheel.toml"),
        ]
        started = time.monotonic()
        log_path = work / "build.log"
        console.print(f"building {req.pin.name}=={req.pin.version} for {target.name} (sdist {req.sdist.filename})")
        with open(log_path, "wb") as log:
            try:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work, timeout=self.cfg.build_timeout, preexec_fn=die_with_parent).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        base.seconds = round(time.monotonic() - started, 1)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-LOG_TAIL:]
        if rc != 0:
            base.reason = "build timed out" if rc == -1 else f"cibuildwheel exited with {rc}"
            base.log_tail = tail
            return base
        wheels = sorted(out.glob("*.whl"))
        if len(wheels) != 1:
            base.reason, base.log_tail = f"cibuildwheel produced {len(wheels)} wheels, expected 1", tail
            return base
        wheel = work / wheels[0].name
        os.replace(wheels[0], wheel)
        try:
            self.verify(wheel, target, builder)
        except WheelContentError as e:
            base.reason, base.log_tail = str(e), tail
            return base
        from packaging.utils import parse_wheel_filename

        tags = parse_wheel_filename(wheel.name)[3]
        rank = target.rank(self.cfg.python)
        base.ok, base.filename, base.sha256 = True, wheel.name, sha256_file(wheel)
        base.tag = str(min((rank[t], t) for t in tags if t in rank)[1])
        base.cross_built = target.libc == "musllinux" and not upstream
        return base

    # -- checks -----------------------------------------------------------------------
    def verify(self, wheel: Path, target: Target, builder: str) -> None:
        """Static checks of a built wheel: it fits ``target`` (tags within the glibc floor,
        naming the symbols otherwise), ELF machine, and for cross-built musl wheels the
        NEEDED set and symbol resolution. Raises ``WheelContentError``."""
        from packaging.utils import parse_wheel_filename

        check_wheel(wheel, target)
        tags = parse_wheel_filename(wheel.name)[3]
        if not any(t in target.rank(self.cfg.python) for t in tags):
            above = glibc_versions_above(wheel, target.floor) if target.libc == "manylinux" else []
            raise WheelContentError(
                f"{wheel.name} does not fit {target.name}"
                + (f": it needs {', '.join(above[:6])}" if above else f" (tags {', '.join(sorted(map(str, tags)))})"),
                f"build against the {target.name} glibc floor (zig -target {zig_target(target)}) or raise the target's floor",
            )
        if target.libc == "musllinux" and self.cfg.builder_image(target) is None:
            check_musl_wheel(wheel, target, self.exports(builder, target))

    def exports(self, builder: str, target: Target) -> set[str]:
        """musl's libc.so and CPython's libpython exports for ``target``'s arch, read from the
        builder image (cached in ``<cache>/exports/<builder digest>.json``)."""
        if builder in self._exports:
            return self._exports[builder]
        cache = self.cfg.cache_dir / "exports" / (hashlib.sha256(builder.encode()).hexdigest() + ".json")
        if cache.is_file():
            names = set(json.loads(cache.read_text()))
        else:
            names = set()
            arch = target.docker_arch
            for path in (f"/usr/lib/{arch.musl_triplet}/libc.so", f"/usr/lib/{arch.triplet}/libpython3.14.so.1.0"):
                names |= elf_exports(self.engine.read_file(builder, path))
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(sorted(names)))
        self._exports[builder] = names
        return names

    def import_check(self, target: Target, wheel_dir: Path, outcomes: list[BuildOutcome]) -> None:
        """Install each built manylinux wheel with ``--no-index`` (dependencies from
        ``wheel_dir``) into the runtime base image of its arch and import its top-level
        modules; aarch64 runs through QEMU. A failure turns the outcome's ``ok`` off."""
        if target.libc != "manylinux":
            return  # no musl CPython here to import into; musllinux wheels get the static checks
        todo = [o for o in outcomes if o.ok and o.target == target.name]
        if not todo:
            return
        _, _, bases, pip_wheel = self._env()
        base = bases[target.docker_arch]
        # The engine may have lost the base (pruned, or untagged by another project that
        # shares its digest): pull it back by digest rather than fail to start a container.
        self.engine.ensure_local(base.ref, f"linux/{target.docker_arch}", self.registry.auth)
        for o in todo:
            modules = top_level_modules(wheel_dir / o.filename)
            script = (
                "set -e; python3 -m venv --without-pip /tmp/v; "
                "/tmp/v/bin/python /opt/factory/pip.whl/pip install -q --no-index --disable-pip-version-check "
                f"--root-user-action ignore --find-links /opt/factory/wheels /opt/factory/wheels/{o.filename}; "
                f"/tmp/v/bin/python -c 'import {', '.join(modules) or 'sys'}; print(\"imported\")'"
            )
            rc, output = self.engine.run(
                base.ref,
                ["sh", "-c", script],
                volumes={str(wheel_dir): {"bind": "/opt/factory/wheels", "mode": "ro"}, str(pip_wheel): {"bind": "/opt/factory/pip.whl", "mode": "ro"}},
                platform=f"linux/{target.docker_arch}",
                network=False,
            )
            if rc != 0 or "imported" not in output:
                o.ok = False
                o.reason = f"built, but installing and importing {', '.join(modules)} on {target.name} failed"
                o.log_tail = output.strip().splitlines()[-LOG_TAIL:]


def top_level_modules(wheel: Path) -> list[str]:
    """Importable top-level names of a wheel: packages and extension/py modules at its root."""
    import zipfile

    names: set[str] = set()
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            head = member.split("/", 1)[0]
            if head.endswith((".dist-info", ".data")) or head.endswith(".libs"):
                continue
            if "/" in member:
                names.add(head)
            elif member.endswith(".py"):
                names.add(member[:-3])
            elif member.endswith(".so"):
                names.add(member.split(".", 1)[0])
    return sorted(n for n in names if n.isidentifier())
