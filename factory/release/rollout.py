"""Promote, rollback and the release history: moving an environment tag by digest.

``promote`` points the tag ``ENV`` (``staging``, ``prod``, ``3.14.8``…) of the images'
repository at the index digest an ``images.lock`` records; ``rollback`` points it back at
the digest it had before the last promote, in one registry request. Only manifests move
(``Registry.tag`` re-pushes the index's exact bytes): no layer is pulled or pushed.

Every move is appended to the release history, a JSON file (default ``releases.json``
beside ``images.lock``)::

    {"releases": [{"tag": "prod", "repository": "127.0.0.1:5555/factory/app",
                   "digest": "sha256:…", "time": "2026-11-22T17:00:00Z",
                   "images_lock_sha256": "<hex>", "action": "promote" | "rollback"}]}

Entries are in the order the moves happened. The tag's live chain is rebuilt from them: a
promote pushes a digest, a rollback pops one, so two rollbacks go back two promotes.
Every check (registry up, digest present, history readable) runs before the tag moves,
and the history is rewritten atomically after it, so a refused request changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from ..core import atomic
from ..core.errors import ReleaseError
from ..core.registry import Registry

HISTORY_NAME = "releases.json"
# OCI distribution spec: a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}; cosign owns sha256-*.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
Connect = Callable[[str], Registry]


@dataclass(frozen=True)
class Release:
    """One move of ``tag`` in ``repository`` (``address/name``) to ``digest`` (``sha256:…``)
    at ``time`` (RFC 3339 UTC), from the images.lock whose sha256 hex is ``images_lock_sha256``."""

    tag: str
    repository: str
    digest: str
    time: str
    images_lock_sha256: str
    action: str

    @property
    def ref(self) -> str:
        """``address/name@sha256:…``: what a consumer pulls."""
        return f"{self.repository}@{self.digest}"


def history_path(images_lock: Path) -> Path:
    """The default history file: ``releases.json`` beside ``images_lock``."""
    return images_lock.parent / HISTORY_NAME


def read_history(path: Path) -> list[Release]:
    """The moves recorded in ``path``, oldest first; [] when the file does not exist.

    Raises ``ReleaseError`` when it is not a release history.
    """
    try:
        data = json.loads(path.read_text())
        return [Release(**entry) for entry in data["releases"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReleaseError(f"{path} is not a release history ({type(e).__name__}: {str(e)[:120]})", "restore it from version control") from None


def chain(history: list[Release], tag: str) -> list[Release]:
    """The live stack of ``tag``: promotes pushed, rollbacks popped; the last is current."""
    stack: list[Release] = []
    for r in history:
        if r.tag != tag:
            continue
        if r.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(r)
    return stack


def _check_tag(tag: str) -> None:
    if not TAG.fullmatch(tag) or tag.startswith("sha256-"):
        raise ReleaseError(f"{tag!r} is not a usable tag", "use letters, digits, '.', '_' or '-' (at most 128), not sha256-*")


def _split(ref: str) -> tuple[str, str, str]:
    """``address/name@sha256:…`` -> (address, name, digest)."""
    name, sep, digest = ref.partition("@")
    address, slash, repository = name.partition("/")
    if not sep or not slash or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ReleaseError(f"{ref!r} is not a reference pinned by digest", "rebuild images.lock with `factory images`")
    return address, repository, digest


def _locked(history_file: Path, lock_file: Path | None) -> FileLock:
    """One move at a time per history file (a concurrent promote waits up to 60 s).

    ``lock_file`` is the run lock in the cache (the CLI passes ``<cache>/locks/<sha256>.lock``)
    so that nothing lands beside the user's files; without it, ``.releases.json.lock`` beside
    the history (for callers that have no cache)."""
    history_file.parent.mkdir(parents=True, exist_ok=True)
    path = lock_file or history_file.parent / f".{history_file.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=60)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(path: Path, history: list[Release], move: Release) -> None:
    atomic.write_json(path, {"releases": [asdict(r) for r in [*history, move]]})


def _writable(path: Path) -> None:
    """Fail before the tag moves when the history could not be written afterwards."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".{path.name}.probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ReleaseError(f"cannot write the release history {path}: {e.strerror}", "check the path and its permissions") from None


def promote(
    connect: Connect, images_lock: Path, tag: str, history_file: Path, now: Callable[[], str] = _now, lock_file: Path | None = None
) -> Release | None:
    """Point ``tag`` at the index digest of ``images_lock`` and record the move.

    ``connect(address)`` gives a registry client. Returns the recorded move, or None when
    ``tag`` already points there (nothing recorded). Raises ``ReleaseError`` for a bad tag,
    an unreadable images.lock, or an index the registry no longer holds; ``RegistryError``
    when the registry is down or refuses the push.
    """
    _check_tag(tag)
    try:
        raw = images_lock.read_bytes()
        index = json.loads(raw)["index"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReleaseError(f"cannot read the index of {images_lock} ({type(e).__name__})", "give the images.lock that `factory images` wrote") from None
    address, repository, digest = _split(str(index))
    with _locked(history_file, lock_file):
        return _promote(connect, images_lock, raw, tag, history_file, now, address, repository, digest)


def _promote(
    connect: Connect, images_lock: Path, raw: bytes, tag: str, history_file: Path, now: Callable[[], str], address: str, repository: str, digest: str
) -> Release | None:
    history = read_history(history_file)
    _writable(history_file)
    registry = connect(address)
    registry.check()
    if registry.manifest(repository, digest) is None:
        raise ReleaseError(
            f"registry {address} no longer holds the index {repository}@{digest} of {images_lock}",
            "rebuild and push it with `factory images`",
        )
    current = registry.manifest(repository, tag)
    live = chain(history, tag)
    if current is not None and current.digest == digest and live and live[-1].digest == digest:
        return None
    registry.tag(repository, digest, tag)
    move = Release(tag, f"{address}/{repository}", digest, now(), hashlib.sha256(raw).hexdigest(), "promote")
    _record(history_file, history, move)
    return move


def rollback(connect: Connect, tag: str, history_file: Path, now: Callable[[], str] = _now, lock_file: Path | None = None) -> Release:
    """Point ``tag`` back at the digest it had before its last promote, and record that.

    Raises ``ReleaseError`` when the history has no such tag, nothing to roll back to, or
    the registry no longer holds the previous index; ``RegistryError`` when it is down.
    """
    _check_tag(tag)
    with _locked(history_file, lock_file):
        return _rollback(connect, tag, history_file, now)


def _rollback(connect: Connect, tag: str, history_file: Path, now: Callable[[], str]) -> Release:
    history = read_history(history_file)
    live = chain(history, tag)
    if not live:
        raise ReleaseError(f"tag {tag!r} was never promoted (history {history_file})", f"`factory releases --tag {tag}`; promote it first")
    if len(live) < 2:
        raise ReleaseError(f"tag {tag!r} has nothing to roll back to: {live[-1].digest} is its first release", "promote another images.lock instead")
    previous = live[-2]
    address, repository, digest = _split(previous.ref)
    _writable(history_file)
    registry = connect(address)
    registry.check()
    if registry.manifest(repository, digest) is None:
        raise ReleaseError(f"registry {address} no longer holds {previous.ref}, the previous release of {tag!r}", "promote an images.lock whose index it holds")
    registry.tag(repository, digest, tag)
    move = Release(tag, previous.repository, digest, now(), previous.images_lock_sha256, "rollback")
    _record(history_file, history, move)
    return move


def releases(tag: str, history_file: Path) -> list[Release]:
    """Every recorded move of ``tag``, oldest first. Raises ``ReleaseError`` for an unknown tag."""
    found = [r for r in read_history(history_file) if r.tag == tag]
    if not found:
        raise ReleaseError(f"tag {tag!r} has no releases in {history_file}", "promote it first, or give --history")
    return found
