"""Data files shipped in ``factory/resources/``: the one place that names them.

Every file a stage reads or mounts into a container (cibuildwheel options, repair and
probe programs, QEMU pins, …) lives under ``factory/resources/`` and is reached through
``path``. ``digest`` hashes resources into the cache keys of whatever they shape, so
editing one invalidates exactly what it affects.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).parent.parent / "resources"


def path(name: str) -> Path:
    """The absolute path of resource ``name`` (relative to ``factory/resources``, e.g.
    ``"cibuildwheel.toml"``). ``FileNotFoundError`` if the package lacks it: a packaging bug,
    not a user error."""
    found = ROOT / name
    if not found.exists():
        raise FileNotFoundError(f"factory resource {name} is missing from {ROOT}")
    return found


def digest(*names: str) -> str:
    """sha256 hex over the named resources: each file's relative name and bytes, in name
    order; a directory contributes every file below it."""
    h = hashlib.sha256()
    files: list[Path] = []
    for name in names:
        p = path(name)
        files.extend(sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts) if p.is_dir() else [p])
    for f in sorted(set(files)):
        rel = f.relative_to(ROOT).as_posix().encode()
        data = f.read_bytes()
        h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()
