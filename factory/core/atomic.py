"""Atomic outputs: write to a temporary sibling, then rename into place.

A reader sees either the complete old output or the complete new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import faults
from .textfile import output_error, write_atomically


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``
    (``textfile.write_atomically``); ``OutputError`` on a full disk or a refused write."""
    write_atomically(path, text)


def write_json(path: Path, data: object) -> None:
    """``write_text`` of ``data`` as indented JSON with sorted keys and a final newline."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def replace_dir(out: Path, fill: Callable[[Path], None]) -> None:
    """Build a new directory with ``fill(tmp)`` and swap it in for ``out``.

    ``tmp`` is a fresh sibling of ``out``. If ``fill`` raises, ``tmp`` is removed and
    ``out`` is untouched; an ``OSError`` (full disk, permissions) becomes ``OutputError``. The old ``out`` is renamed aside before the new one is renamed
    in, then deleted.
    """
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise output_error(out, e) from None
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)
        faults.point("before-rename")
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(out, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rmdir(old)
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sweep(out: Path) -> list[Path]:
    """Remove the temporary siblings a killed run left for ``out`` (``.<name>.tmp-*``,
    ``.<name>.old-*``). Call it only while holding ``out``'s run lock. Returns what went."""
    return _remove([s for s in out.parent.glob(f".{out.name}.*-*") if s.name.startswith((f".{out.name}.tmp-", f".{out.name}.old-"))])


def sweep_dir(parent: Path) -> list[Path]:
    """Remove every temporary sibling a killed run left in ``parent``, whatever output it was
    for: direct children named ``.<name>.tmp-*`` or ``.<name>.old-*`` (``replace_dir`` and
    ``write_text``), and ``.tmp-*`` (the ``tempfile.mkdtemp`` names of earlier versions).
    For caches whose entries are keyed (one output per key). Call it only while holding the
    run lock of what ``parent`` belongs to. Returns what went; a missing ``parent`` is empty.
    """
    if not parent.is_dir():
        return []
    return _remove([s for s in parent.iterdir() if s.name.startswith(".") and (".tmp-" in s.name or ".old-" in s.name)])


def _remove(stale: list[Path]) -> list[Path]:
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same filesystem), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
