"""Wheel selection: which index file of a pin fits a target best (domain; no I/O).

A wheel fits a target when one of its tags (PEP 425, from its file name) is in the
target's ordered tag list (``targets.Target.rank``); the best fit is the one whose best tag
ranks lowest. Hashes come from the index listing (PEP 503 ``#sha256=`` fragments or PEP 691
``hashes``) and must be among those the lock allows. As in pip's hash-checking mode
(``--require-hashes``), a wheel the lock does not allow is passed over when the lock allows
another of the pin's listed files: a lock made before a release's cp314 wheels were
uploaded takes its locked sdist for those targets; only a pin none of whose listed files
the lock allows is a mismatch. When the lock names its files (PEP 751
``pylock.toml``), an index file is matched to a locked one by file name and sha256, never
by URL (mirrors rewrite hosts), and a listed file whose name is locked under another
sha256 is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from pypi_simple import DistributionPackage

from ..core.errors import HashMismatchError
from ..core.targets import Target
from ..locks.lockfile import Pin


@dataclass(frozen=True)
class Choice:
    """The wheel chosen for one pin on one target."""

    pin: Pin
    target: Target
    package: DistributionPackage
    sha256: str
    tag: str


def check_listing(pin: Pin, files: list[DistributionPackage]) -> None:
    """Raise ``HashMismatchError`` when the index ``files`` list a file (wheel or sdist)
    that ``pin`` locks by name (``Pin.files``, PEP 751) with a sha256 other than the
    locked one. Pins without files (requirements locks) and files the index lists
    without a sha256 are not checked here."""
    locked = {f.filename: f.sha256 for f in pin.files}
    for pkg in files:
        want = locked.get(pkg.filename)
        sha = pkg.digests.get("sha256")
        if want is not None and sha is not None and sha != want:
            raise HashMismatchError(
                f"{pkg.filename}: the index lists sha256 {sha}, the lock has {want} ({pin.name}=={pin.version}, line {pin.line})",
                "check that the index is the one the lock was made from, or regenerate the lock",
            )


def best_ranked(pin: Pin, rank: Mapping[Tag, int], files: list[DistributionPackage]) -> tuple[DistributionPackage, str, Tag] | None:
    """The wheel of ``pin`` among the index ``files`` whose best tag ranks lowest in ``rank``
    (tag -> preference, 0 best), as (file, sha256 hex, that tag).

    Only wheels of the pinned version (and, for a pin with ``files``, of a locked file
    name) whose sha256 (from the index's ``#sha256=`` link
    fragment, PEP 503, or the PEP 691 ``hashes``) is in the lock are eligible. Returns
    None when no eligible wheel's tags are in ``rank`` (a fitting wheel the lock does not
    allow is passed over when another listed file of the pin is allowed, as pip does).
    Raises ``HashMismatchError`` when fitting wheels exist but no listed file of the pin
    carries a hash the lock allows, or when a file the lock names (PEP 751) is listed with
    another sha256 (``check_listing``).
    """
    check_listing(pin, files)
    locked = {f.filename for f in pin.files}
    best: tuple[int, DistributionPackage, str, Tag] | None = None
    rejected: list[tuple[str, str]] = []
    for pkg in files:
        if not pkg.filename.endswith(".whl"):
            continue
        try:
            name, version, _build, tags = parse_wheel_filename(pkg.filename)
            if name != pin.name or version != Version(pin.version):
                continue
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if pin.files and pkg.filename not in locked:
            continue  # a PEP 751 lock names the files it allows
        fits = [(rank[t], t) for t in tags if t in rank]
        if not fits:
            continue
        score, tag = min(fits)
        sha = pkg.digests.get("sha256", "")
        if sha not in pin.hashes:
            rejected.append((pkg.filename, sha or "none"))
            continue
        if best is None or score < best[0]:
            best = (score, pkg, sha, tag)
    if best is None and rejected and not any(f.digests.get("sha256") in pin.hashes for f in files):
        filename, sha = rejected[0]
        raise HashMismatchError(
            f"{filename}: the index lists sha256 {sha}, the lock allows {', '.join(sorted(pin.hashes))} "
            f"({pin.name}=={pin.version}, line {pin.line})",
            "regenerate the lock with `factory lock`, or check that the index is the one the lock was made from",
        )
    return best[1:] if best else None


def best_wheel(pin: Pin, target: Target, python: str, files: list[DistributionPackage]) -> Choice | None:
    """The most preferred wheel of ``pin`` for ``target`` (``best_ranked`` with the
    target's tag ranking for CPython ``python``); None when no wheel fits it."""
    found = best_ranked(pin, target.rank(python), files)
    if found is None:
        return None
    pkg, sha, tag = found
    return Choice(pin=pin, target=target, package=pkg, sha256=sha, tag=str(tag))


def unlocked_wheel(pin: Pin, target: Target, python: str, files: list[DistributionPackage]) -> str | None:
    """The file name of the best-fitting wheel of the pinned version for ``target`` that the
    index ``files`` list with a sha256 the lock does not allow (uploaded after the lock was
    made, as a release's cp314 wheels often are), or None. What ``best_ranked`` passes over."""
    rank = target.rank(python)
    best: tuple[int, str] | None = None
    for pkg in files:
        try:
            name, version, _build, tags = parse_wheel_filename(pkg.filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if name != pin.name or version != Version(pin.version) or pkg.digests.get("sha256", "") in pin.hashes:
            continue
        fits = [rank[t] for t in tags if t in rank]
        if fits and (best is None or min(fits) < best[0]):
            best = (min(fits), pkg.filename)
    return best[1] if best else None
