"""Reading and validating a pip-tools requirements lock (``pip-compile --generate-hashes``).

A valid lock pins every requirement with ``==`` to one exact version and gives at least
one ``--hash=sha256:<hex>`` for it (pip's hash-checking mode). Parsing uses
``pip-requirements-parser``, which reuses pip's own requirements-file grammar.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name
from pip_requirements_parser import RequirementsFile

from .errors import LockError
from .targets import Target

_REGEN = "regenerate it with `factory lock` (pip-compile --generate-hashes)"
_SHA256_RE = re.compile(r"^sha256:([0-9a-f]{64})$")


@dataclass(frozen=True)
class Pin:
    """One locked requirement: canonical ``name``, exact ``version``, allowed sha256 hexes."""

    name: str
    version: str
    hashes: frozenset[str]
    marker: str | None
    line: int

    def applies_to(self, target: Target, python: str) -> bool:
        """True when the pin's PEP 508 marker holds for CPython ``python`` on ``target``."""
        return self.marker is None or Marker(self.marker).evaluate(target.marker_environment(python))


@dataclass(frozen=True)
class Lock:
    """A validated lock: its path, the sha256 hex of its bytes, and its pins in file order."""

    path: Path
    sha256: str
    pins: tuple[Pin, ...]

    def pin(self, name: str) -> Pin | None:
        """The pin for ``name`` (any spelling), or None."""
        wanted = canonicalize_name(name)
        return next((p for p in self.pins if p.name == wanted), None)


def read_lock(path: Path | str) -> Lock:
    """Parse and validate the lock at ``path``.

    Raises ``LockError`` naming ``file:line`` for: a missing file, an unparsable line,
    an editable or URL requirement, a requirement not pinned with a single ``==``, a
    requirement without ``--hash``, a hash that is not sha256, a name pinned twice, or
    a lock with no requirement at all.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LockError(f"lock {path} not found", f"create it: {_REGEN}") from None
    except OSError as e:
        raise LockError(f"lock {path} cannot be read: {e.strerror}", "check the path and its permissions") from None

    parsed = RequirementsFile.from_file(str(path))
    for bad in parsed.invalid_lines:
        first = bad.error_message.strip().splitlines()[0] if bad.error_message else "invalid"
        raise LockError(f"{path}:{bad.line_number}: cannot parse {bad.line.strip()!r} ({first})", _REGEN)

    pins: list[Pin] = []
    seen: dict[str, int] = {}
    for req in parsed.requirements:
        where = f"{path}:{req.line_number}"
        if req.is_editable or req.link is not None or not req.name:
            raise LockError(f"{where}: {req.line.strip()!r} is not an index requirement", f"pin it as name==version; {_REGEN}")
        name = canonicalize_name(req.name)
        specs = list(req.specifier or [])
        if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
            found = str(req.specifier) if req.specifier else "no version"
            raise LockError(f"{where}: {req.name} is not pinned with == ({found})", f"pin one exact version; {_REGEN}")
        if not req.hash_options:
            raise LockError(f"{where}: {req.name}=={specs[0].version} has no --hash", f"add sha256 hashes; {_REGEN}")
        hashes = set()
        for h in req.hash_options:
            m = _SHA256_RE.match(h)
            if not m:
                raise LockError(f"{where}: {req.name} has a non-sha256 or malformed hash {h!r}", f"use --hash=sha256:<64 hex>; {_REGEN}")
            hashes.add(m[1])
        if name in seen:
            raise LockError(f"{where}: {req.name} is pinned twice (also line {seen[name]})", "keep one pin per project")
        seen[name] = req.line_number
        pins.append(
            Pin(
                name=name,
                version=specs[0].version,
                hashes=frozenset(hashes),
                marker=str(req.marker) if req.marker else None,
                line=req.line_number,
            )
        )
    if not pins:
        raise LockError(f"lock {path} pins nothing", _REGEN)
    return Lock(path=path, sha256=hashlib.sha256(data).hexdigest(), pins=tuple(pins))
