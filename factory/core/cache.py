"""Content-addressed file cache under ``<cache-dir>/files``, keyed by sha256.

An entry lives at ``files/sha256/<hex[:2]>/<hex>/<filename>``; it is written to a temporary
name and renamed. Trust, but verify once: an entry whose bytes were checked (while it
downloaded, or by re-hashing it) gets a stamp, ``files/stamps/<hex[:2]>/<hex>.json`` with
its size, inode and mtime and the names of the checks it passed (``passed``). Reuse
re-hashes only an entry whose size, inode or mtime no longer match its stamp, and every
entry when the cache is opened with ``verify=True`` (``--verify-cache``); a mismatch evicts
the entry instead of serving it. A checked entry's mtime is set to ``STAMPED_MTIME_NS``, so
any later write to it (which sets the mtime to the current time) voids its stamp, however
soon after the check it happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

CHUNK = 1 << 20
# 2000-01-01T00:00:00Z: a time no write made after the check can give an entry
STAMPED_MTIME_NS = 946_684_800 * 10**9


def sha256_file(path: Path) -> str:
    """sha256 hex of the file at ``path`` (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class FileCache:
    """Files stored by their sha256. ``root`` is created on first write. With ``verify``,
    every reuse re-hashes the entry whatever its stamp says."""

    def __init__(self, root: Path, verify: bool = False) -> None:
        self.root = root / "files" / "sha256"
        self.verify = verify
        self.evicted: list[str] = []
        self.hashed = 0  # entries re-hashed by this instance (``get``), for the tests and benchmarks

    def _dir(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _stamp_path(self, sha256: str) -> Path:
        return self.root.parent / "stamps" / sha256[:2] / f"{sha256}.json"

    def _stamp(self, sha256: str, path: Path) -> list[str] | None:
        """The checks the entry passed, if its stamp still describes the file at ``path``, else None."""
        try:
            st = path.stat()
            stamp = json.loads(self._stamp_path(sha256).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(stamp, dict) or [stamp.get("size"), stamp.get("ino"), stamp.get("mtime_ns")] != [st.st_size, st.st_ino, st.st_mtime_ns]:
            return None
        passed = stamp.get("passed")
        return [str(c) for c in passed] if isinstance(passed, list) else None

    def _write_stamp(self, sha256: str, path: Path, passed: list[str]) -> None:
        """Stamp the just-checked file at ``path`` (its mtime set to ``STAMPED_MTIME_NS``).
        A stamp that cannot be written only costs a re-hash next time."""
        try:
            os.utime(path, ns=(STAMPED_MTIME_NS, STAMPED_MTIME_NS))
            st = path.stat()
            target = self._stamp_path(sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            staged.write_text(json.dumps({"size": st.st_size, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns, "passed": sorted(passed)}))
            os.replace(staged, target)
        except OSError:
            pass

    def get(self, sha256: str, filename: str) -> Path | None:
        """The cached file with this content hash, or None. An entry without a current
        stamp (or every entry, with ``verify``) is re-hashed; a mismatch evicts it."""
        path = self._dir(sha256) / filename
        if not path.is_file():
            return None
        if self.trusted(sha256, path):
            return path
        self.hashed += 1
        if sha256_file(path) != sha256:
            shutil.rmtree(self._dir(sha256), ignore_errors=True)
            self._stamp_path(sha256).unlink(missing_ok=True)
            self.evicted.append(filename)
            return None
        self._write_stamp(sha256, path, [])
        return path

    def trusted(self, sha256: str, path: Path) -> bool:
        """Whether the file at ``path`` is, by its stamp, an unchanged checked entry of this
        content hash (a hard link of the entry, as a wheelhouse's files are); always False
        with ``verify``. A copy is another inode: not trusted, to be hashed."""
        return not self.verify and self._stamp(sha256, path) is not None

    def passed(self, sha256: str, path: Path, check: str) -> bool:
        """Whether the entry at ``path`` passed ``check`` (a name that changes when the check
        does) since its bytes were last verified; always False with ``verify``."""
        stamp = None if self.verify else self._stamp(sha256, path)
        return stamp is not None and check in stamp

    def mark_passed(self, sha256: str, path: Path, check: str) -> None:
        """Record that the entry at ``path`` passed ``check`` (kept until its stamp is void)."""
        stamp = self._stamp(sha256, path)
        if stamp is not None and check not in stamp:
            self._write_stamp(sha256, path, [*stamp, check])

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
        """Move a staged file whose sha256 the caller verified into place (atomic rename),
        stamp it, and return its path."""
        final = self._dir(sha256) / filename
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o644)  # mkstemp makes 0600; wheels are read by non-root users too
        os.replace(staged, final)
        self._write_stamp(sha256, final, [])  # the caller checked its hash as it was written
        return final
