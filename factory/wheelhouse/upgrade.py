"""``factory upgrade``: the fewest, smallest pin changes that give a lock a wheel on every target.

Input: any accepted lock (``locks.read_lock``), made for any Python. Steps:

1. **Readiness from the index** (as ``factory wheelhouse --no-build`` sees it,
   ``stage.select``): a cell is ready when the index lists a wheel of the pinned release for
   the target whose sha256 the lock allows. A missing cell is *locked out* when the index has
   a fitting wheel the lock's hashes leave out (the re-lock below takes it, no version
   changes), else the pin is *not ready*.
2. **Releases**: for every not-ready pin, the oldest later release with a wheel for every
   target (``index.releases.oldest_ready``: cp314, abi3 ≤ cp314 or pure Python; cp314t in the
   free-threaded lane), from the index's project page (``data-requires-python``, yanked
   files left out). A pin no release makes ready is held and reported with the newest
   release checked.
3. **Re-resolution** with the pinned uv (``tools.uv``), ``uv pip compile --python-version
   <python> --python-platform <target> --generate-hashes --resolution lowest-direct`` for
   each target: every other pin held ``==`` its locked version, the not-ready ones raised to
   ``>=`` the release found. When uv finds no solution, the held pins its explanation names
   are relaxed to ``>=`` their locked version (lowest-direct then takes the smallest release
   that fits) and the clause that forced each is recorded; repeated until uv resolves. The
   result is checked again against the index; pins it brings in that are not ready are raised
   the same way (at most ``ROUNDS`` rounds).

Output (``write_upgrade``), in a directory: ``upgrade.md`` and ``upgrade.json`` (the table:
pin, old → new, why, release date where the index gives it, whether it crosses a major
version, the pins it forced; before/after ready cells; the pins no release makes ready) and
the proposed lock, in requirements format, or ``pylock.toml`` (``uv pip compile --universal``
of the resolved pins) when the input was a pylock. The user's lock is replaced only with
``write=True``.

``upgrade.json``::

    {"lock", "lock_sha256", "python", "abi", "targets": [...], "seconds",
     "before": {"ready", "cells", "locked_out"}, "after": {"ready", "cells", "locked_out"},
     "changes": [{"name", "old", "new", "why", "major", "date", "forced", "forced_by"}],
     "relocked": [{"name", "version", "files": [...]}],
     "blocked": [{"name", "version", "why", "newest", "checked", "sdist"}],
     "proposed": "<file name>", "proposed_sha256"}

``old`` is null for a pin the new releases bring in, ``new`` null for one the resolution
drops (needed on no target, or required no more).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import canonicalize_name
from packaging.version import Version

from ..core import atomic
from ..core.errors import ResolutionError
from ..core.targets import Target
from ..index.client import Index, filename_version
from ..index.releases import oldest_ready
from ..locks.lockfile import Lock, Pin, read_lock
from .stage import Selection, excluded_targets, select

ROUNDS = 4  # re-resolve, check, raise what the new releases brought in: at most this often
MD_NAME, JSON_NAME = "upgrade.md", "upgrade.json"


class Resolver(Protocol):
    """What the re-resolution needs of uv (``tools.uv.Compiler``)."""

    def compile(
        self, requirements: str, python: str, platform: str | None, *, hashes: bool = False, fmt: str = "requirements.txt", lowest_direct: bool = False
    ) -> str: ...


@dataclass(frozen=True)
class Cells:
    """Readiness of a lock from the index: ``ready`` cells (an allowed wheel), of ``cells``
    (pin × target where the pin's marker holds); ``locked_out`` missing ones whose wheel the
    lock's hashes leave out."""

    ready: int
    cells: int
    locked_out: int

    def to_json(self) -> dict[str, int]:
        return {"ready": self.ready, "cells": self.cells, "locked_out": self.locked_out}


@dataclass(frozen=True)
class Change:
    """One pin's move: ``old`` → ``new`` (either None: brought in / dropped), why, the new
    release's upload date (ISO, None when the index gives none), whether it crosses a major
    version, the pins this change forced to move, and what forced this one (if anything)."""

    name: str
    old: str | None
    new: str | None
    why: str
    major: bool = False
    date: str | None = None
    forced: tuple[str, ...] = ()
    forced_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "old": self.old, "new": self.new, "why": self.why, "major": self.major, "date": self.date,
            "forced": list(self.forced), "forced_by": self.forced_by,
        }  # fmt: skip


@dataclass(frozen=True)
class Blocked:
    """A pin no release makes ready: held at ``version``; ``newest`` the newest later release
    the index lists (None: none), of ``checked`` later ones; ``sdist`` whether the pinned
    release has an sdist (the sdist lane may build it)."""

    name: str
    version: str
    why: str
    newest: str | None
    checked: int
    sdist: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "why": self.why, "newest": self.newest, "checked": self.checked, "sdist": self.sdist}


@dataclass(frozen=True)
class UpgradePlan:
    """The result of ``plan_upgrade`` (module docstring); ``proposed`` is the proposed lock's
    text, ``proposed_name`` its file name."""

    lock: Lock
    python: str
    abi: str
    targets: tuple[str, ...]
    before: Cells
    after: Cells
    changes: tuple[Change, ...]
    relocked: tuple[tuple[str, str, tuple[str, ...]], ...]
    blocked: tuple[Blocked, ...]
    proposed: str
    proposed_name: str
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "lock": str(self.lock.path), "lock_sha256": self.lock.sha256, "python": self.python, "abi": self.abi,
            "targets": list(self.targets), "seconds": round(self.seconds, 1),
            "before": self.before.to_json(), "after": self.after.to_json(),
            "changes": [c.to_json() for c in self.changes],
            "relocked": [{"name": n, "version": v, "files": list(fs)} for n, v, fs in self.relocked],
            "blocked": [b.to_json() for b in self.blocked],
            "proposed": self.proposed_name, "proposed_sha256": hashlib.sha256(self.proposed.encode()).hexdigest(),
        }  # fmt: skip

    def markdown(self) -> str:
        """The table and its context as Markdown (``upgrade.md``)."""
        b, a = self.before, self.after
        lines = [
            f"# Upgrade of {self.lock.path.name} for CPython {self.python} ({self.abi})",
            "",
            f"Targets: {', '.join(self.targets)}. Cells ready from the index: {b.ready} of {b.cells} before, "
            f"{a.ready} of {a.cells} after. {len(self.changes)} pins change "
            f"({sum(c.major for c in self.changes)} across a major version); {len(self.relocked)} keep their version and gain the hashes "
            f"of the wheels the index has for CPython {self.python}; {len(self.blocked)} no release makes ready. "
            f"Proposed lock: {self.proposed_name}.",
            "",
        ]
        if self.changes:
            lines += ["| pin | old → new | why | date | major | forced |", "| --- | --- | --- | --- | --- | --- |"]
            for c in self.changes:
                move = f"{c.old or '(new)'} → {c.new or '(dropped)'}"
                why = c.why + (f" (forced by {c.forced_by})" if c.forced_by else "")
                cells = [c.name, move, why, c.date or "", "yes" if c.major else "", ", ".join(c.forced)]
                lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
            lines.append("")
        if self.blocked:
            lines += ["## No release makes these ready", "", "| pin | why | newest checked |", "| --- | --- | --- |"]
            for k in self.blocked:
                newest = f"{k.newest} (of {k.checked} later releases)" if k.newest else "no later release"
                sdist = "; its sdist may build (factory wheelhouse)" if k.sdist else "; no sdist either"
                lines.append(f"| {k.name}=={k.version} | {k.why}{sdist} | {newest} |")
            lines.append("")
        if self.relocked:
            lines += ["## Same version, new hashes (the re-lock takes the index's wheels)", ""]
            lines += [f"- {n}=={v}: {', '.join(fs)}" for n, v, fs in self.relocked]
            lines.append("")
        lines.append(f"Run time: {self.seconds:.1f} s.")
        return "\n".join(lines) + "\n"


def cells_of(sel: Selection) -> Cells:
    """The ``Cells`` counts of a selection."""
    return Cells(ready=len(sel.choices), cells=len(sel.choices) + len(sel.missing), locked_out=len(sel.locked_out))


def _major(old: str | None, new: str | None) -> bool:
    if old is None or new is None:
        return False
    return Version(new).major != Version(old).major


@dataclass
class _Spec:
    """A requirement of the re-resolution: held (``==``), raised or relaxed (``>=``)."""

    pin: Pin
    op: str
    version: str
    why: str = ""
    forced_by: tuple[str, ...] = ()
    date: str | None = None

    def line(self) -> str:
        extras = f"[{','.join(self.pin.extras)}]" if self.pin.extras else ""
        marker = f" ; {self.pin.marker}" if self.pin.marker else ""
        return f"{self.pin.name}{extras}{self.op}{self.version}{marker}"


# name[extras]{marker}==version, as uv's explanations spell a requirement
_PINNED = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?:\{[^}]*\})?==([A-Za-z0-9.+!_-]+)")


def _held_in(message: str, specs: Mapping[str, _Spec]) -> list[str]:
    """The held pins uv's explanation names with their locked version (``name==version``)."""
    found: list[str] = []
    for m in _PINNED.finditer(message):
        name, version = canonicalize_name(m.group(1)), m.group(2).rstrip(".")
        spec = specs.get(name)
        if spec is not None and spec.op == "==" and spec.version == version and name not in found:
            found.append(name)
    return found


def _clause(message: str, name: str, version: str) -> str:
    """The part of uv's explanation that says why ``name==version`` cannot be held: the
    ``X depends on …`` sentence naming it, else uv's whole first sentence."""
    for sentence in re.split(r"(?<=\.)\s+|,\s*(?:and\s+)?|\band\b", message):
        if re.search(rf"(?i)\b{re.escape(name)}\b", sentence.replace("_", "-")) and "depends on" in sentence:
            return re.sub(r"^.*?\bBecause\s+", "", sentence.strip())
    return message.split(". ")[0][:300]


@dataclass
class _Resolved:
    """Per name: version, hashes (union over targets), extras, the targets it was resolved on
    and the packages uv says require it (``# via``)."""

    version: str
    hashes: set[str] = field(default_factory=set)
    extras: set[str] = field(default_factory=set)
    targets: set[str] = field(default_factory=set)
    via: set[str] = field(default_factory=set)
    marker: str | None = None  # a pin carried over as locked keeps its own marker


_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[([^\]]*)\])?==(\S+)")


def parse_compiled(text: str) -> dict[str, tuple[str, set[str], set[str], set[str]]]:
    """uv's ``requirements.txt`` output as name -> (version, sha256 hexes, extras, via
    names); ``-r``/``-c`` sources are left out of ``via``."""
    out: dict[str, tuple[str, set[str], set[str], set[str]]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        m = _LINE.match(line)
        if m:
            current = canonicalize_name(m.group(1))
            extras = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
            out[current] = (m.group(3), set(), extras, set())
            continue
        if current is None:
            continue
        for h in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            out[current][1].add(h)
        via = re.sub(r"^#\s*(via\b\s*)?", "", line) if line.startswith("#") else ""
        if via and not via.startswith(("-r ", "-c ")) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", via):
            out[current][3].add(canonicalize_name(via))
    return out


def _marker(targets_on: set[str], targets: tuple[Target, ...]) -> str | None:
    """A PEP 508 marker for a pin resolved on ``targets_on`` only: ``platform_machine`` when
    those are exactly the targets of some machines; None when it is every target or no
    marker says it (libc has none: the pin is then kept for every target)."""
    if targets_on >= {t.name for t in targets}:
        return None
    arches = {t.arch for t in targets if t.name in targets_on}
    if {t.name for t in targets if t.arch in arches} != targets_on:
        return None
    return " or ".join(f'platform_machine == "{a}"' for a in sorted(arches))


def requirements_text(resolved: Mapping[str, _Resolved], targets: tuple[Target, ...], header: str) -> str:
    """The proposed lock in requirements format (``pip-compile``/uv style, hash-checking)."""
    lines = [f"# {ln}" if ln else "#" for ln in header.splitlines()]
    for name in sorted(resolved):
        r = resolved[name]
        extras = f"[{','.join(sorted(r.extras))}]" if r.extras else ""
        marker = r.marker or _marker(r.targets, targets)
        head = f"{name}{extras}=={r.version}" + (f" ; {marker}" if marker else "")
        hashes = [f"    --hash=sha256:{h}" for h in sorted(r.hashes)]
        lines.append(" \\\n".join([head, *hashes]))
        if r.via:
            lines.append(f"    # via {', '.join(sorted(r.via))}")
    return "\n".join(lines) + "\n"


def _resolve(
    specs: dict[str, _Spec], targets: tuple[Target, ...], python: str, resolver: Resolver, platform: Callable[[Target], str], kept: Mapping[str, Pin]
) -> dict[str, _Resolved]:
    """One re-resolution for every target, relaxing held pins uv names until it resolves.
    ``platform`` maps a target to uv's platform name. Mutates ``specs`` (relaxed pins).
    The ``kept`` pins (no release makes them ready) stay out of the resolution: uv refuses a
    release with no wheel for the platform, so they are carried over as locked."""
    for _ in range(len(specs) + 1):
        text = "".join(s.line() + "\n" for name, s in specs.items() if name not in kept)
        try:
            resolved: dict[str, _Resolved] = {}
            for target in targets:
                for name, (version, hashes, extras, via) in parse_compiled(
                    resolver.compile(text, python, platform(target), hashes=True, lowest_direct=True)
                ).items():
                    r = resolved.setdefault(name, _Resolved(version))
                    if Version(version) > Version(r.version):
                        r.version = version  # targets disagree (markers): the higher one serves both
                    r.hashes |= hashes
                    r.extras |= extras
                    r.targets.add(target.name)
                    r.via |= via
            for name, pin in kept.items():
                resolved[name] = _Resolved(pin.version, set(pin.hashes), set(pin.extras), {t.name for t in targets}, marker=pin.marker)
            return resolved
        except ResolutionError as e:
            if "No solution found" not in e.problem:
                raise ResolutionError(f"uv pip compile failed for CPython {python}: {e.problem}"[:1500], "check the index and the lock") from None
            held = _held_in(e.problem, specs)
            moved = [s for s in specs.values() if s.op == ">="]
            if not held or not moved:
                what = "the lock's pins conflict already" if not moved else "no held pin can be relaxed"
                raise ResolutionError(f"{what} for CPython {python}: {e.problem}"[:1500], "fix the lock's requirements and lock again") from None
            for name in held:
                spec = specs[name]
                clause = _clause(e.problem, name, spec.version)
                by: tuple[str, ...] = tuple(n for n in (str(canonicalize_name(m.group(1))) for m in _PINNED.finditer(clause)) if n != name and n in specs)
                by += tuple(s.pin.name for s in moved if s.pin.name not in by and re.search(rf"(?i)\b{re.escape(s.pin.name)}\b", clause.replace("_", "-")))
                specs[name] = _Spec(spec.pin, ">=", spec.version, why=f"held {name}=={spec.version} conflicted: {clause}", forced_by=by)
    raise ResolutionError(f"uv found no resolution for CPython {python} after relaxing every held pin", "fix the lock's requirements and lock again")


def plan_upgrade(lock: Lock, targets: tuple[Target, ...], python: str, abi: str, index: Index, resolver: Resolver, platform: Callable[[Target], str]) -> UpgradePlan:
    """The upgrade of ``lock`` for CPython ``python`` on ``targets`` (module docstring).

    ``index`` is read for readiness and releases; ``resolver`` (``tools.uv.Compiler``)
    re-resolves; ``platform`` maps a target to uv's ``--python-platform``
    (``tools.uv.uv_platform``). Raises ``ResolutionError`` when the lock's pins conflict
    already or uv cannot resolve, and the index's errors (``IndexUnreachableError``, …).
    """
    start = time.monotonic()
    sel0 = select(lock, targets, python, index)
    excluded = excluded_targets(lock, targets, python)
    specs: dict[str, _Spec] = {}
    for i, pin in enumerate(lock.pins):
        if len(excluded[i]) < len(targets):
            specs[pin.name] = _Spec(pin, "==", pin.version)
    blocked: dict[str, Blocked] = {}
    raised_why: dict[str, str] = {}

    def raise_unready(sel: Selection, pins: Mapping[str, Pin]) -> bool:
        """Raise every not-ready pin of ``sel`` to its oldest ready release; True if any."""
        unready: dict[str, list[str]] = {}
        for pin, target in sel.missing:
            if (pin.name, pin.version, target.name) not in sel.locked_out:
                unready.setdefault(pin.name, []).append(target.name)
        changed = False
        for name, where in unready.items():
            pin = pins[name]
            if name in blocked:
                continue
            files = index.files(name)
            found = oldest_ready(pin.version, files, targets, python)
            own = [f for f in files if _version_of(f.filename) == Version(pin.version)]
            if own and not any(f.filename.endswith(".whl") for f in own):
                why = f"{name} {pin.version} publishes no wheel at all (sdist only)"
            else:
                places = "any target" if len(where) == len(targets) else ", ".join(where)
                why = f"{name} {pin.version} has no {abi} wheel for {places}"
            if found.found is None:
                has_sdist = any(not f.filename.endswith(".whl") for f in own)
                newest = str(found.newest) if found.newest else None
                blocked[name] = Blocked(name, pin.version, why + (f"; neither has any of its {found.checked} later releases" if found.checked else ""), newest, found.checked, has_sdist)
                continue
            release = found.found
            raised_why[name] = f"{why}; {release} is the oldest later release with a wheel for every target"
            spec = specs.get(name)
            base = spec.pin if spec is not None else pin
            date = release.uploaded.date().isoformat() if release.uploaded else None
            specs[name] = _Spec(base, ">=", str(release), why=raised_why[name], date=date)
            changed = True
        return changed

    raise_unready(sel0, {p.name: p for p in lock.pins})
    header = (
        f"factory upgrade of {lock.path.name} for CPython {python} ({abi})\n"
        f"uv pip compile --python-version {python} --python-platform <target> --generate-hashes, per target: {', '.join(t.name for t in targets)}"
    )
    resolved: dict[str, _Resolved] = {}
    proposed = lock
    sel = sel0
    with tempfile.TemporaryDirectory(prefix="factory-upgrade-") as tmp:
        for _ in range(ROUNDS):
            kept = {name: specs[name].pin for name in blocked if name in specs}
            resolved = _resolve(specs, targets, python, resolver, platform, kept)
            path = Path(tmp) / "proposed.txt"
            path.write_text(requirements_text(resolved, targets, header))
            proposed = read_lock(path)
            sel = select(proposed, targets, python, index)
            if not raise_unready(sel, {p.name: p for p in proposed.pins}):
                break
        text = requirements_text(resolved, targets, header)
    proposed_name = lock.path.name
    if lock.format == "pylock":
        pinned = "".join(f"{n}{'[' + ','.join(sorted(r.extras)) + ']' if r.extras else ''}=={r.version}\n" for n, r in sorted(resolved.items()))
        text = resolver.compile(pinned, python, None, hashes=True, fmt="pylock.toml")
    return UpgradePlan(
        lock=lock, python=python, abi=abi, targets=tuple(t.name for t in targets), before=cells_of(sel0), after=cells_of(sel),
        changes=_changes(lock, specs, resolved, raised_why), relocked=_relocked(lock, sel0, resolved), blocked=tuple(blocked.values()),
        proposed=text, proposed_name=proposed_name, seconds=time.monotonic() - start,
    )  # fmt: skip


def _version_of(filename: str) -> Version | None:
    try:
        return Version(filename_version(filename))
    except ValueError:
        return None


def _changes(lock: Lock, specs: Mapping[str, _Spec], resolved: Mapping[str, _Resolved], raised_why: Mapping[str, str]) -> tuple[Change, ...]:
    old = {p.name: p.version for p in lock.pins}
    names = sorted(set(old) | set(resolved))
    forced: dict[str, list[str]] = {}
    for name, relaxed in specs.items():
        for by in relaxed.forced_by:
            forced.setdefault(by, []).append(name)
    for name, r in resolved.items():
        if name not in old:
            for by in r.via:
                forced.setdefault(by, []).append(name)
    out = []
    for name in names:
        before, after = old.get(name), resolved[name].version if name in resolved else None
        if before is not None and after is not None and Version(before) == Version(after):
            continue
        spec = specs.get(name)
        if after is None:
            why = "needed on no target (its marker)" if spec is None else "required by no pin any more"
        elif before is None:
            why = f"required by {', '.join(sorted(resolved[name].via)) or 'the new releases'}"
        elif spec is not None and spec.why:
            why = spec.why
            if spec.op == ">=" and name in raised_why and Version(after) > Version(spec.version) and resolved[name].via:
                why += f"; {after}, not {spec.version}, because {', '.join(sorted(resolved[name].via))} requires it"
        else:
            why = raised_why.get(name, "moved by the resolution")
        out.append(
            Change(
                name, before, after, why, _major(before, after), spec.date if spec else None, tuple(sorted(forced.get(name, ()))),
                ", ".join(spec.forced_by) if spec and spec.forced_by else None,
            )
        )
    return tuple(out)


def _relocked(lock: Lock, sel0: Selection, resolved: Mapping[str, _Resolved]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """Pins that keep their version whose locked-out wheels the new hashes allow."""
    files: dict[tuple[str, str], set[str]] = {}
    for (name, version, _target), file in sel0.locked_out.items():
        r = resolved.get(name)
        if r is not None and Version(r.version) == Version(version):
            files.setdefault((name, version), set()).add(file)
    return tuple((n, v, tuple(sorted(fs))) for (n, v), fs in sorted(files.items()))


def write_upgrade(plan: UpgradePlan, out: Path, write: bool = False) -> Path:
    """Write ``upgrade.md``, ``upgrade.json`` and the proposed lock into the directory ``out``
    (replaced as a whole, ``atomic.replace_dir``); with ``write``, also replace the user's
    lock (``plan.lock.path``) with the proposed one, atomically. Returns the proposed lock's
    path in ``out``. ``OutputError`` when a file cannot be written."""

    def fill(tmp: Path) -> None:
        (tmp / MD_NAME).write_text(plan.markdown())
        (tmp / JSON_NAME).write_text(json.dumps(plan.to_json(), indent=2) + "\n")
        (tmp / plan.proposed_name).write_text(plan.proposed)

    atomic.replace_dir(out, fill)
    if write:
        atomic.write_text(plan.lock.path, plan.proposed)
    return out / plan.proposed_name
