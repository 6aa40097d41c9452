"""Reading a PEP 751 lock (``pylock.toml``, lock-version 1.x) into the typed pin list.

The TOML is validated by ``packaging.pylock.Pylock.from_dict`` (the PEP 751 data model),
then held to the factory's rules: every package is an index package (``wheels`` and/or
``sdist``, no ``vcs``/``directory``/``archive``) with a ``version``; every file has a
sha256; a name appears more than once only with a ``marker`` on each. A file is its name
and sha256: URLs are kept as hints only, since internal mirrors rewrite hosts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock, PylockValidationError
from packaging.version import InvalidVersion, Version

from ..core.errors import LockError
from .pins import FileKind, Lock, LockedFile, Pin, unmarked_duplicate

REGEN = "regenerate it (uv pip compile --universal -o pylock.toml, uv export --format pylock.toml or pip lock)"
_PACKAGES_HEADER = re.compile(r"^\s*\[\[\s*packages\s*\]\]\s*(#.*)?$")
_CONTEXT_INDEX = re.compile(r"^packages\[(\d+)\]")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def package_lines(text: str) -> list[int]:
    """1-based line numbers of the ``[[packages]]`` headers of TOML ``text``, in order
    (the i-th is package i; ``[[packages.wheels]]`` headers are not counted)."""
    return [n for n, line in enumerate(text.splitlines(), 1) if _PACKAGES_HEADER.match(line)]


def read_pylock(path: Path, text: str, data: Mapping[str, Any], sha256: str) -> Lock:
    """Validate the parsed pylock ``data`` (TOML of ``text``, read from ``path``).

    Returns a ``Lock`` with ``format="pylock"``, ``requires_python``, ``environments``,
    ``default_groups`` and
    one ``Pin`` per package (``line`` = its ``[[packages]]`` header, ``files`` its wheels
    and sdist, ``hashes`` their sha256, ``index``). Raises ``LockError`` naming the file
    (and the package and its line where there is one) for: a lock-version whose major is
    not 1, anything ``Pylock.from_dict`` refuses (missing key, bad marker or specifier,
    inconsistent file names…), a package without version, a vcs/directory/archive
    package, a file without sha256, a name twice without markers on both, no packages.
    """
    lines = package_lines(text)
    raw_packages = data.get("packages")
    raw_list = raw_packages if isinstance(raw_packages, list) else []

    def where(i: int) -> str:
        line = lines[i] if i < len(lines) else None
        raw = raw_list[i] if i < len(raw_list) and isinstance(raw_list[i], Mapping) else {}
        return f"{path}:{line}: package {raw.get('name', f'#{i + 1}')}" if line else f"{path}: package {raw.get('name', f'#{i + 1}')}"

    version = data.get("lock-version")
    try:
        if not isinstance(version, str) or Version(version).major != 1:
            raise InvalidVersion
    except InvalidVersion:
        raise LockError(f"{path}: lock-version {version!r} is not supported (this reader knows PEP 751 lock-version 1.x)", REGEN) from None
    try:
        pylock = Pylock.from_dict(data)
    except PylockValidationError as e:
        m = _CONTEXT_INDEX.match(e.context or "")
        head = where(int(m[1])) if m else str(path)
        where_in = f" in {e.context!r}" if e.context else ""
        raise LockError(f"{head}: {e.message.strip().splitlines()[0]}{where_in} (PEP 751)", REGEN) from None

    pins = [_pin(where(i), lines[i] if i < len(lines) else 0, pkg) for i, pkg in enumerate(pylock.packages)]
    dup = unmarked_duplicate(pins)
    if dup:
        pin, earlier = dup
        raise LockError(
            f"{path}:{pin.line}: package {pin.name} is locked twice (also line {earlier.line}) and not both under a marker",
            "keep one entry per project, or give each entry a marker",
        )
    if not pins:
        raise LockError(f"lock {path} locks no package", REGEN)
    return Lock(
        path=path,
        sha256=sha256,
        pins=tuple(pins),
        format="pylock",
        requires_python=str(pylock.requires_python) if pylock.requires_python is not None else None,
        environments=tuple(str(m) for m in pylock.environments or ()),
        default_groups=tuple(pylock.default_groups or ()),
    )


def _pin(where: str, line: int, pkg: Package) -> Pin:
    if pkg.is_direct:
        kind = "vcs" if pkg.vcs else "directory" if pkg.directory else "archive"
        raise LockError(
            f"{where} is a {kind} package, not an index package",
            "leave the project itself out of the lock (uv export --no-emit-project) and lock the rest from an index",
        )
    if pkg.version is None:
        raise LockError(f"{where} has no version", f"lock one exact version; {REGEN}")
    files = tuple(_file(where, w, "wheel") for w in pkg.wheels or ()) + ((_file(where, pkg.sdist, "sdist"),) if pkg.sdist else ())
    return Pin(
        name=pkg.name,
        version=str(pkg.version),
        hashes=frozenset(f.sha256 for f in files),
        marker=str(pkg.marker) if pkg.marker is not None else None,
        line=line,
        files=files,
        index=pkg.index,
    )


def _file(where: str, dist: PackageWheel | PackageSdist, kind: FileKind) -> LockedFile:
    sha = str(dist.hashes.get("sha256", "")).lower()
    if not _SHA256_HEX.match(sha):
        found = ", ".join(sorted(dist.hashes)) or "none"
        raise LockError(f"{where}: {dist.filename} has no sha256 of 64 hex digits (hashes: {found})", f"lock sha256 hashes; {REGEN}")
    return LockedFile(filename=dist.filename, sha256=sha, kind=kind, url=dist.url)
