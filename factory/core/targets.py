"""Targets: wheel platform tags the factory builds a wheelhouse for.

A target is named by its wheel platform tag, e.g. ``manylinux_2_28_aarch64`` (PEP 600)
or ``musllinux_1_2_x86_64`` (PEP 656). For each target this module gives the full
ordered list of wheel tags a CPython of the configured version accepts there, most
preferred first, built with ``packaging.tags``. ``pip download --platform X`` matches X
exactly (pip issue 10760), which is why the list is spelled out here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from packaging.tags import Tag, compatible_tags, cpython_tags

from .errors import UnknownTargetError


class Arch(StrEnum):
    """An image architecture (OCI ``platform.architecture``), ``amd64`` or ``arm64``.

    The one place that maps it to the machine name of wheel tags and ``uname -m``
    (``x86_64``/``aarch64``) and to Debian's multiarch triplets.
    """

    AMD64 = "amd64"
    ARM64 = "arm64"

    @property
    def machine(self) -> str:
        """``x86_64`` or ``aarch64``: the wheel-tag and ``platform.machine()`` spelling."""
        return _MACHINES[self]

    @property
    def platform(self) -> str:
        """The engine's platform string, ``linux/amd64`` or ``linux/arm64``."""
        return f"linux/{self.value}"

    @property
    def triplet(self) -> str:
        """Debian's multiarch triplet for glibc, e.g. ``aarch64-linux-gnu``."""
        return f"{self.machine}-linux-gnu"

    @property
    def musl_triplet(self) -> str:
        """Debian's multiarch triplet for musl, e.g. ``aarch64-linux-musl``."""
        return f"{self.machine}-linux-musl"

    @classmethod
    def of_machine(cls, machine: str) -> Arch:
        """The arch whose machine name is ``machine``; ``KeyError`` for any other."""
        return {m: a for a, m in _MACHINES.items()}[machine]


_MACHINES = {Arch.AMD64: "x86_64", Arch.ARM64: "aarch64"}
# PEP 600 legacy aliases: manylinux1 = glibc 2.5, manylinux2010 = 2.12, manylinux2014 = 2.17.
_LEGACY_ALIASES = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}
# Oldest glibc minor with manylinux wheels per arch (aarch64 started at manylinux2014).
_GLIBC_FLOOR_MIN = {"x86_64": 5, "aarch64": 17}
_TARGET_RE = re.compile(r"^(?P<libc>manylinux|musllinux)_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>[a-z0-9_]+)$")


@dataclass(frozen=True)
class Target:
    """One wheel platform, e.g. ``manylinux_2_28_x86_64``.

    ``libc`` is ``"manylinux"`` (glibc) or ``"musllinux"``; ``floor`` the (major, minor)
    libc version of the tag; ``arch`` the machine (``x86_64``/``aarch64``).
    """

    name: str
    libc: str
    floor: tuple[int, int]
    arch: str
    # "" is the interpreter's default (GIL) ABI, cp3XY; "cp314t" is the free-threaded lane.
    abi: str = ""

    @property
    def free_threaded(self) -> bool:
        """True in the free-threaded lane (``abi`` ending in ``t``, e.g. ``cp314t``)."""
        return self.abi.endswith("t")

    @property
    def docker_arch(self) -> Arch:
        """The OCI platform architecture (``amd64``/``arm64``) for this target's machine."""
        return Arch.of_machine(self.arch)

    def platforms(self) -> list[str]:
        """Platform tags this target accepts, most preferred first.

        manylinux: ``manylinux_2_<floor>`` down to the arch's oldest, with each legacy
        alias right after its PEP 600 twin. musllinux: ``musllinux_1_<floor>`` down to 1_0.
        """
        major, minor = self.floor
        out: list[str] = []
        if self.libc == "manylinux":
            for m in range(minor, _GLIBC_FLOOR_MIN[self.arch] - 1, -1):
                out.append(f"manylinux_{major}_{m}_{self.arch}")
                if m in _LEGACY_ALIASES and not (self.arch == "aarch64" and m != 17):
                    out.append(f"{_LEGACY_ALIASES[m]}_{self.arch}")
        else:
            out = [f"musllinux_{major}_{m}_{self.arch}" for m in range(minor, -1, -1)]
        return out

    def tags(self, python: str) -> list[Tag]:
        """Every wheel tag CPython ``python`` (``"3.14.8"``) accepts on this target, best first.

        Default lane: cp314-cp314, cp3x-abi3, cp314-none per platform, then pure-Python tags
        down to ``py3-none-any`` (``packaging.tags.cpython_tags`` + ``compatible_tags``).
        Free-threaded lane (``abi="cp314t"``): cp314-cp314t and cp314-none per platform, then
        the pure-Python tags; no stable-ABI tag (``abi3``, ``abi3t``), because a free-threaded
        3.14 does not load abi3 extensions.
        """
        return list(self._tags(python_version(python)))

    def _tags(self, version: tuple[int, int]) -> list[Tag]:
        interp = f"cp{version[0]}{version[1]}"
        plats = self.platforms()
        binary = cpython_tags(version, abis=[self.abi or interp], platforms=plats)
        if self.free_threaded:
            binary = (t for t in binary if not t.abi.startswith("abi3"))
        return [*binary, *compatible_tags(version, interpreter=interp, platforms=plats)]

    def rank(self, python: str) -> dict[Tag, int]:
        """Map each accepted tag to its preference (0 = best) for CPython ``python``."""
        return _rank(self, python_version(python))

    def marker_environment(self, python: str) -> dict[str, str]:
        """PEP 508 marker environment of CPython ``python`` on this target."""
        return {
            "implementation_name": "cpython",
            "implementation_version": python,
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": python,
            "python_version": ".".join(python.split(".")[:2]),
            "sys_platform": "linux",
        }


@cache
def _rank(target: Target, version: tuple[int, int]) -> dict[Tag, int]:
    return {t: i for i, t in enumerate(target._tags(version))}


def python_version(python: str) -> tuple[int, int]:
    """``"3.14.8"`` -> ``(3, 14)``."""
    major, minor = python.split(".")[:2]
    return int(major), int(minor)


def lane_abi(abi: str, python: str) -> str:
    """The normalized ABI of a lane for CPython ``python``: ``""`` for the default (GIL)
    ABI (``cp314`` or empty), ``cp314t`` for the free-threaded one. ``ValueError`` for any
    other value (e.g. ``cp313t`` with python 3.14.8)."""
    major, minor = python_version(python)
    default = f"cp{major}{minor}"
    if abi in ("", default):
        return ""
    if abi == f"{default}t":
        return abi
    raise ValueError(f"abi {abi!r} is neither {default} nor {default}t")


def parse_target(name: str, abi: str = "") -> Target:
    """Parse a target name. Raises ``UnknownTargetError`` for anything but a
    manylinux_2_N / musllinux_1_N tag on x86_64 or aarch64."""
    m = _TARGET_RE.match(name)
    ok = False
    if m is not None and m["arch"] in _MACHINES.values():
        arch = m["arch"]
        ok = m["major"] == "2" and int(m["minor"]) >= _GLIBC_FLOOR_MIN[arch] if m["libc"] == "manylinux" else m["major"] == "1"
    if not ok or m is None:
        raise UnknownTargetError(
            f"unknown target {name!r}",
            "use a wheel platform tag such as manylinux_2_28_x86_64, manylinux_2_28_aarch64, "
            "musllinux_1_2_x86_64 or musllinux_1_2_aarch64",
        )
    return Target(name=name, libc=m["libc"], floor=(int(m["major"]), int(m["minor"])), arch=arch, abi=abi)
