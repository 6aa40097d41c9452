"""The go/no-go report: the migration playbooks' checklist items factory can prove, each
passed, failed or not applicable, with its evidence, read from the files a run leaves.

Inputs: ``images.lock`` (``ImagesLock``), the wheelhouse's ``manifest.json`` and
``readiness.json``, ``probes.yaml`` and ``releases.json`` beside images.lock, an optional
baseline images.lock (the release before), and the free-threaded lane's wheelhouse when it
exists. Nothing is fetched: the report proves what the recorded runs showed.

Output: ``report.json`` (schema ``resources/schemas/report.schema.json``), ``report.md`` and
``report.html`` (``reportpage``: the checklist, the readiness grid, the times to ready).
The items, in order (ids as in the JSON):

- ``wheels-only``: the images were built from this wheelhouse (same lock sha256), which holds
  a wheel for every pin on every glibc target the images run on (no missing cell);
- ``toolchain-pinned``: every wheel built from an sdist names its builder by digest and the
  toolchain lock's sha256;
- ``image-pinned``: CPython at a patch version, the index and every base by digest;
- ``startup-budget``: against the baseline, time to ready under the limits at most
  ``ready-regression`` (default +10 %) and RSS at most ``rss-regression`` (+5 %) more, on the
  arches measured natively;
- ``probes-validated``: probes.yaml written from time-to-ready measured under a CPU limit on
  every arch;
- ``rollback-tested``: releases.json records a rollback (``factory rollback``);
- ``free-threaded``: the cp314t lane's readiness (every needed cell has a wheel), when its
  wheelhouse exists; otherwise not applicable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .bases.imagelock import ImagesLock, Startup
from .core.errors import ArtifactError
from .core.textfile import write_atomically
from .images.kubeprobes import NAME as PROBES_NAME
from .images.kubeprobes import startup_budget
from .release.rollout import HISTORY_NAME, read_history
from .reportpage import NAME as PAGE_NAME
from .reportpage import RESULT_MARK, render
from .wheelhouse.manifest import Manifest
from .wheelhouse.readiness import Readiness, Status

SCHEMA = "schemas/report.schema.json"
Result = Literal["pass", "fail", "n/a"]
MARK = RESULT_MARK  # the page, report.md and the terminal mark results alike


@dataclass(frozen=True)
class Item:
    """One checklist item: ``id``, the playbook's words (``title``), ``result`` and its
    ``evidence`` (one line)."""

    id: str
    title: str
    result: Result
    evidence: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "result": self.result, "evidence": self.evidence}


@dataclass(frozen=True)
class Report:
    """The checklist for one images.lock: ``go`` when no item failed. ``readiness`` (the
    wheelhouse's matrix, None when it has none) and ``startups`` ((arch, measured, baseline
    or None) per arch measured) are for the page only."""

    images_lock: str
    index: str
    items: tuple[Item, ...]
    readiness: Readiness | None = None
    startups: tuple[tuple[str, Startup, Startup | None], ...] = ()

    @property
    def go(self) -> bool:
        return all(i.result != "fail" for i in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"images_lock": self.images_lock, "index": self.index, "go": self.go, "items": [i.to_json() for i in self.items]}

    def markdown(self) -> str:
        lines = [f"# Go/no-go: {'GO' if self.go else 'NO-GO'}", "", f"`{self.index}` ({self.images_lock})", "",
                 "| | item | evidence |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {MARK[i.result]} | {i.title} | {i.evidence.replace('|', '/')} |" for i in self.items]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> tuple[Path, Path, Path]:
        """Write ``report.json``, ``report.md`` and ``report.html`` into the directory ``out``
        (each atomically); ``OutputError`` if refused."""
        paths = out / "report.json", out / "report.md", out / PAGE_NAME
        write_atomically(paths[0], json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")
        write_atomically(paths[1], self.markdown())
        write_atomically(paths[2], render(self.go, self.index, [i.to_json() for i in self.items], self.readiness, self.startups))
        return paths


def _manifest(wheelhouse: Path) -> Manifest | None:
    try:
        return Manifest.load(wheelhouse / "manifest.json")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{wheelhouse / 'manifest.json'} is not a wheelhouse manifest ({e})", "rebuild it with `factory wheelhouse`") from None


def wheels_only(images: ImagesLock, manifest: Manifest | None) -> Item:
    title = "The wheels-only lane passes: every wheel in the image came from the wheelhouse"
    if manifest is None:
        return Item("wheels-only", title, "fail", "no manifest.json in the wheelhouse: build it with `factory wheelhouse`")
    if manifest.lock_sha256 != images.lock_sha256:
        return Item("wheels-only", title, "fail", f"images.lock is of lock {images.lock_sha256[:12]}, the wheelhouse of {manifest.lock_sha256[:12]}")
    arches = {i.arch for i in images.images}
    machine = {"amd64": "x86_64", "arm64": "aarch64"}
    used = [t for t in manifest.targets if t.startswith("manylinux") and any(t.endswith(machine[a]) for a in arches)]
    missing = [m for m in manifest.missing if m.target in used]
    if missing:
        return Item("wheels-only", title, "fail", f"{len(missing)} cell(s) without a wheel, e.g. {missing[0].name} on {missing[0].target}")
    wheels = sum(len(manifest.targets[t]) for t in used)
    return Item("wheels-only", title, "pass", f"{wheels} wheels on {', '.join(sorted(used))}, lock {images.lock_sha256[:12]}; installed with the index off")


def toolchain_pinned(manifest: Manifest | None) -> Item:
    title = "The build toolchain is pinned"
    if manifest is None:
        return Item("toolchain-pinned", title, "fail", "no manifest.json in the wheelhouse")
    built = [e for es in manifest.targets.values() for e in es if e.source == "built"]
    loose = [e for e in built if "@sha256:" not in (e.builder or "") or not re.fullmatch(r"[0-9a-f]{64}", e.toolchain_sha256 or "")]
    if loose:
        return Item("toolchain-pinned", title, "fail", f"{loose[0].filename} names builder {loose[0].builder or '(none)'!r} without a digest or toolchain hash")
    if not built:
        return Item("toolchain-pinned", title, "pass", "no wheel was built from an sdist: every wheel is the index's, by sha256")
    toolchains = sorted({(e.toolchain_sha256 or "")[:12] for e in built})
    return Item("toolchain-pinned", title, "pass", f"{len(built)} built wheels, each by a builder digest, toolchain lock {', '.join(toolchains)}")


def image_pinned(images: ImagesLock) -> Item:
    title = "The image is pinned to a patch version and a digest"
    problems = []
    if not re.fullmatch(r"\d+\.\d+\.\d+", images.python):
        problems.append(f"python {images.python!r} is not a patch version")
    if "@sha256:" not in images.index:
        problems.append(f"index {images.index} is not a digest")
    problems += [f"{i.arch} base {i.base} is not a digest" for i in images.images if "@sha256:" not in i.base]
    if problems:
        return Item("image-pinned", title, "fail", problems[0])
    return Item("image-pinned", title, "pass", f"CPython {images.python}; {images.index.rpartition('@')[2][:19]}; bases " +
                ", ".join(f"{i.arch} {i.base.rpartition('@')[2][:19]}" for i in images.images))  # fmt: skip


def _startups(images: ImagesLock) -> dict[str, Startup]:
    return {i.arch: i.startup for i in images.images if i.startup is not None}


def startup_budget_item(images: ImagesLock, baseline: ImagesLock | None, ready_regression: float, rss_regression: float) -> Item:
    title = f"Startup within +{ready_regression:.0%} and RSS within +{rss_regression:.0%} of the baseline"
    now = _startups(images)
    if not now:
        return Item("startup-budget", title, "n/a", "no time to ready measured: set [tool.factory.smoke] ready")
    if baseline is None:
        return Item("startup-budget", title, "fail", "no baseline: give the previous release's images.lock as --baseline")
    before = _startups(baseline)
    lines, failed = [], False
    for arch, s in sorted(now.items()):
        b = before.get(arch)
        if b is None:
            lines.append(f"{arch}: not in the baseline")
            failed = True
            continue
        ready = s.limited_median_s / b.limited_median_s - 1 if b.limited_median_s else 0.0
        rss = s.rss_bytes / b.rss_bytes - 1 if b.rss_bytes else 0.0
        gated = not s.emulated
        over = gated and (ready > ready_regression or rss > rss_regression)
        failed |= over
        lines.append(f"{arch}{' (emulated, not gated)' if not gated else ''}: ready {s.limited_median_s:.2f} s ({ready:+.1%}), RSS {s.rss_bytes / 2**20:.1f} MiB ({rss:+.1%})")
    return Item("startup-budget", title, "fail" if failed else "pass", "; ".join(lines))


def probes_validated(images: ImagesLock, directory: Path) -> Item:
    title = "Probes validated under cold start and a CPU limit"
    now = _startups(images)
    if not now:
        return Item("probes-validated", title, "n/a", "no readiness check configured ([tool.factory.smoke] ready)")
    if not (directory / PROBES_NAME).is_file():
        return Item("probes-validated", title, "fail", f"no {PROBES_NAME} beside images.lock: run `factory images`")
    unlimited = [a for a, s in now.items() if s.cpus <= 0]
    if unlimited:
        return Item("probes-validated", title, "fail", f"{unlimited[0]}: time to ready not measured under a CPU limit")
    parts = []
    for arch, s in sorted(now.items()):
        period, threshold = startup_budget(s.limited_max_s)
        parts.append(f"{arch}{' emulated' if s.emulated else ''}: cold ≤ {s.cold_max_s:.1f} s, at {s.cpus:g} CPU ≤ {s.limited_max_s:.1f} s "
                     f"({s.runs} runs), startupProbe budget {period * threshold} s")  # fmt: skip
    return Item("probes-validated", title, "pass", "; ".join(parts))


def rollback_tested(directory: Path) -> Item:
    title = "Rollback is one action (redeploy the old digest) and has been tested"
    history = read_history(directory / HISTORY_NAME)
    rollbacks = [r for r in history if r.action == "rollback"]
    if not rollbacks:
        promotes = sum(r.action == "promote" for r in history)
        return Item("rollback-tested", title, "fail", f"{HISTORY_NAME} records {promotes} promote(s) and no rollback: run `factory rollback --tag <tag>` once")
    last = rollbacks[-1]
    return Item("rollback-tested", title, "pass", f"{last.tag} rolled back to {last.digest[:19]} at {last.time}")


def free_threaded(wheelhouse: Path) -> Item:
    title = "The free-threaded (cp314t) lane's readiness"
    path = wheelhouse.parent / f"{wheelhouse.name}-cp314t" / "readiness.json"
    if not path.is_file():
        return Item("free-threaded", title, "n/a", "no cp314t wheelhouse (factory wheelhouse --abi cp314t)")
    try:
        matrix = Readiness.load(path)
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path} is not a readiness matrix ({e})", "rebuild it with `factory wheelhouse --abi cp314t`") from None
    counts = matrix.counts()
    bad = sum(c[Status.FAILED] + c[Status.MISSING] for c in counts.values())
    cells = sum(sum(v for k, v in c.items() if k != Status.NOT_NEEDED) for c in counts.values())
    return Item("free-threaded", title, "fail" if bad else "pass", f"{cells - bad} of {cells} cells have a wheel")


def build_report(images_lock: Path, wheelhouse: Path, baseline: Path | None = None,
                 ready_regression: float = 0.10, rss_regression: float = 0.05) -> Report:  # fmt: skip
    """The checklist (module docstring) of ``images_lock`` with the wheelhouse directory
    ``wheelhouse``; ``baseline`` the previous release's images.lock. Raises ``ArtifactError``
    (one line) when images.lock, the baseline, manifest.json, readiness.json or releases.json
    is not of its form (``ReleaseError`` for the last)."""
    images = ImagesLock.load(images_lock)
    base = ImagesLock.load(baseline) if baseline is not None else None
    manifest = _manifest(wheelhouse)
    items = (
        wheels_only(images, manifest),
        toolchain_pinned(manifest),
        image_pinned(images),
        startup_budget_item(images, base, ready_regression, rss_regression),
        probes_validated(images, images_lock.parent),
        rollback_tested(images_lock.parent),
        free_threaded(wheelhouse),
    )
    before = _startups(base) if base is not None else {}
    startups = tuple((arch, s, before.get(arch)) for arch, s in sorted(_startups(images).items()))
    return Report(str(images_lock), images.index, items, _readiness(wheelhouse), startups)


def _readiness(wheelhouse: Path) -> Readiness | None:
    """The wheelhouse's readiness matrix (its ``.failed`` sibling's after a failed build), or None."""
    failed = wheelhouse.parent / f"{wheelhouse.name}.failed" / "readiness.json"
    path = failed if failed.is_file() else wheelhouse / "readiness.json"
    if not path.is_file():
        return None
    try:
        return Readiness.load(path)
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path} is not a readiness matrix ({e})", "rebuild it with `factory wheelhouse`") from None
