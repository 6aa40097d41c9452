"""A project's source files, selected as ``docker build`` selects a context, and their content hash.

Selection (Docker's ``.dockerignore`` rules, https://docs.docker.com/build/concepts/context/#dockerignore-files):
patterns are relative to the tree's root, ``**`` matches any number of directories, ``!``
re-includes, the last matching pattern wins. Patterns are read with ``pathspec``'s
gitignore grammar, each anchored at the root as Docker anchors them. Beside the
``.dockerignore`` of the root, version-control and cache directories never count
(``ALWAYS_IGNORED``): they change without the sources changing.

The tree hash is sha256 over the sorted (relative path, executable bit, file sha256) of the
selected files; symbolic links count by their target text. The same files give the same hash on
every machine, whatever their mtimes.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pathspec

from .cache import sha256_file
from .errors import ConfigError

ALWAYS_IGNORED = (".git/", ".hg/", ".svn/", "__pycache__/", "*.pyc", ".venv/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".tox/", ".nox/")
DOCKERIGNORE = ".dockerignore"


def _anchored(pattern: str) -> str:
    """A ``.dockerignore`` line as an anchored gitignore pattern (Docker matches from the root)."""
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    body = body.strip()
    if not body.startswith(("/", "**")):
        body = "/" + body
    return ("!" if negate else "") + body


def ignore_spec(root: Path) -> pathspec.PathSpec:  # type: ignore[type-arg]
    """The exclusion rules of the tree at ``root``: ``ALWAYS_IGNORED`` and its ``.dockerignore``."""
    lines = [f"**/{p}" for p in ALWAYS_IGNORED]
    ignore = root / DOCKERIGNORE
    if ignore.is_file():
        lines += [_anchored(line) for line in ignore.read_text(errors="replace").splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return pathspec.PathSpec.from_lines("gitignore", lines)


def select(root: Path, include: Sequence[str] = (), exclude_below: Iterable[Path] = ()) -> list[str]:
    """The files under ``root`` (relative POSIX paths, sorted) that a build context of ``root``
    holds: all of them, or those ``include`` names (paths or gitignore patterns, relative
    to ``root``: ``"src/"`` a directory, ``"manage.py"`` a file), less what ``ignore_spec``
    excludes and what lies under ``exclude_below``. ``ConfigError`` when an ``include``
    entry selects nothing."""
    spec = ignore_spec(root)
    skip = [p.resolve() for p in exclude_below]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        dirnames[:] = sorted(
            d for d in dirnames
            if not spec.match_file(f"{rel_dir}/{d}/".removeprefix("./")) and (here / d).resolve() not in skip
        )  # fmt: skip
        for name in filenames:
            rel = f"{rel_dir}/{name}".removeprefix("./")
            if not spec.match_file(rel):
                files.append(rel)
    files.sort()
    if not include:
        return files
    chosen: set[str] = set()
    for entry in include:
        wanted = pathspec.PathSpec.from_lines("gitignore", [_anchored(entry)])
        hits = {f for f in files if wanted.match_file(f)}
        if not hits:
            raise ConfigError(f"app-files: {entry!r} selects no file under {root}", "fix the path, or its .dockerignore exclusion")
        chosen |= hits
    return sorted(chosen)


def tree_sha256(root: Path, files: Sequence[str]) -> str:
    """sha256 hex over the sorted (path, executable bit, content sha256) of ``files`` under ``root``."""
    h = hashlib.sha256()
    for rel in sorted(files):
        path = root / rel
        mode = path.lstat().st_mode
        content = "link:" + os.readlink(path) if stat.S_ISLNK(mode) else sha256_file(path)
        h.update(f"{rel}\0{int(bool(mode & stat.S_IXUSR))}\0{content}\n".encode())
    return h.hexdigest()


def write_tar(root: Path, files: Sequence[str], dest: Path, prefix: str, epoch: int) -> None:
    """Write ``files`` (relative to ``root``) into the tar ``dest`` under ``prefix/``, owned by
    0:0, with mtime ``epoch`` (seconds) and mode 0644 or 0755: the same files give the same bytes."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(files):
            path = root / rel
            info = tar.gettarinfo(str(path), arcname=f"{prefix}/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = epoch
            if info.isfile():
                info.mode = 0o755 if info.mode & 0o100 else 0o644
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info, io.BytesIO(b""))
