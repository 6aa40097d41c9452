"""Wiring: builds the shared resources (index, engine, registry) and runs stages in order.

``make images`` is ``run_all``: validate the lock, bootstrap (cached), wheelhouse for all
targets, images for both arches, smoke, summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from .bases.imagelock import ImagesLock
from .core import atomic
from .core.cache import FileCache, sha256_file
from .core.config import LOCK_NAMES, Config
from .core.errors import BootstrapError, BuildFailedError, ConfigError, LockError, OutputError, UnknownCellError, WheelhouseMismatchError
from .core.progress import console
from .core.targets import Target
from .index.client import Index
from .locks.lockfile import ExportOptions, Lock, Pin, check_for, read_lock
from .wheelhouse import stage as wheelhouse_stage

# The other stages are imported where they are used, so a wheelhouse run does not load the
# image, release and upgrade stages; the run locks' sweeps (``exclusive``) still import the
# sdist lane and bootstrap, and with them the Docker SDK.
if TYPE_CHECKING:
    from .bases.bootstrap import BaseImage
    from .core.engine import Engine
    from .core.registry import LocalRegistry, Registry
    from .images.smoke import SmokeResult
    from .release.provenance import Input
    from .sdist.build import SdistBuilder
    from .sdist.outcome import BuildOutcome, PlannedCell
    from .sdist.plan import Connection
    from .sdist.project import ProjectSource
    from .wheelhouse.upgrade import UpgradePlan


def run_lock_file(cache_dir: Path, path: Path) -> Path:
    """The run lock of ``path`` (the cache itself or an output): ``<cache_dir>/locks/<sha256
    hex of path's absolute form>.lock``, so that no lock file lands beside a user's outputs."""
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
    return cache_dir / "locks" / f"{key}.lock"


@contextlib.contextmanager
def exclusive(cache_dir: Path, *outputs: Path) -> Iterator[None]:
    """Hold the run lock (``run_lock_file``) of the cache and of each output.

    A second factory run on the same cache or output waits here, naming the output, instead
    of interleaving its writes with ours. The locks live in the cache, so two runs exclude
    each other on an output only when they share the cache dir. Locks are released even
    when the run fails; a killed run's lock file stays but is not held (flock), so it
    blocks no one. Holding the locks, any temporary file of ours is a killed run's leftover
    and is removed.
    """
    with contextlib.ExitStack() as stack:
        for path in (cache_dir, *outputs):
            lock_file = run_lock_file(cache_dir, path)
            for directory in (lock_file.parent, path.parent):
                try:
                    directory.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    what = "cache" if directory == lock_file.parent else "output"
                    fix = "set cache-dir (or FACTORY_CACHE_DIR) to a writable directory" if what == "cache" else "write the output to a writable directory"
                    raise OutputError(f"cannot create the {what} directory {directory}: {e.strerror}", fix) from None
            lock = FileLock(str(lock_file))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                console.print(f"waiting for another factory run to release {path} (lock {lock_file})")
                lock.acquire()
            stack.callback(lock.release)
        from .bases import bootstrap as bootstrap_stage
        from .sdist import build as build_stage

        FileCache(cache_dir).sweep()
        bootstrap_stage.sweep(cache_dir)
        build_stage.sweep(cache_dir)
        for out in outputs:
            atomic.sweep(out)
        yield


def make_index(cfg: Config, lock: Lock | None = None) -> Index:
    """The index for ``lock`` (``Config.index_for``: the configured one, or the lock's own
    ``--index-url``), downloading into the configured cache. A pylock package whose ``index``
    is another index (uv's named indexes, exported) is read from that one, as
    ``[tool.factory.indexes]`` maps it (``Config.index_here``); a file is still identified
    by its name and sha256."""
    cache = FileCache(cfg.cache_dir, verify=cfg.verify_cache)
    index = Index(cfg.index_for(lock.index_url if lock is not None else None), cache, cfg.ca_bundle)
    others: dict[str, Index] = {}
    for pin in lock.pins if lock is not None else ():
        if pin.index is None:
            continue
        url = cfg.index_here(pin.index)
        if url is None or url == index.url:
            continue
        index.route(pin.name, others.setdefault(url, Index(url, cache, cfg.ca_bundle)))
    return index


def export_options(cfg: Config) -> ExportOptions:
    """What a project lock exports for ``cfg`` (``[tool.factory] package, groups, extras``)."""
    return ExportOptions(cfg.cache_dir, cfg.python, cfg.export_package, cfg.export_groups, cfg.export_extras)


def load_lock(cfg: Config, path: Path) -> Lock:
    """Read the lock at ``path`` (any accepted format; a project lock is exported with
    ``export_options``) and check it against the configured python and targets
    (``lockfile.check_for``). ``LockError`` names the problem."""
    lock = read_lock(path, export_options(cfg))
    check_for(lock, cfg.python, cfg.targets)
    return lock


def find_lock(cfg: Config) -> Path:
    """The lock to read when neither ``--lock`` nor ``[tool.factory] lock`` names one: the
    one of ``LOCK_NAMES`` in the project's directory (``cfg.root``), else ``cfg.lock`` (whose
    absence ``read_lock`` reports). Several present must pin the same versions (each read as
    ``load_lock`` does); ``LockError`` names the two that disagree and a pin they differ on."""
    if cfg.lock_explicit:
        return cfg.lock
    present = [cfg.root / name for name in LOCK_NAMES if (cfg.root / name).is_file()]
    if len(present) <= 1:
        return present[0] if present else cfg.lock
    first = present[0]
    first_pins = {(p.name, p.version) for p in load_lock(cfg, first).pins}
    for other in present[1:]:
        pins = {(p.name, p.version) for p in load_lock(cfg, other).pins}
        if pins != first_pins:
            name, version = sorted(pins ^ first_pins)[0]
            which = other.name if (name, version) in pins else first.name
            raise LockError(
                f"{first.name} and {other.name} disagree ({which} pins {name}=={version}, the other does not)",
                "remove the stale one, or name the lock to use with --lock or [tool.factory] lock",
            )
    return first


def local_registry(cfg: Config) -> LocalRegistry:
    """The loopback registry process for ``cfg`` (data under ``registry-dir``)."""
    from .core.registry import LocalRegistry

    return LocalRegistry(cfg.registry, cfg.registry_dir, cfg.registry_htpasswd)


def connect_engine(cfg: Config) -> Engine:
    """The local Docker engine, handing each arch with a configured host
    (``[tool.factory.hosts]``) to that host's engine. ``DockerUnavailableError`` if the
    local engine does not answer (a host's, when that arch is first used)."""
    from .core.engine import Engine

    return Engine(hosts=dict(cfg.hosts))


def connect_registry(cfg: Config) -> Registry:
    """A checked registry client; starts the local registry first if configured so.

    Credentials come from ``FACTORY_REGISTRY_USER`` / ``FACTORY_REGISTRY_PASSWORD`` or the
    Docker config (``registry.credentials``).
    """
    from .core.engine import docker_login_credentials
    from .core.registry import Registry, credentials

    if cfg.registry_local:
        local_registry(cfg).start()
    registry = Registry(cfg.registry, credentials(cfg.registry, docker_login=docker_login_credentials))
    registry.check()
    return registry


def bases_for(cfg: Config) -> dict[str, BaseImage]:
    """The recorded base images; ``BootstrapError`` if an arch was never bootstrapped."""
    from .bases import bootstrap as bootstrap_stage

    require_lane_bases(cfg)
    bases = bootstrap_stage.read_bases_lock(cfg.bases_lock)
    for arch in cfg.arches:
        spec = cfg.base(arch)
        if spec.image is not None:
            bases[arch] = bootstrap_stage.upstream_base(spec)
        elif arch not in bases:
            raise BootstrapError(f"no {arch} base image in {cfg.bases_lock}", "run `factory bootstrap`")
    return bases


def runtime_bases(cfg: Config, engine: Engine, registry: Registry) -> dict[str, BaseImage]:
    """The recorded base images (``bases_for``), each made local to the engine that runs its
    arch, pulled from ``registry`` when that engine lacks it: the sdist lane runs them for
    build locks and import checks, ``factory lock`` compiles in the amd64 one, the images
    stage builds on them. ``BootstrapError`` before any of these starts when a bootstrapped
    base is in neither, as on a fresh machine whose bases.lock came with the checkout;
    ``RegistryError`` if the pull fails."""
    bases = bases_for(cfg)
    for arch, base in bases.items():
        local = engine.for_arch(arch)
        if local.inspect(base.ref) is not None:
            continue
        if base.source == "bootstrap" and registry.manifest_of_ref(base.ref) is None:
            raise BootstrapError(
                f"the {arch} base image {base.ref} that {cfg.bases_lock.name} records is neither in the engine nor in the registry",
                "run `factory bootstrap` (it builds the base again from its recipe), then this command",
            )
        local.ensure_local(base.ref, f"linux/{arch}", registry.auth)
    return bases


def run_bootstrap(cfg: Config) -> dict[str, BaseImage]:
    from .bases import bootstrap as bootstrap_stage

    engine = connect_engine(cfg)
    with exclusive(cfg.cache_dir, cfg.bases_lock):
        return bootstrap_stage.bootstrap(require_lane_bases(cfg), engine, connect_registry(cfg))


def sdist_builder(cfg: Config, index: Index, engine: Engine | None = None, registry: Registry | None = None) -> Callable[[], SdistBuilder]:
    """A factory for the build stage's ``SdistBuilder``: Docker, the registry and the base
    images are only reached when some cell actually needs a build."""
    from .sdist.build import SdistBuilder
    from .sdist.plan import Connection
    from .tools.toolchain import tool_wheel

    def connect() -> Connection:
        eng = engine or connect_engine(cfg)
        reg = registry or connect_registry(cfg)
        return Connection(engine=eng, registry=reg, bases=runtime_bases(cfg, eng, reg), pip_wheel=tool_wheel(cfg, index, "pip"))

    return lambda: SdistBuilder(cfg, index, connect)


def plan_cells(cfg: Config, lock: Lock) -> list[PlannedCell]:
    """``factory plan``: every pin × target cell of ``lock`` without an index wheel, with
    its build cache key as ``build`` would compute it (builders as ``builders.lock`` records
    them; nothing is built, bootstrapped or started). Raises the index's errors."""
    from .sdist.builders import cache_identity, read_builders_lock

    with exclusive(cfg.cache_dir):
        index = make_index(cfg, lock)
        recorded = {arch: cache_identity(b) for arch, b in read_builders_lock(cfg.builders_lock).items()}
        builder = sdist_builder(cfg, index)()
        return [builder.planned(pin, target, recorded) for pin, target in _missing_cells(cfg, lock, index)]


def _missing_cells(cfg: Config, lock: Lock, index: Index) -> tuple[tuple[Pin, Target], ...]:
    """The (pin, target) cells of ``lock`` without an index wheel (the wheelhouse's resolution)."""
    request = wheelhouse_stage.WheelhouseRequest(lock, cfg.targets, cfg.python, index, Path("."), abi=cfg.abi_tag, jobs=cfg.jobs)
    return wheelhouse_stage.resolve(request).missing


def build_only(cfg: Config, lock: Lock, cell: str, out: Path | None) -> BuildOutcome:
    """``factory wheelhouse --only CELL``: build the one cell ``cell`` (a ``plan`` id) into
    the build cache, index wheels untouched; with ``out``, copy its wheel into ``out/<target>/``.
    Returns its outcome (failed ones too). ``UnknownCellError`` when the lock's plan has no
    such cell (it has an index wheel, or the id is wrong)."""
    from .sdist.outcome import cell_id

    with exclusive(cfg.cache_dir):
        index = make_index(cfg, lock)
        cells = {cell_id(p.name, p.version, t.name): (p, t) for p, t in _missing_cells(cfg, lock, index)}
        if cell not in cells:
            listed = ", ".join(sorted(cells)[:5]) or "none: every cell has an index wheel"
            raise UnknownCellError(f"no cell {cell!r} to build in {lock.path.name} (cells: {listed})", f"take an id from `factory plan --lock {lock.path.name}`")
        (outcome,) = sdist_builder(cfg, index)().build_cells([cells[cell]])
    if out is not None and outcome.ok:
        (out / outcome.target).mkdir(parents=True, exist_ok=True)
        atomic.link_or_copy(outcome.wheel, out / outcome.target / outcome.filename)
    return outcome


def project_source(cfg: Config) -> ProjectSource | None:
    """The service's project tree to build into the wheelhouse, or None (no packaged project)."""
    from .sdist.project import ProjectSource

    if cfg.service is None or cfg.service.project is None:
        return None
    return ProjectSource.of(cfg.service.project)


def run_wheelhouse(cfg: Config, lock: Lock, out: Path, allow_missing: bool, build: bool = True) -> wheelhouse_stage.WheelhouseResult:
    with exclusive(cfg.cache_dir, out):
        index = make_index(cfg, lock)
        builder = sdist_builder(cfg, index) if build and not allow_missing else None
        return wheelhouse_stage.build_wheelhouse(
            wheelhouse_stage.WheelhouseRequest(
                lock, cfg.targets, cfg.python, index, out, abi=cfg.abi_tag, allow_missing=allow_missing, jobs=cfg.jobs, builder=builder,
                project=project_source(cfg),
            )
        )


def run_upgrade(cfg: Config, lock_path: Path, out: Path, write: bool = False) -> tuple[UpgradePlan, Path]:
    """``factory upgrade``: read the lock at ``lock_path`` (any accepted format, made for any
    Python: ``check_for`` is not applied, the point is to make it fit), plan its upgrade for
    the configured CPython and targets from the index and the pinned uv
    (``wheelhouse.upgrade``), and write the plan into ``out``; with ``write``, the proposed
    lock replaces the user's. Returns the plan and the proposed lock's path in ``out``.
    Nothing is written when the lock, the index or the resolution fails."""
    from .tools import uv as uv_tool
    from .wheelhouse import upgrade as upgrade_stage

    lock = read_lock(lock_path, dataclasses.replace(export_options(cfg), check_python=False))
    if write and lock.exported_from is not None:
        raise ConfigError(
            f"--write cannot rewrite {lock.exported_from.name}: {lock.exported_by} owns its format",
            f"run without --write and apply the printed {lock.exported_by} commands, or take the proposed pylock.toml",
        )
    with exclusive(cfg.cache_dir, out):
        index = make_index(cfg, lock)
        compiler = uv_tool.Compiler(uv_tool.uv_binary(cfg, index), index.url, cfg.cache_dir / "uv-cache", cfg.ca_bundle)
        plan = upgrade_stage.plan_upgrade(lock, cfg.targets, cfg.python, cfg.abi_tag, index, compiler, uv_tool.uv_platform)
        return plan, upgrade_stage.write_upgrade(plan, out, write)


def run_images(cfg: Config, lock: Lock, wheelhouse: Path, out: Path, strict: bool = False) -> ImagesLock:
    from .images import assemble as images_stage
    from .tools.toolchain import tool_wheel

    engine = connect_engine(cfg)
    with exclusive(cfg.cache_dir, out):
        registry = connect_registry(cfg)
        pip = tool_wheel(cfg, make_index(cfg, lock), "pip")
        return images_stage.build_images(cfg, engine, registry, lock, wheelhouse, runtime_bases(cfg, engine, registry), pip, out, strict)


def pinned_names(lock: Lock, images: ImagesLock) -> frozenset[str]:
    """The distribution names ``lock`` pins, for smoke's packaging-tool rule, after checking
    that ``images`` were built from it (``WheelhouseMismatchError`` otherwise)."""
    if lock.sha256 != images.lock_sha256:
        raise WheelhouseMismatchError(
            f"images.lock was built from lock {images.lock_sha256[:12]}, not {lock.path} ({lock.sha256[:12]})",
            "pass the images' lock with --lock",
        )
    return frozenset(p.name for p in lock.pins)


def run_smoke(cfg: Config, images_lock: Path, lock: Lock) -> list[SmokeResult]:
    """Smoke-test the images of ``images_lock``, built from ``lock`` (its pins may include
    packaging tools); a service with ``[tool.factory.smoke]`` is also started once cold and
    once under the limits per arch (``startup.measure``; ``SmokeError`` if it does not come
    up or stop). ``ArtifactError`` / ``WheelhouseMismatchError`` before any container."""
    from .images import smoke as smoke_stage
    from .images import startup as startup_stage
    from .tools.toolchain import tool_wheel

    images = ImagesLock.load(images_lock)
    pinned = pinned_names(lock, images)
    engine = connect_engine(cfg)
    connect_registry(cfg)
    pip = tool_wheel(cfg, make_index(cfg), "pip")
    results = smoke_stage.smoke(engine, images, cfg.python, pip, pinned)
    if cfg.smoke is not None and cfg.service is not None:
        # The service itself, once cold and once under the limits per arch: it still comes up
        # (the figures images.lock holds were measured by `factory images`, and are kept).
        once = dataclasses.replace(cfg.smoke, runs=1)
        for image in images.images:
            measured = startup_stage.measure(engine, image.ref, image.arch, once, cfg.service.image.stop_signal)
            console.print(f"service {startup_stage.describe(dataclasses.replace(image, startup=measured))}")
    return results


def write_oci_layout(cfg: Config, images: ImagesLock, dest: Path) -> Path:
    """``--oci-layout DIR``: the index and images of ``images`` as an OCI image layout at ``dest``."""
    from .images import layout as oci_layout

    registry = connect_registry(cfg)
    return oci_layout.write_layout(images, dest, registry.auth, insecure=cfg.registry_local or cfg.registry.startswith(("127.", "localhost")))


def run_all(cfg: Config, lock_path: Path, wheelhouse: Path, images_lock: Path, strict: bool = False, oci_layout_dir: Path | None = None) -> None:
    """The whole line, in order; each stage's errors stop it."""
    with exclusive(cfg.cache_dir, cfg.bases_lock, wheelhouse, images_lock, *([oci_layout_dir] if oci_layout_dir else [])):
        _run_all(cfg, lock_path, wheelhouse, images_lock, strict, oci_layout_dir)


def _run_all(cfg: Config, lock_path: Path, wheelhouse: Path, images_lock: Path, strict: bool, oci_layout_dir: Path | None = None) -> None:
    from .bases import bootstrap as bootstrap_stage
    from .images import assemble as images_stage
    from .images import layout as oci_layout
    from .images import smoke as smoke_stage
    from .release import signing as signing_stage
    from .report import print_summary
    from .tools.toolchain import tool_wheel

    started = time.monotonic()
    console.rule("validate lock")
    lock = load_lock(cfg, lock_path)
    exported = f", exported by {lock.exported_by} to {lock.format}" if lock.exported_from else ""
    console.print(f"{lock.exported_from or lock.path}: {len(lock.pins)} pins ({lock.format}{exported}), sha256 {lock.sha256[:12]}")
    console.rule("bootstrap")
    engine = connect_engine(cfg)
    registry = connect_registry(cfg)
    bases = bootstrap_stage.bootstrap(require_lane_bases(cfg), engine, registry)
    console.rule("wheelhouse")
    index = make_index(cfg, lock)
    failed: BuildFailedError | None = None
    try:
        result = wheelhouse_stage.build_wheelhouse(
            wheelhouse_stage.WheelhouseRequest(
                lock, cfg.targets, cfg.python, index, wheelhouse, abi=cfg.abi_tag, jobs=cfg.jobs, builder=sdist_builder(cfg, index, engine, registry),
                project=project_source(cfg),
            )
        )
        if result.reused:
            console.print(f"{wheelhouse}: current for lock {lock.sha256[:12]}, reused without reading the index")
    except BuildFailedError as e:
        image_cfg = complete_arches(cfg, e.published)
        if not image_cfg.bases:
            print_summary(wheelhouse.parent / f"{wheelhouse.name}.failed", None)
            raise
        # A failed cell blocks only its target: the arches whose image target is complete
        # still get their images, pushed and smoke-tested; the run then fails all the same.
        failed, cfg = e, image_cfg
        console.print(f"[yellow]{e.problem}[/yellow]; building the images of {', '.join(cfg.arches)} only")
    console.rule("images")
    pip = tool_wheel(cfg, index, "pip")
    images = images_stage.build_images(cfg, engine, registry, lock, wheelhouse, bases, pip, images_lock, strict)
    console.print(f"ready for smoke after {time.monotonic() - started:.1f} s")
    console.rule("smoke")
    smoke_stage.smoke(engine, images, cfg.python, pip, pinned_names(lock, images))
    console.rule("sign")
    signed = signing_stage.sign_with_cosign(cfg.cache_dir, images_lock, provenance_inputs(cfg, wheelhouse))
    console.print(f"signed and attested {len(signed['signing']['signatures'])} manifests; public key {signed['signing']['public_key']}")
    if oci_layout_dir is not None:
        console.print(f"OCI image layout: {oci_layout.write_layout(ImagesLock.load(images_lock), oci_layout_dir, registry.auth, insecure=cfg.registry_local)}")
    console.rule("summary")
    print_summary(wheelhouse, images_lock)
    if failed is not None:
        raise failed


def provenance_inputs(cfg: Config, wheelhouse: Path) -> list[Input]:
    """The inputs of a run that images.lock does not name, for its SLSA provenance: the
    toolchain lock, the wheelhouse manifest, each bootstrapped base's recipe and each
    builder image of builders.lock (sha256 of the files; builders by digest)."""
    from .release import provenance
    from .sdist.builders import read_builders_lock

    inputs = [
        provenance.Input("toolchain", str(cfg.toolchain), sha256_file(cfg.toolchain)),
        provenance.Input("wheelhouse-manifest", str(wheelhouse / wheelhouse_stage.MANIFEST_NAME), sha256_file(wheelhouse / wheelhouse_stage.MANIFEST_NAME)),
    ]
    for spec in cfg.bases:
        if spec.recipe is not None:
            inputs.append(provenance.Input(f"recipe-{spec.arch}", str(spec.recipe.path), sha256_file(spec.recipe.path)))
    if cfg.builders_lock.is_file():
        for arch, builder in sorted(read_builders_lock(cfg.builders_lock).items()):
            inputs.append(provenance.image_input(f"builder-{arch}", builder.ref))
    return inputs


def complete_arches(cfg: Config, published: tuple[str, ...]) -> Config:
    """``cfg`` restricted to the image arches whose glibc target is among the ``published``
    wheelhouse targets (no base left: no image can be built)."""
    targets = {t.name: t for t in cfg.targets if t.libc == "manylinux"}
    keep = tuple(b for b in cfg.bases if any(t.docker_arch == b.arch and name in published for name, t in targets.items()))
    return dataclasses.replace(cfg, bases=keep)


def require_lane_bases(cfg: Config) -> Config:
    """``cfg`` unchanged, unless it is the free-threaded lane with a base to bootstrap:
    ``ConfigError`` then, for no free-threaded CPython can be had from Debian here."""
    if cfg.free_threaded:
        recipes = [b.arch for b in cfg.bases if b.recipe is not None]
        if recipes:
            raise ConfigError(
                f"the free-threaded lane ({cfg.abi}) needs a free-threaded CPython {cfg.python} base image for {', '.join(recipes)}: "
                "Debian ships no python3.14t and CPython's sources cannot be reached here, so none can be bootstrapped",
                "set [tool.factory.base.<arch>] image to a free-threaded 3.14 image pinned by digest (registry mode)",
            )
    return cfg
