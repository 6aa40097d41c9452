"""Reading an sdist safely, before any build: its members and its ``[build-system]``.

Format: PEP 625 / the PyPA source distribution spec (``{name}-{version}.tar.gz`` with one
top-level ``{name}-{version}/`` directory) and PEP 517/518 ``pyproject.toml``. A file
without ``[build-system]`` gets PEP 517's legacy default, ``setuptools>=40.8.0``.
"""

from __future__ import annotations

import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..core.errors import SdistError

LEGACY_REQUIRES = ("setuptools>=40.8.0",)
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"



@dataclass(frozen=True)
class SdistInfo:
    """What a build needs to know: ``requires`` (PEP 518 strings), the ``backend``, and
    ``compiled``: the members that are sources of compiled code (C, C++, Cython, Fortran,
    Rust), empty for a pure-Python candidate."""

    path: Path
    top: str
    requires: tuple[str, ...]
    backend: str
    compiled: tuple[str, ...] = ()


def _unsafe(member: tarfile.TarInfo, top: str) -> str | None:
    """Why ``member`` may not be extracted, or None (paths must stay under ``top``)."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        return f"member {member.name!r} escapes the archive (absolute path or '..')"
    if name.parts and name.parts[0] != top:
        return f"member {member.name!r} is outside the top-level directory {top!r}"
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        parts = link.parts if member.islnk() else (*name.parent.parts, *link.parts)
        resolved = _normalise(parts)
        if link.is_absolute() or not resolved or resolved[0] != top:
            return f"link {member.name!r} -> {member.linkname!r} points outside the archive"
    if member.isdev() or member.isfifo():
        return f"member {member.name!r} is a device or fifo"
    return None


def _normalise(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            if not out:
                return [".."]
            out.pop()
        elif part not in ("", "."):
            out.append(part)
    return out


def _first_line(err: BaseException) -> str:
    # tarfile's "could not be opened" lists one line per compression method tried
    return (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(":")[:120]


def inspect_sdist(path: Path) -> SdistInfo:
    """Check every member of the sdist at ``path`` and read its build requirements.

    Raises ``SdistError`` when the file is not a (gzip/xz) tar, has no single top-level
    directory, has a member that is absolute, contains ``..``, links outside the tree or
    is a device, or when its ``pyproject.toml`` is not valid TOML.
    """
    fix = "the file is damaged or unsafe; do not build it (check the index, or pin another version)"
    try:
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            tops = {PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts}
            if len(tops) != 1:
                raise SdistError(f"{path.name}: expected one top-level directory, found {len(tops)}", fix)
            top = tops.pop()
            for m in members:
                why = _unsafe(m, top)
                if why:
                    raise SdistError(f"{path.name}: {why}", fix)
            try:
                f = tar.extractfile(f"{top}/pyproject.toml")
                pyproject = tomllib.loads(f.read().decode()) if f else {}
            except KeyError:
                pyproject = {}
    except (tarfile.TarError, EOFError, OSError) as e:
        raise SdistError(f"{path.name}: not a readable tar archive ({_first_line(e)})", fix) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SdistError(f"{path.name}: pyproject.toml is not valid TOML ({_first_line(e)})", fix) from None
    compiled = tuple(m.name for m in members if m.isfile() and _compiled_source(m.name))
    system = pyproject.get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return SdistInfo(path, top, LEGACY_REQUIRES, LEGACY_BACKEND, compiled)
    requires, backend = system["requires"], system.get("build-backend", LEGACY_BACKEND)
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires) or not isinstance(backend, str):
        raise SdistError(f"{path.name}: pyproject.toml's [build-system] is not PEP 518's (requires: a list of strings, build-backend: a string)", fix)
    return SdistInfo(path, top, tuple(requires), backend, compiled)


# Sources a build compiles (a header alone compiles nothing; Cargo.toml means Rust).
COMPILED_SUFFIXES = frozenset({".c", ".cc", ".cpp", ".cxx", ".c++", ".m", ".pyx", ".f", ".f90", ".f95", ".rs", ".go"})


def _compiled_source(name: str) -> bool:
    path = PurePosixPath(name)
    return path.suffix.lower() in COMPILED_SUFFIXES or path.name == "Cargo.toml"
