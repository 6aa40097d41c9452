"""The wheelhouse stage: the best index wheel for every pin × target, verified, laid out.

Output layout (``out``)::

    <target>/<wheel files>      one directory per target (index and built wheels)
    install/<target>.lock       pip --require-hashes lock of that directory's files (manifest.InstallLock)
    manifest.json               manifest.Manifest
    readiness.json, .md         readiness.Readiness
    sbom.cdx.json               CycloneDX SBOM of the wheel files (sbom)
    simple/                     a PEP 503 index over all wheels (pip --index-url file://…)

A pin whose PEP 508 marker excludes a target is not needed there: no wheel, no install
lock line, ``not needed`` in the readiness matrix and ``not_needed`` in the manifest (a
universal lock, e.g. uv's, carries such pins legitimately, also ones no target needs).

Cells without a wheel on the index are compiled from their sdist by the build stage
(``build.SdistBuilder``) when one is given. Self-built wheels cannot match the index hashes
in the lock, so images install from ``install/<target>.lock``, whose hashes are those of
the wheelhouse files. The whole tree is built next to ``out`` in a temporary directory and
renamed into place; if any build fails, nothing is renamed and the readiness matrix goes to
``<out>.failed/`` instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name
from pypi_simple import DistributionPackage

from ..core import atomic
from ..core.cache import sha256_file
from ..core.errors import BuildFailedError, MissingWheelsError
from ..core.progress import Progress, console
from ..core.targets import Target
from ..index.client import Index
from ..index.selection import Choice, best_wheel, unlocked_wheel
from ..index.verify import check_name, check_wheel
from ..locks.lockfile import Lock, Pin
from .manifest import DEFAULT_ABI, LOCKED_OUT, NO_WHEEL, InstallLock, Manifest, ManifestEntry, MissingCell, NotNeeded, ProjectEntry, json_text
from .readiness import Failure, Readiness, readiness_of
from .sbom import wheelhouse_sbom

if TYPE_CHECKING:
    from ..sdist.build import SdistBuilder
    from ..sdist.outcome import BuildOutcome
    from ..sdist.project import ProjectSource


SBOM_NAME = "sbom.cdx.json"
MANIFEST_NAME = "manifest.json"
PROJECT_DIR = "project"
READINESS_NAME = "readiness.json"
READINESS_MD_NAME = "readiness.md"


@dataclass(frozen=True)
class WheelhouseRequest:
    """What to build: the ``lock``'s pins for ``targets`` and CPython ``python`` (``"3.14.8"``)
    with ABI ``abi`` (``"cp314"``), wheels from ``index``, into the directory ``out``.

    ``allow_missing`` reports cells without a wheel instead of refusing them (no builds);
    ``jobs`` is how many index pages and downloads run at a time; ``builder`` makes the
    build stage's ``SdistBuilder`` (called only when some cell lacks an index wheel).
    """

    lock: Lock
    targets: tuple[Target, ...]
    python: str
    index: Index
    out: Path
    abi: str = DEFAULT_ABI
    allow_missing: bool = False
    jobs: int = 4
    builder: Callable[[], SdistBuilder] | None = None
    # The service's own project, built from its source tree into <out>/project/ (needs ``builder``).
    project: ProjectSource | None = None


@dataclass(frozen=True)
class Selection:
    """Result of matching a lock against index pages: choices, (pin, target) without a
    wheel, and the pins a marker excludes from some targets (with those targets).

    ``locked_out`` maps a missing cell, as (pin name, version, target name), to the file
    name of the index wheel that fits it but whose sha256 the lock leaves out
    (``selection.unlocked_wheel``); a missing cell not in it has no fitting wheel at all."""

    choices: tuple[Choice, ...]
    missing: tuple[tuple[Pin, Target], ...]
    not_needed: tuple[tuple[Pin, tuple[Target, ...]], ...] = ()
    locked_out: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def missing_cell(self, pin: Pin, target: Target) -> MissingCell:
        """The manifest's record of the missing cell ``pin`` × ``target``, with its cause."""
        file = self.locked_out.get((pin.name, pin.version, target.name))
        return MissingCell(pin.name, pin.version, target.name, LOCKED_OUT if file else NO_WHEEL, file)


@dataclass(frozen=True)
class WheelhouseResult:
    """What ``build_wheelhouse`` wrote: the directory, its manifest, the cells left missing
    (``allow_missing``), whether the previous wheelhouse was kept, and the build outcomes."""

    out: Path
    manifest: Manifest
    missing: tuple[tuple[Pin, Target], ...] = field(default=())
    reused: bool = False
    outcomes: tuple[BuildOutcome, ...] = field(default=())


def excluded_targets(lock: Lock, targets: tuple[Target, ...], python: str) -> list[tuple[Target, ...]]:
    """Per pin, by position (a universal lock may pin one name several times under markers),
    the targets its marker excludes for CPython ``python`` with the lock's default groups."""
    return [tuple(t for t in targets if not p.applies_to(t, python, groups=lock.default_groups)) for p in lock.pins]


def select(lock: Lock, targets: tuple[Target, ...], python: str, index: Index, jobs: int = 4) -> Selection:
    """Read the index page of each pin needed on some target once (``jobs`` at a time)
    and choose a wheel per target where the pin's marker holds.

    Raises ``HashMismatchError`` (``selection.best_ranked``) and the index's errors.
    """
    excluded = excluded_targets(lock, targets, python)
    needed = [(i, p) for i, p in enumerate(lock.pins) if len(excluded[i]) < len(targets)]
    releases = sorted({(p.name, p.version) for _, p in needed})
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pages = dict(zip(releases, pool.map(lambda r: index.files(*r), releases), strict=True))
    choices: list[Choice] = []
    missing: list[tuple[Pin, Target]] = []
    locked_out: dict[tuple[str, str, str], str] = {}
    for target in targets:
        for i, pin in needed:
            if target in excluded[i]:
                continue
            files = pages[pin.name, pin.version]
            choice = best_wheel(pin, target, python, files)
            if choice is None:
                missing.append((pin, target))
                file = unlocked_wheel(pin, target, python, files)
                if file is not None:
                    locked_out[pin.name, pin.version, target.name] = file
            else:
                choices.append(choice)
    not_needed = tuple((p, excluded[i]) for i, p in enumerate(lock.pins) if excluded[i])
    return Selection(tuple(choices), tuple(missing), not_needed, locked_out)


RESOLUTION_VERSION = 1


def resolution_key(req: WheelhouseRequest) -> str:
    """sha256 hex naming a resolution: the lock's bytes, python, abi and targets. The lock's
    hashes bind every file, so the same key always resolves to the same files."""
    parts = [RESOLUTION_VERSION, req.lock.sha256, req.python, req.abi, sorted(t.name for t in req.targets)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def resolve(req: WheelhouseRequest) -> Selection:
    """``select`` with the result recorded in the cache (``FileCache.record``): a later run of
    the same lock, python, abi and targets whose chosen files are all cached reads no index
    page at all, so a new output assembles offline. A record that names a file no longer
    in the cache, or cells that need an sdist build, falls back to the index."""
    cache = req.index.cache
    path = cache.record("resolutions", resolution_key(req))
    recorded = _recorded(req, path)
    if recorded is not None:
        return recorded
    sel = select(req.lock, req.targets, req.python, req.index, req.jobs)
    record = {
        "choices": [[_pin_position(req.lock, c.pin), c.target.name, c.package.filename, c.sha256, c.tag] for c in sel.choices],
        "missing": [[_pin_position(req.lock, p), t.name] for p, t in sel.missing],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staged.write_text(json.dumps(record))
    os.replace(staged, path)
    return sel


def _pin_position(lock: Lock, pin: Pin) -> int:
    return next(i for i, p in enumerate(lock.pins) if p is pin)


def _recorded(req: WheelhouseRequest, path: Path) -> Selection | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record["missing"]:
        return None  # builds need their sdists' index pages anyway
    targets = {t.name: t for t in req.targets}
    choices = []
    for position, target, filename, sha, tag in record["choices"]:
        if req.index.cache.get(sha, filename) is None:
            return None
        package = DistributionPackage(
            filename=filename, url="", project=None, version=None, package_type="wheel",
            digests={"sha256": sha}, requires_python=None, has_sig=None,
        )  # fmt: skip
        choices.append(Choice(req.lock.pins[position], targets[target], package, sha, tag))
    excluded = excluded_targets(req.lock, req.targets, req.python)
    not_needed = tuple((p, excluded[i]) for i, p in enumerate(req.lock.pins) if excluded[i])
    return Selection(tuple(choices), (), not_needed)


def index_entry(c: Choice) -> ManifestEntry:
    """The manifest entry of an index wheel (``source="index"``)."""
    return ManifestEntry(name=c.pin.name, version=c.pin.version, filename=c.package.filename, sha256=c.sha256, tag=c.tag)


def built_entry(o: BuildOutcome) -> ManifestEntry:
    """The manifest entry of a wheel built from its sdist (``source="built"``)."""
    return ManifestEntry(
        name=o.name,
        version=o.version,
        filename=o.filename,
        sha256=o.sha256,
        tag=o.tag,
        source="built",
        sdist=o.sdist,
        sdist_sha256=o.sdist_sha256,
        builder=o.builder,
        toolchain_sha256=o.toolchain_sha256,
        build_constraints_sha256=o.build_constraints_sha256,
        build_seconds=o.seconds,
        cross_built=o.cross_built,
        build_constraints=o.build_constraints or None,
        libraries=o.libraries,
        environment=o.environment,
    )


def manifest_of(
    req: WheelhouseRequest, sel: Selection, outcomes: list[BuildOutcome], unbuilt: tuple[tuple[Pin, Target], ...], project: BuildOutcome | None = None
) -> Manifest:
    """The manifest of ``sel``'s index wheels plus the successful build ``outcomes`` and
    the service's ``project`` wheel (when built)."""
    per_target: dict[str, list[ManifestEntry]] = {t.name: [] for t in req.targets}
    for c in sel.choices:
        per_target[c.target.name].append(index_entry(c))
    for o in outcomes:
        if o.ok:
            per_target[o.target].append(built_entry(o))
    return Manifest(
        python=req.python,
        abi=req.abi,
        lock_sha256=req.lock.sha256,
        targets={t: tuple(es) for t, es in per_target.items()},
        not_needed=tuple(NotNeeded(p.name, p.version, p.marker or "", tuple(t.name for t in ts)) for p, ts in sel.not_needed),
        missing=tuple(sel.missing_cell(p, t) for p, t in unbuilt),
        project=project_entry(project, req.project.tree_sha256) if project is not None and project.ok and req.project is not None else None,
    )


def project_entry(o: BuildOutcome, tree_sha256: str) -> ProjectEntry:
    """The manifest's ``project`` of the service's built wheel."""
    return ProjectEntry(
        name=o.name, version=o.version, filename=o.filename, sha256=o.sha256, tag=o.tag, tree_sha256=tree_sha256, builder=o.builder,
        toolchain_sha256=o.toolchain_sha256, build_constraints_sha256=o.build_constraints_sha256, build_seconds=o.seconds,
    )  # fmt: skip


def _project(req: WheelhouseRequest, builder: SdistBuilder | None) -> BuildOutcome | None:
    """The service project's outcome (built, or from the build cache), or None when the
    request ships no project or builds nothing (``--no-build``, ``--allow-missing``: the
    wheelhouse then holds no project wheel, and the images stage refuses it)."""
    if req.project is None:
        return None
    if builder is None and req.builder is not None:
        builder = req.builder()
    if builder is None:
        console.print(f"[yellow]the project {req.project.project.name} is not built (this run builds nothing)[/yellow]")
        return None
    return builder.build_project(req.project, req.lock)


def install_locks(manifest: Manifest, lock: Lock) -> dict[str, InstallLock]:
    """Per target, the install lock of its wheels, with the extras the lock's pins name.

    Extras come from ``getattr(pin, "extras", ())``: ``lockfile.Pin`` gains ``extras`` with
    the lock-format readers; until then no extras appear.
    """
    extras = {p.name: tuple(getattr(p, "extras", ())) for p in lock.pins}
    return {t: InstallLock.of(manifest.entries(t), extras) for t in manifest.targets}


def write_simple_index(root: Path, manifest: Manifest) -> None:
    """Write a PEP 503 ``simple/`` tree under ``root`` linking to the target directories."""
    projects: dict[str, dict[str, tuple[str, str]]] = {}
    for target, entries in manifest.targets.items():
        for e in entries:
            projects.setdefault(e.name, {}).setdefault(e.filename, (target, e.sha256))
    simple = root / "simple"
    simple.mkdir()
    links = "\n".join(f'<a href="{html.escape(n)}/">{html.escape(n)}</a><br/>' for n in sorted(projects))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}\n</body></html>\n")
    for name, files in projects.items():
        d = simple / canonicalize_name(name)
        d.mkdir()
        rows = "\n".join(
            f'<a href="../../{html.escape(t)}/{html.escape(f)}#sha256={s}">{html.escape(f)}</a><br/>'
            for f, (t, s) in sorted(files.items())
        )
        (d / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{rows}\n</body></html>\n")


def current_manifest(req: WheelhouseRequest) -> Manifest | None:
    """``req.out``'s manifest if it was built from ``req.lock`` for exactly ``req.targets``,
    ``req.python`` and ``req.abi``, has no missing cell, has its SBOM and readiness matrix,
    and every file still has its recorded sha256 (a hard link of an unchanged, stamped cache
    entry is not hashed again: ``FileCache.trusted``); else None.
    """
    out = req.out
    try:
        manifest = Manifest.load(out / MANIFEST_NAME)
    except (OSError, ValueError):
        return None
    if (
        not (out / SBOM_NAME).is_file()
        or not (out / READINESS_NAME).is_file()
        or manifest.lock_sha256 != req.lock.sha256
        or manifest.python != req.python
        or manifest.abi != req.abi
        or manifest.missing
        or set(manifest.targets) != {t.name for t in req.targets}
        or (manifest.project.tree_sha256 if manifest.project else None) != (req.project.tree_sha256 if req.project else None)
    ):
        return None
    if manifest.project is not None:
        wheel = out / PROJECT_DIR / manifest.project.filename
        if not wheel.is_file() or sha256_file(wheel) != manifest.project.sha256:
            return None
    checked: dict[int, str] = {}  # hard links share an inode: hash each file once
    cache = req.index.cache
    for target, entries in manifest.targets.items():
        for e in entries:
            path = out / target / e.filename
            try:
                inode = path.stat().st_ino
            except OSError:
                return None
            if inode not in checked:
                checked[inode] = e.sha256 if cache.trusted(e.sha256, path) else sha256_file(path)
            if checked[inode] != e.sha256:
                return None
    return manifest


def write_readiness(directory: Path, matrix: Readiness) -> None:
    """Write ``readiness.json`` and ``readiness.md`` into ``directory``, each atomically
    (``atomic.write_text``: ``OutputError`` when the disk is full or not writable)."""
    atomic.write_text(directory / READINESS_NAME, json_text(matrix.to_json()))
    atomic.write_text(directory / READINESS_MD_NAME, matrix.markdown())


def build_wheelhouse(req: WheelhouseRequest) -> WheelhouseResult:
    """Select, download (once per file, ``req.jobs`` at a time), build, verify and lay out the wheelhouse.

    Each index wheel is checked against its own name (``verify.check_wheel``): WHEEL tags
    and the machine of every ELF file inside; a liar raises ``WheelContentError``. A cached
    wheel that passed it for its arch since its bytes were last verified is not read again
    (``FileCache.passed``; every wheel is, with ``--verify-cache``).

    Cells without an index wheel are built by ``req.builder()`` (a factory, called only
    when a cell is missing, so a wheels-only lock needs no Docker here; one cibuildwheel run
    each, ``cfg.build_jobs`` at a time; a failure does not stop the others). If any fails, ``BuildFailedError`` is raised
    after writing the readiness matrix to ``<out>.failed/``, and ``out`` is left as it was.
    Without a builder, ``MissingWheelsError`` lists every missing cell unless
    ``req.allow_missing``; then nothing is written. Pins a marker excludes from a target are
    left out there (not refused, also when no target needs them). ``out`` is replaced
    atomically. A wheelhouse that is already current (``current_manifest``) is kept as it
    is, without reading the index.
    """
    current = current_manifest(req)
    if current is not None:
        return WheelhouseResult(out=req.out, manifest=current, reused=True)
    sel = resolve(req)
    outcomes: list[BuildOutcome] = []
    sdist_builder = req.builder() if sel.missing and req.builder is not None else None
    if sdist_builder is not None:
        outcomes = sdist_builder.build_cells(sel.missing)
    elif sel.missing and not req.allow_missing:
        raise missing_error(sel, req.abi, req.python)
    unique = {c.sha256: c for c in sel.choices}
    with Progress() as progress:
        task = progress.files_task("wheels", len(unique))

        def fetch(c: Choice) -> tuple[str, Path]:
            path = req.index.fetch(c.package, c.sha256, progress=progress.bytes_tracker())
            cache, check = req.index.cache, check_name(c.target)
            if not cache.passed(c.sha256, path, check):
                check_wheel(path, c.target)
                cache.mark_passed(c.sha256, path, check)
            progress.advance(task)
            return c.sha256, path

        with ThreadPoolExecutor(max_workers=req.jobs) as pool:
            local = dict(pool.map(fetch, unique.values()))

    unbuilt = sel.missing if sdist_builder is None else ()
    own = _project(req, sdist_builder)
    manifest = manifest_of(req, sel, outcomes, unbuilt, own)

    def matrix() -> Readiness:  # after the import checks, which can fail a built wheel
        failures = [Failure(o.name, o.target, o.reason, tuple(o.log_tail), o.log) for o in outcomes if not o.ok]
        project = Failure(own.name, "", own.reason, tuple(own.log_tail), own.log) if own is not None and not own.ok else None
        return readiness_of(manifest_of(req, sel, outcomes, unbuilt, own), req.lock, failures, project)

    failed_dir = req.out.parent / f"{req.out.name}.failed"
    if own is not None and not own.ok:  # no image can ship without its project: nothing is published
        failed_dir.mkdir(parents=True, exist_ok=True)
        write_readiness(failed_dir, matrix())
        raise BuildFailedError(
            f"the project {own.name} failed to build from its source tree: {own.reason}"[:500],
            f"see {failed_dir / READINESS_MD_NAME}" + (f" and {own.log}" if own.log else ""),
        )

    class _Failed(Exception):
        pass

    failed: set[str] = set()  # targets with a failed cell: not published

    def fill(tmp: Path) -> None:
        nonlocal manifest
        for t in req.targets:
            (tmp / t.name).mkdir()
        for c in sel.choices:
            atomic.link_or_copy(local[c.sha256], tmp / c.target.name / c.package.filename)
        for o in outcomes:
            if o.ok:
                atomic.link_or_copy(o.wheel, tmp / o.target / o.filename)
        if own is not None:
            (tmp / PROJECT_DIR).mkdir()
            atomic.link_or_copy(own.wheel, tmp / PROJECT_DIR / own.filename)
        if sdist_builder is not None:
            for t in req.targets:
                outcomes[:] = sdist_builder.import_check(t, tmp / t.name, outcomes)
        failed.update(o.target for o in outcomes if not o.ok)
        if failed >= {t.name for t in req.targets}:
            raise _Failed
        for name in failed:  # a target with a failed cell is left out; the others are published
            shutil.rmtree(tmp / name)
        every = manifest_of(req, sel, outcomes, unbuilt, own)  # the import checks may have failed a wheel
        manifest = dataclasses.replace(every, targets={t: es for t, es in every.targets.items() if t not in failed})
        (tmp / "install").mkdir()
        for name, install_lock in install_locks(manifest, req.lock).items():
            install_lock.dump(tmp / "install" / f"{name}.lock")
        write_simple_index(tmp, manifest)
        write_readiness(tmp, matrix())
        (tmp / SBOM_NAME).write_text(wheelhouse_sbom(manifest))
        manifest.dump(tmp / MANIFEST_NAME)

    try:
        atomic.replace_dir(req.out, fill)
    except _Failed:  # every target has a failed cell: nothing is published
        failed_dir.mkdir(parents=True, exist_ok=True)
        write_readiness(failed_dir, matrix())
        raise _build_failed(outcomes, failed_dir, ()) from None
    if failed:
        failed_dir.mkdir(parents=True, exist_ok=True)
        write_readiness(failed_dir, matrix())
        raise _build_failed(outcomes, failed_dir, tuple(manifest.targets))
    if failed_dir.is_dir():
        shutil.rmtree(failed_dir, ignore_errors=True)
    return WheelhouseResult(out=req.out, manifest=manifest, missing=tuple(unbuilt), outcomes=tuple(outcomes))


def missing_error(sel: Selection, abi: str, python: str) -> MissingWheelsError:
    """The one-line refusal of ``sel``'s missing cells when nothing is built (``--no-build``):
    each cell with its cause, and the fix that cause calls for (lock again for ``python``
    when the index has a wheel the lock's hashes leave out)."""
    cells = [sel.missing_cell(p, t) for p, t in sel.missing]
    out = [c for c in cells if c.cause == LOCKED_OUT]
    text = "; ".join(f"{c.name}=={c.version} × {c.target}" + (f" (the lock leaves out {c.file})" if c.file else "") for c in cells)
    fixes = []
    if out:
        fixes.append(f"lock again for CPython {python} (`factory lock`, or uv pip compile --python-version {python} --generate-hashes) to allow the wheels the index has")
    if len(out) < len(cells):
        fixes.append("pick versions with wheels (`factory upgrade`), drop those targets")
    fixes.append("or pass --allow-missing to only report them")
    return MissingWheelsError(
        f"{len(cells)} pin × target without an allowed {abi} wheel on the index ({len(out)} of them left out by the lock's hashes): {text}",
        ", ".join(fixes),
    )


def _build_failed(outcomes: list[BuildOutcome], failed_dir: Path, published: tuple[str, ...]) -> BuildFailedError:
    bad = [o for o in outcomes if not o.ok]
    cells = ", ".join(f"{o.name}=={o.version} × {o.target}: {o.reason}" for o in bad)[:400]
    where = f"only {', '.join(published)} published" if published else "nothing was published"
    return BuildFailedError(
        f"{len(bad)} of {len(outcomes)} sdist builds failed ({cells}); {where}",
        f"see {failed_dir / READINESS_MD_NAME} and the build logs it names",
        published=published,
    )


def load_manifest(wheelhouse: Path) -> Manifest:
    """Read ``<wheelhouse>/manifest.json``; ``FileNotFoundError`` passes through, ``ValueError`` if malformed."""
    return Manifest.load(wheelhouse / MANIFEST_NAME)
