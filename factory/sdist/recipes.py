"""Library recipes: the system libraries sdists link, built from Debian's source packages.

A recipe is a data file, ``resources/libraries/<name>.toml`` (no code)::

    name = "zlib"
    version = "1.3.2"
    debian = { source = "zlib", version = "1:1.3.dfsg+really1.3.2-3", suite = "forky" }
    source = { path = "pool/main/z/zlib/zlib_….orig.tar.gz", sha256 = "<64 hex>" }
    depends = []                      # other recipes, built into the same prefix first
    build = ["./configure …", "make -j$JOBS", "make install"]   # sh -e, in the source tree
    provides = { headers = ["zlib.h"], libraries = ["z"], pkgconfig = ["zlib"] }

``source.path`` is relative to the Debian mirror of the library builder's recipe and is
pinned by the sha256 that the suite's ``Sources`` index lists for that orig tarball. The
build lines see ``$PREFIX`` (where to install), ``$HOST_TRIPLET`` (``aarch64-linux-gnu``,
``x86_64-linux-musl``, …), ``$JOBS`` and the zig compilers as ``CC``/``CXX``/``AR``/``RANLIB``.
Recipes build static, position-independent archives: the extension links them in, so there
is nothing for auditwheel or the musl repair to graft and the wheel's NEEDED list stays
within what its target allows.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..core.errors import LibraryRecipeError

# The packaged recipes' resource directory (``resources.path(RECIPE_DIR)``); every function
# here takes the directory it reads, so the domain names no package path.
RECIPE_DIR = "libraries"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# #include <x.h> / #include "x.h", and Cython's cdef extern from "x.h"
_INCLUDE = re.compile(rb'^\s*(?:#\s*include\s*[<"]|cdef\s+extern\s+from\s+[<"\'])([\w./+-]+\.h)[>"\']', re.M)
_SCANNED = (".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".pyx", ".pxd", ".pxi")


@dataclass(frozen=True)
class LibraryRecipe:
    """One ``resources/libraries/<name>.toml``; ``sha256`` is the recipe file's own hash
    (hashed into every build that uses it), ``source_sha256`` the orig tarball's."""

    name: str
    version: str
    debian_source: str
    debian_version: str
    source_path: str
    source_sha256: str
    depends: tuple[str, ...]
    build: tuple[str, ...]
    headers: tuple[str, ...]
    libraries: tuple[str, ...]
    pkgconfig: tuple[str, ...]
    sha256: str
    programs: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``name version``, as the readiness matrix and the manifest show it."""
        return f"{self.name} {self.version}"

    @property
    def source_name(self) -> str:
        """The orig tarball's file name."""
        return Path(self.source_path).name


def _strings(data: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LibraryRecipeError(f"{where}: {key} must be a list of strings", "fix the recipe file")
    return tuple(value)


def parse_recipe(path: Path) -> LibraryRecipe:
    """The recipe in the TOML file at ``path``. ``LibraryRecipeError`` naming the first
    missing or malformed key (a source without a 64-hex sha256 included)."""
    raw = path.read_bytes()
    where = f"library recipe {path.name}"
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LibraryRecipeError(f"{where} is not valid TOML: {e}", "fix the recipe file") from None
    debian, source, provides = data.get("debian"), data.get("source"), data.get("provides", {})
    if not all(isinstance(data.get(k), str) for k in ("name", "version")) or not isinstance(debian, dict) or not isinstance(source, dict):
        raise LibraryRecipeError(f"{where} needs name, version, [debian] and [source]", "see the README's library recipes section")
    sha = source.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha) or not isinstance(source.get("path"), str):
        raise LibraryRecipeError(f"{where}: source needs a pool path and a sha256 of 64 hex digits", "copy both from the suite's Sources index")
    if not isinstance(provides, dict):
        raise LibraryRecipeError(f"{where}: provides must be a table", "fix the recipe file")
    build = _strings(data, "build", where)
    if not build:
        raise LibraryRecipeError(f"{where} has no build steps", "add the build lines (sh) that install into $PREFIX")
    return LibraryRecipe(
        name=str(data["name"]), version=str(data["version"]),
        debian_source=str(debian.get("source", data["name"])), debian_version=str(debian.get("version", "")),
        source_path=str(source["path"]), source_sha256=sha, depends=_strings(data, "depends", where), build=build,
        headers=_strings(provides, "headers", where), libraries=_strings(provides, "libraries", where),
        pkgconfig=_strings(provides, "pkgconfig", where), sha256=hashlib.sha256(raw).hexdigest(),
        programs=_strings(provides, "programs", where),
    )  # fmt: skip


@cache
def shipped(directory: Path) -> dict[str, LibraryRecipe]:
    """Every recipe in ``directory``, by name."""
    recipes = [parse_recipe(p) for p in sorted(directory.glob("*.toml"))]
    return {r.name: r for r in recipes}


def recipe(name: str, directory: Path) -> LibraryRecipe:
    """The recipe called ``name``. ``LibraryRecipeError`` naming the known ones otherwise."""
    known = shipped(directory)
    if name not in known:
        raise LibraryRecipeError(f"no library recipe {name!r}", f"use one of {', '.join(sorted(known))}, or a before-all step")
    return known[name]


def closure(names: Iterable[str], directory: Path) -> tuple[LibraryRecipe, ...]:
    """The recipes ``names`` with their ``depends``, each after what it depends on (sorted by
    name where the order is free). ``LibraryRecipeError`` for an unknown name or a cycle."""
    out: dict[str, LibraryRecipe] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise LibraryRecipeError(f"library recipes depend on each other: {' -> '.join((*path, name))}", "break the cycle in depends")
        if name in out:
            return
        r = recipe(name, directory)
        for dep in sorted(r.depends):
            visit(dep, (*path, name))
        out[name] = r

    for name in sorted(set(names)):
        visit(name, ())
    return tuple(out.values())


def providing(section: str, key: str, directory: Path) -> LibraryRecipe | None:
    """The shipped recipe that provides ``key`` in ``section`` (``headers``: ``zlib.h``;
    ``libraries``: ``z`` as in ``-lz``; ``pkgconfig``: a module name; ``programs``: a
    config script in the prefix's ``bin``, e.g. ``pg_config``), or None."""
    for r in shipped(directory).values():
        if key in getattr(r, section):
            return r
    return None


def included_headers(sdist: Path) -> set[str]:
    """The header names that the C, C++ and Cython sources of the sdist at ``sdist`` include
    (``#include <x.h>``, ``cdef extern from "x.h"``), as written, less those written with a
    directory that the sdist ships itself (a member whose path ends with ``/<name>``):
    grpcio's BoringSSL brings its own ``openssl/ssl.h``, and OpenSSL's would clash with it. A
    bare name (``ffi.h``) stays: sdists ship those as copies for Windows (cffi) and use the
    system's elsewhere. Unreadable members are skipped; ``tarfile.TarError``/``OSError`` if
    the archive is unreadable."""
    found: set[str] = set()
    ships: set[str] = set()  # every trailing part with a directory of every member path: "openssl/ssl.h"
    with tarfile.open(sdist) as tar:
        for member in tar:
            if not member.isfile():
                continue
            parts = member.name.split("/")
            ships.update("/".join(parts[i:]) for i in range(1, len(parts) - 1))
            if not member.name.endswith(_SCANNED) or member.size > 8 << 20:
                continue
            f = tar.extractfile(member)
            if f is not None:
                found.update(m.decode() for m in _INCLUDE.findall(f.read()))
    return found - ships


def wanted_by(sdist: Path, directory: Path) -> tuple[str, ...]:
    """The names of the shipped recipes whose headers the sdist's sources include, sorted."""
    return tuple(sorted({r.name for h in included_headers(sdist) if (r := providing("headers", h, directory)) is not None}))
