"""A base image's Debian package lock: every installed package with the version, arch and
``.deb`` sha256 of the Packages index apt verified (Debian policy 5.3 and 5.6: the
``status`` and ``Packages`` control-file formats, read with python-debian's deb822)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from debian.deb822 import Deb822


@dataclass(frozen=True, order=True)
class DebPackage:
    """One installed package: ``name``, ``version`` (Debian, with epoch), ``arch``
    (``amd64``/``arm64``/``all``), ``sha256`` hex of its ``.deb`` and ``filename`` (its path
    under the mirror's root, ``pool/main/…``)."""

    name: str
    version: str
    arch: str
    sha256: str
    filename: str

    def to_json(self) -> dict[str, str]:
        """The entry as bases.lock stores it."""
        return {"name": self.name, "version": self.version, "arch": self.arch, "sha256": self.sha256, "filename": self.filename}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DebPackage:
        """From ``to_json``'s form; ``KeyError``/``TypeError`` when it is not."""
        return cls(*(str(data[k]) for k in ("name", "version", "arch", "sha256", "filename")))


class UnknownPackageError(ValueError):
    """An installed package that no Packages paragraph (name, version, arch) describes."""


def installed(status: str) -> list[tuple[str, str, str]]:
    """(name, version, arch) of every package ``status`` (a ``var/lib/dpkg/status`` text)
    says is installed, sorted."""
    return sorted(
        (p["Package"], p.get("Version", ""), p.get("Architecture", ""))
        for p in Deb822.iter_paragraphs(status.splitlines())
        if p.get("Status", "").endswith(" installed")
    )


def package_lock(packages_installed: Iterable[tuple[str, str, str]], packages_index: str) -> tuple[DebPackage, ...]:
    """The ``DebPackage`` of each installed (name, version, arch), from ``packages_index``
    (the concatenated ``Packages`` files apt used). Raises ``UnknownPackageError`` naming
    the first package the index does not describe."""
    known: dict[tuple[str, str, str], tuple[str, str]] = {}
    for p in Deb822.iter_paragraphs(packages_index.splitlines()):
        if "Package" in p and "SHA256" in p:
            known[(p["Package"], p["Version"], p["Architecture"])] = (p["SHA256"], p["Filename"])
    lock = []
    for name, version, arch in packages_installed:
        found = known.get((name, version, arch))
        if found is None:
            raise UnknownPackageError(f"{name} {version} ({arch})")
        lock.append(DebPackage(name, version, arch, *found))
    return tuple(sorted(lock))


def first_difference(locked: Sequence[DebPackage], now: Sequence[DebPackage]) -> str:
    """How ``now`` differs from ``locked``, as one phrase naming the first package that
    differs (by name), or "" when they are equal."""
    old, new = {p.name: p for p in locked}, {p.name: p for p in now}
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None:
            return f"{name} {b.version if b else ''} is new (not in bases.lock)"
        if b is None:
            return f"{name} {a.version} (in bases.lock) is no longer installed"
        if (a.version, a.arch) != (b.version, b.arch):
            return f"{name} is {b.version} now, {a.version} in bases.lock"
        return f"{name} {a.version}'s .deb has sha256 {b.sha256[:12]}… now, {a.sha256[:12]}… in bases.lock"
    return ""
