"""Content-addressed file cache under ``<cache-dir>/files``, keyed by sha256.

An entry lives at ``files/sha256/<hex[:2]>/<hex>/<filename>``; it is written to a temporary
name and renamed, and re-hashed whenever it is reused, so a corrupt entry is evicted
instead of served.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """sha256 hex of the file at ``path`` (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class FileCache:
    """Files stored by their sha256. ``root`` is created on first write."""

    def __init__(self, root: Path) -> None:
        self.root = root / "files" / "sha256"
        self.evicted: list[str] = []

    def _dir(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def get(self, sha256: str, filename: str) -> Path | None:
        """The cached file with this content hash, or None. A hash mismatch evicts the entry."""
        path = self._dir(sha256) / filename
        if not path.is_file():
            return None
        if sha256_file(path) != sha256:
            shutil.rmtree(self._dir(sha256), ignore_errors=True)
            self.evicted.append(filename)
            return None
        return path

    def find(self, sha256: str) -> Path | None:
        """The cached file with this content hash under whatever name it was stored, or None."""
        entry = self._dir(sha256)
        names = [p.name for p in entry.iterdir()] if entry.is_dir() else []
        return self.get(sha256, names[0]) if len(names) == 1 else None

    def sweep(self) -> list[Path]:
        """Remove staged downloads a killed run left behind (call with the cache's run lock held)."""
        gone = list(self.root.glob(".tmp-*")) if self.root.is_dir() else []
        for stale in gone:
            stale.unlink(missing_ok=True)
        return gone

    def record(self, kind: str, key: str) -> Path:
        """Where a small JSON record of ``kind`` named by ``key`` (a sha256 hex) lives:
        ``<cache-dir>/files/<kind>/<key[:2]>/<key>.json`` (may not exist yet)."""
        return self.root.parent / kind / key[:2] / f"{key}.json"

    def staging(self, sha256: str) -> Path:
        """A fresh temporary file path on the cache's filesystem, for a download in progress."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".tmp-{sha256[:12]}-", dir=self.root)
        os.close(fd)
        return Path(name)

    def commit(self, staged: Path, sha256: str, filename: str) -> Path:
        """Move a verified staged file into place (atomic rename) and return its path."""
        final = self._dir(sha256) / filename
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o644)  # mkstemp makes 0600; wheels are read by non-root users too
        os.replace(staged, final)
        return final
