"""Which later release of a project is ready for a target Python on every target (domain; no I/O).

Read from the index's own listing of the project (PEP 503 HTML or PEP 691 JSON, as
``client.Index.files`` returns it): the files' names (PEP 427 wheel names, PEP 625 sdists),
``data-requires-python`` / ``requires-python`` (PEP 503 / 691), ``data-yanked`` / ``yanked``
(PEP 592) and, where a PEP 691 index serves it, ``upload-time`` (PEP 700).

A release is **ready** when, for every target, one of its wheels that is not yanked and whose
requires-python admits the configured CPython has a tag the target accepts
(``targets.Target.rank``): a cp314 wheel, an abi3 wheel of cp314 or earlier, or a pure-Python
wheel; in the free-threaded lane (``abi="cp314t"``) cp314t or pure-Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from pypi_simple import DistributionPackage

from ..core.targets import Target
from .client import SDIST_SUFFIXES


@dataclass(frozen=True)
class Release:
    """One version of a project as the index lists it: its files (yanked ones left out) and
    the earliest upload time the index gives for them (None on a PEP 503 page)."""

    version: Version
    files: tuple[DistributionPackage, ...]
    uploaded: datetime | None = None
    text: str = ""  # the version as the file names spell it ("2.0.0", where Version prints "2.0.0" too but a page may say "2.0")

    def __str__(self) -> str:
        return self.text or str(self.version)

    def admits(self, python: str) -> bool:
        """True when some file's requires-python admits CPython ``python`` (or none says)."""
        return any(_admits(f, python) for f in self.files)

    def wheel_for(self, target: Target, python: str) -> str | None:
        """The file name of this release's best wheel for ``target`` under CPython ``python``
        (requires-python admitting it), or None."""
        rank = target.rank(python)
        best: tuple[int, str] | None = None
        for f in self.files:
            if not f.filename.endswith(".whl") or not _admits(f, python):
                continue
            try:
                tags = parse_wheel_filename(f.filename)[3]
            except (InvalidWheelFilename, InvalidVersion):
                continue
            fits = [rank[t] for t in tags if t in rank]
            if fits and (best is None or min(fits) < best[0]):
                best = (min(fits), f.filename)
        return best[1] if best else None

    def ready(self, targets: Iterable[Target], python: str) -> bool:
        """True when every target has a wheel of this release (``wheel_for``)."""
        return all(self.wheel_for(t, python) is not None for t in targets)

    @property
    def has_sdist(self) -> bool:
        """True when the release lists an sdist."""
        return any(not f.filename.endswith(".whl") for f in self.files)


def _admits(f: DistributionPackage, python: str) -> bool:
    if not f.requires_python:
        return True
    try:
        return SpecifierSet(f.requires_python).contains(Version(python), prereleases=True)
    except InvalidSpecifier:
        return True  # an unparsable requires-python is ignored, as pip does


def releases(files: Iterable[DistributionPackage]) -> list[Release]:
    """The releases of a project's listed ``files``, oldest first (PEP 440 order): files
    grouped by the version their names carry, yanked files (PEP 592) and unparsable names
    left out."""
    grouped: dict[Version, list[DistributionPackage]] = {}
    spelled: dict[Version, str] = {}
    for f in files:
        if f.is_yanked:
            continue
        raw = raw_version(f.filename)
        try:
            version = Version(raw)
        except InvalidVersion:
            continue
        grouped.setdefault(version, []).append(f)
        spelled.setdefault(version, raw)
    out = []
    for version in sorted(grouped):
        times = [f.upload_time for f in grouped[version] if f.upload_time is not None]
        out.append(Release(version, tuple(grouped[version]), min(times) if times else None, spelled[version]))
    return out


def raw_version(filename: str) -> str:
    """The version a distribution file name carries, as spelled there (a wheel's second
    field, PEP 427; an sdist's text after the last ``-``); "" when it has none."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return parts[1] if len(parts) >= 5 else ""
    stem = next((filename[: -len(s)] for s in SDIST_SUFFIXES if filename.endswith(s)), "")
    return stem.rpartition("-")[2] if "-" in stem else ""


@dataclass(frozen=True)
class ReadyRelease:
    """The answer for one pin: ``found`` is the oldest later release that is ready (None when
    none is), ``newest`` the newest later release looked at (None when the index lists no
    later release), ``checked`` how many later releases were looked at."""

    found: Release | None
    newest: Version | None
    checked: int


def oldest_ready(after: str, files: Iterable[DistributionPackage], targets: Iterable[Target], python: str) -> ReadyRelease:
    """The oldest release later than version ``after`` whose requires-python admits CPython
    ``python`` and that is ready on every one of ``targets`` (module docstring), among the
    project's listed ``files``. Pre-releases count only when ``after`` is one."""
    pinned = Version(after)
    targets = tuple(targets)
    later = [r for r in releases(files) if r.version > pinned and (pinned.is_prerelease or not r.version.is_prerelease)]
    later = [r for r in later if r.admits(python)]
    for r in later:
        if r.ready(targets, python):
            return ReadyRelease(r, later[-1].version, len(later))
    return ReadyRelease(None, later[-1].version if later else None, len(later))
