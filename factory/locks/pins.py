"""The typed pin list every lock format is read into (domain; no I/O).

``Lock`` is what ``lockfile.read_lock`` returns for a pip-compile/uv requirements file or a
PEP 751 ``pylock.toml``; ``Pin`` is one locked project version; ``LockedFile`` one
distribution file a PEP 751 lock names (PEP 751: a file is its name and hashes; its URL
is a hint, since mirrors rewrite hosts).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from ..core.targets import Target

LockFormat = Literal["requirements", "pylock"]
FileKind = Literal["wheel", "sdist"]


@dataclass(frozen=True)
class LockedFile:
    """One file of a pin: ``filename`` (as on the index), its ``sha256`` hex, ``kind``
    ``"wheel"``/``"sdist"``, and the ``url`` the lock recorded (a hint only; None if none)."""

    filename: str
    sha256: str
    kind: FileKind
    url: str | None = None


@dataclass(frozen=True)
class Pin:
    """One locked project version.

    ``name`` canonical (PEP 503); ``version`` exact; ``hashes`` every sha256 hex the lock
    allows for it; ``marker`` its PEP 508 environment marker or None; ``line`` the 1-based
    line of the requirement (requirements) or of its ``[[packages]]`` header (pylock);
    ``extras`` canonical, sorted (``uvicorn[standard]==…``; pylock has none per package);
    ``files`` the files a pylock names (empty for requirements files, which name only
    hashes); ``index`` the package's index URL from a pylock, else None.
    """

    name: str
    version: str
    hashes: frozenset[str]
    marker: str | None
    line: int
    extras: tuple[str, ...] = ()
    files: tuple[LockedFile, ...] = ()
    index: str | None = None

    def applies_to(self, target: Target, python: str, extras: Collection[str] = (), groups: Collection[str] = ()) -> bool:
        """True when the pin's marker holds for CPython ``python`` (``"3.14.8"``) on
        ``target`` with ``extras`` and dependency ``groups`` selected (PEP 751 markers
        ``'x' in extras``, ``'g' in dependency_groups``; PEP 508 ``extra`` is empty).
        A pin without marker always applies. ``Lock.pins_for`` passes a pylock's
        ``default-groups``."""
        if self.marker is None:
            return True
        env: dict[str, str | frozenset[str]] = dict(target.marker_environment(python))
        env |= {
            "extra": "",
            "extras": frozenset(canonicalize_name(e) for e in extras),
            "dependency_groups": frozenset(canonicalize_name(g) for g in groups),
        }
        return Marker(self.marker).evaluate(env, context="lock_file")


@dataclass(frozen=True)
class Lock:
    """A validated lock.

    ``path`` as given; ``sha256`` hex of its bytes; ``pins`` in file order; ``format``
    ``"requirements"`` or ``"pylock"``; ``requires_python`` (pylock ``requires-python``)
    and ``environments`` (pylock ``environments`` markers) or None/empty;
    ``default_groups`` (pylock ``default-groups``, the dependency groups selected when
    none are asked for) or empty; ``index_url`` the requirements file's ``--index-url``
    or None; ``exported_from`` the project lock (uv.lock, poetry.lock, pdm.lock) that
    ``exported_by`` (``"uv"``, ``"poetry"``, ``"pdm"``) exported into ``path``, else None/"".
    """

    path: Path
    sha256: str
    pins: tuple[Pin, ...]
    format: LockFormat = "requirements"
    requires_python: str | None = None
    environments: tuple[str, ...] = ()
    index_url: str | None = None
    default_groups: tuple[str, ...] = ()
    exported_from: Path | None = None
    exported_by: str = ""

    def pin(self, name: str) -> Pin | None:
        """The first pin for ``name`` (any spelling), or None. A lock may pin one name
        more than once under different markers; ``pins_for`` picks per target."""
        wanted = canonicalize_name(name)
        return next((p for p in self.pins if p.name == wanted), None)

    def pins_for(self, target: Target, python: str) -> tuple[Pin, ...]:
        """The pins whose marker holds on ``target`` for CPython ``python`` (no extras,
        the lock's default dependency groups), in file order."""
        return tuple(p for p in self.pins if p.applies_to(target, python, groups=self.default_groups))


def unmarked_duplicate(pins: Collection[Pin]) -> tuple[Pin, Pin] | None:
    """The first (pin, earlier pin) of one name where either carries no marker, else None.

    One name may be pinned several times only under markers (uv's universal locks fork
    by ``python_version`` or platform); whether two markers overlap on a configured
    target is ``lockfile.check_for``'s question, since it depends on the targets.
    """
    first: dict[str, Pin] = {}
    for pin in pins:
        earlier = first.get(pin.name)
        if earlier is not None and (pin.marker is None or earlier.marker is None):
            return pin, earlier
        first.setdefault(pin.name, pin)
    return None
