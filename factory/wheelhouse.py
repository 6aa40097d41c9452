"""The wheelhouse stage: the best index wheel for every pin × target, verified, laid out.

Output layout (``out``)::

    <target>/<wheel files>      one directory per target (index and built wheels)
    install/<target>.lock       pip --require-hashes lock of that directory's files
    manifest.json               {"python", "lock_sha256", "targets": {target: [entry, ...]}}
    readiness.json, .md         the readiness matrix (report.readiness)
    sbom.cdx.json               CycloneDX SBOM of the wheel files
    simple/                     a PEP 503 index over all wheels (pip --index-url file://…)

Cells without a wheel on the index are compiled from their sdist by the build stage
(``build.SdistBuilder``) when one is given. Self-built wheels cannot match the index hashes
in the lock, so images install from ``install/<target>.lock``, whose hashes are those of
the wheelhouse files. The whole tree is built next to ``out`` in a temporary directory and
renamed into place; if any build fails, nothing is renamed and the readiness matrix goes to
``<out>.failed/`` instead.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from . import atomic
from .cache import sha256_file
from .errors import LockError, MissingWheelsError
from .index import Index
from .lockfile import Lock, Pin
from .progress import Progress
from .sbom import wheelhouse_sbom
from .selection import Choice, best_wheel
from .targets import Target
from .verify import check_wheel

if TYPE_CHECKING:
    from .build import SdistBuilder
    from .buildoutcome import BuildOutcome


SBOM_NAME = "sbom.cdx.json"


@dataclass(frozen=True)
class Selection:
    """Result of matching a lock against index pages: choices, and (pin, target) without a wheel."""

    choices: tuple[Choice, ...]
    missing: tuple[tuple[Pin, Target], ...]


@dataclass(frozen=True)
class WheelhouseResult:
    """What ``build_wheelhouse`` wrote: the directory, the manifest dict, the missing cells."""

    out: Path
    manifest: dict
    missing: tuple[tuple[Pin, Target], ...] = field(default=())
    reused: bool = False
    outcomes: tuple = field(default=())


def select(lock: Lock, targets: tuple[Target, ...], python: str, index: Index, jobs: int = 4) -> Selection:
    """Read each pin's index page once (``jobs`` at a time) and choose a wheel per target.

    Pins whose markers hold for no target are rejected with ``LockError``.
    """
    for pin in lock.pins:
        if not any(pin.applies_to(t, python) for t in targets):
            raise LockError(
                f"{lock.path}:{pin.line}: {pin.name}'s marker ({pin.marker}) excludes every target",
                "drop the pin or fix its marker",
            )
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pages = dict(zip((p.name for p in lock.pins), pool.map(index.files, [p.name for p in lock.pins]), strict=False))
    choices: list[Choice] = []
    missing: list[tuple[Pin, Target]] = []
    for target in targets:
        for pin in lock.pins:
            if not pin.applies_to(target, python):
                continue
            choice = best_wheel(pin, target, python, pages[pin.name])
            if choice is None:
                missing.append((pin, target))
            else:
                choices.append(choice)
    return Selection(tuple(choices), tuple(missing))


def manifest_of(python: str, lock: Lock, targets: tuple[Target, ...], choices: tuple[Choice, ...]) -> dict:
    """The ``manifest.json`` dict: ``{"python", "lock_sha256", "targets": {name: [entry]}}``.

    Each entry is ``{"name", "version", "filename", "sha256", "tag", "source": "index"}``,
    sorted by name.
    """
    per_target: dict[str, list[dict]] = {t.name: [] for t in targets}
    for c in choices:
        per_target[c.target.name].append(
            {
                "name": c.pin.name,
                "version": c.pin.version,
                "filename": c.package.filename,
                "sha256": c.sha256,
                "tag": c.tag,
                "source": "index",
            }
        )
    for entries in per_target.values():
        entries.sort(key=lambda e: e["name"])
    return {"python": python, "lock_sha256": lock.sha256, "targets": per_target}


def write_simple_index(root: Path, manifest: dict) -> None:
    """Write a PEP 503 ``simple/`` tree under ``root`` linking to the target directories."""
    projects: dict[str, dict[str, tuple[str, str]]] = {}
    for target, entries in manifest["targets"].items():
        for e in entries:
            projects.setdefault(e["name"], {}).setdefault(e["filename"], (target, e["sha256"]))
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


def current_manifest(out: Path, lock: Lock, targets: tuple[Target, ...], python: str) -> dict | None:
    """``out``'s manifest if it was built from ``lock`` for exactly these ``targets`` and
    ``python``, has no missing cell, has its SBOM, and every file still has its recorded
    sha256; else None.
    """
    try:
        manifest = load_manifest(out)
    except (OSError, ValueError):
        return None
    if (
        not (out / SBOM_NAME).is_file()
        or not (out / "readiness.json").is_file()
        or manifest.get("lock_sha256") != lock.sha256
        or manifest.get("python") != python
        or "missing" in manifest
        or set(manifest.get("targets", {})) != {t.name for t in targets}
    ):
        return None
    checked: dict[int, str] = {}  # hard links share an inode: hash each file once
    for target, entries in manifest["targets"].items():
        for e in entries:
            path = out / target / e["filename"]
            try:
                inode = path.stat().st_ino
            except OSError:
                return None
            if inode not in checked:
                checked[inode] = sha256_file(path)
            if checked[inode] != e["sha256"]:
                return None
    return manifest


def built_entry(o: BuildOutcome) -> dict:
    """The manifest entry of a wheel built from its sdist (``"source": "built"``)."""
    return {
        "name": o.name,
        "version": o.version,
        "filename": o.filename,
        "sha256": o.sha256,
        "tag": o.tag,
        "source": "built",
        "sdist": o.sdist,
        "sdist_sha256": o.sdist_sha256,
        "builder": o.builder,
        "toolchain_sha256": o.toolchain_sha256,
        "build_constraints_sha256": o.build_constraints_sha256,
        "build_seconds": o.seconds,
        "cross_built": o.cross_built,
    }


def install_lock(entries: list[dict]) -> str:
    """A pip ``--require-hashes`` lock of one target directory: ``name==version --hash=…``."""
    return "".join(f"{e['name']}=={e['version']} --hash=sha256:{e['sha256']}\n" for e in sorted(entries, key=lambda e: e["name"]))


def build_wheelhouse(
    lock: Lock,
    targets: tuple[Target, ...],
    python: str,
    index: Index,
    out: Path,
    allow_missing: bool = False,
    jobs: int = 4,
    builder: Callable[[], SdistBuilder] | None = None,
) -> WheelhouseResult:
    """Select, download (once per file, ``jobs`` at a time), build, verify and lay out the wheelhouse.

    Each index wheel is checked against its own name (``verify.check_wheel``): WHEEL tags
    and the machine of every ELF file inside; a liar raises ``WheelContentError``.

    Cells without an index wheel are built by ``builder()`` (a factory, called only when a
    cell is missing, so a wheels-only lock needs no Docker here; one cibuildwheel run each; a
    failure does not stop the others). If any fails, ``BuildFailedError`` is raised after
    writing the readiness matrix to ``<out>.failed/``, and ``out`` is left as it was.
    Without a builder, ``MissingWheelsError`` lists every missing cell unless
    ``allow_missing``; then nothing is written. ``out`` is replaced atomically. A wheelhouse
    that is already current (``current_manifest``) is kept as it is, without reading the index.
    """
    from .buildoutcome import BuildRequest
    from .errors import BuildFailedError
    from .report import readiness, write_readiness

    current = current_manifest(out, lock, targets, python)
    if current is not None:
        return WheelhouseResult(out=out, manifest=current, reused=True)
    sel = select(lock, targets, python, index, jobs)
    outcomes: list[BuildOutcome] = []
    sdist_builder = builder() if sel.missing and builder is not None else None
    if sdist_builder is not None:
        for pin, target in sel.missing:
            req = sdist_builder.request(pin, target)
            outcomes.append(sdist_builder.build(req) if isinstance(req, BuildRequest) else req)
    elif sel.missing and not allow_missing:
        cells = "; ".join(f"{p.name}=={p.version} × {t.name}" for p, t in sel.missing)
        raise MissingWheelsError(
            f"{len(sel.missing)} pin × target without a cp{python.replace('.', '')[:3]} wheel on the index: {cells}",
            "pick versions with wheels, drop those targets, or pass --allow-missing to only report them",
        )
    unique = {c.sha256: c for c in sel.choices}
    with Progress() as progress:
        task = progress.files_task("wheels", len(unique))

        def fetch(c: Choice) -> tuple[str, Path]:
            path = index.fetch(c.package, c.sha256, progress=progress.bytes_tracker())
            check_wheel(path, c.target)
            progress.advance(task)
            return c.sha256, path

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            local = dict(pool.map(fetch, unique.values()))

    manifest = manifest_of(python, lock, targets, sel.choices)
    for o in outcomes:
        if o.ok:
            manifest["targets"][o.target].append(built_entry(o))
    for entries in manifest["targets"].values():
        entries.sort(key=lambda e: e["name"])
    unbuilt = sel.missing if sdist_builder is None else ()
    if unbuilt:
        manifest["missing"] = [{"name": p.name, "version": p.version, "target": t.name} for p, t in unbuilt]
    pins = [(p.name, p.version, [t.name for t in targets if p.applies_to(t, python)]) for p in lock.pins]

    def matrix() -> dict:
        return readiness(python, lock.sha256, pins, [t.name for t in targets], manifest["targets"], outcomes)

    class _Failed(Exception):
        pass

    def fill(tmp: Path) -> None:
        for t in targets:
            (tmp / t.name).mkdir()
        for c in sel.choices:
            atomic.link_or_copy(local[c.sha256], tmp / c.target.name / c.package.filename)
        for o in outcomes:
            if o.ok:
                atomic.link_or_copy(o.wheel, tmp / o.target / o.filename)
        if sdist_builder is not None:
            for t in targets:
                outcomes[:] = sdist_builder.import_check(t, tmp / t.name, outcomes)
        if any(not o.ok for o in outcomes):
            raise _Failed
        (tmp / "install").mkdir()
        for t, entries in manifest["targets"].items():
            (tmp / "install" / f"{t}.lock").write_text(install_lock(entries))
        write_simple_index(tmp, manifest)
        write_readiness(tmp, matrix())
        (tmp / SBOM_NAME).write_text(wheelhouse_sbom(manifest))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    failed_dir = out.parent / f"{out.name}.failed"
    try:
        atomic.replace_dir(out, fill)
    except _Failed:  # the matrix shows a failed outcome over its cell's manifest entry
        failed_dir.mkdir(parents=True, exist_ok=True)
        write_readiness(failed_dir, matrix())
        bad = [o for o in outcomes if not o.ok]
        raise BuildFailedError(
            f"{len(bad)} of {len(outcomes)} sdist builds failed ({', '.join(f'{o.name}=={o.version} × {o.target}: {o.reason}' for o in bad)[:400]}); nothing was published",
            f"see {failed_dir / 'readiness.md'} and the build logs it names",
        ) from None
    if failed_dir.is_dir():
        import shutil

        shutil.rmtree(failed_dir, ignore_errors=True)
    return WheelhouseResult(out=out, manifest=manifest, missing=tuple(unbuilt), outcomes=tuple(outcomes))


def load_manifest(wheelhouse: Path) -> dict:
    """Read ``<wheelhouse>/manifest.json``; ``FileNotFoundError`` passes through."""
    return json.loads((wheelhouse / "manifest.json").read_text())

