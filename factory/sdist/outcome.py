"""The sdist lane's typed records: a cell to build (``BuildRequest``) and its result
(``BuildOutcome``, stored as ``outcome.json`` in its build cache entry).

Domain module: no I/O beyond (de)serialising; the stages build and read these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pypi_simple import DistributionPackage

from ..core.targets import Target
from ..locks.lockfile import Pin


@dataclass(frozen=True)
class BuildRequest:
    """One cell to compile: the pin, the target, and the sdist (index file and its sha256
    hex) whose hash the lock allows."""

    pin: Pin
    target: Target
    sdist: DistributionPackage
    sdist_sha256: str


@dataclass(frozen=True)
class BuildRun:
    """One finished (or timed out) build tool run: cibuildwheel for a cell (``cibw``) or
    ``python -m build`` for a pure-Python sdist (``pure``).

    ``returncode`` is None on timeout; ``seconds`` the wall time; ``log`` the combined
    stdout/stderr file; ``tail`` its last lines; ``wheels`` what it wrote; ``tool`` its name
    in messages.
    """

    returncode: int | None
    seconds: float
    log: Path
    tail: tuple[str, ...]
    wheels: tuple[Path, ...]
    tool: str = "cibuildwheel"

    @property
    def failure(self) -> str:
        """Why the run produced no usable wheel, or "" (exactly one wheel, exit 0)."""
        if self.returncode is None:
            return "build timed out"
        if self.returncode != 0:
            return f"{self.tool} exited with {self.returncode}"
        if len(self.wheels) != 1:
            return f"{self.tool} produced {len(self.wheels)} wheels, expected 1"
        return ""


def cell_id(name: str, version: str, target: str) -> str:
    """The id of a pin × target cell in plans and ``--only``: ``<name>-<version>-<target>``."""
    return f"{name}-{version}-{target}"


@dataclass(frozen=True)
class PlannedCell:
    """One cell of ``factory plan``: ``id`` (``cell_id``), the pin, the ``target`` and its
    ``arch`` (``amd64``/``arm64``); ``key`` the build cache key (sha256 hex) or None when it
    cannot be known before building (no builder recorded yet, a build lock still to be
    generated); ``cached`` True when the cache holds it; ``reason`` why the cell fails
    before any build (no sdist, an unsafe sdist), else ""."""

    id: str
    name: str
    version: str
    target: str
    arch: str
    key: str | None = None
    cached: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The cell as ``factory plan --format json`` prints it."""
        return {
            "id": self.id, "name": self.name, "version": self.version, "target": self.target, "arch": self.arch,
            "key": self.key, "cached": self.cached, "reason": self.reason,
        }  # fmt: skip


# JSON type of each stored field (``seconds`` may come back as an int).
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "version": str, "target": str, "ok": bool, "sdist": str, "sdist_sha256": str,
    "builder": str, "toolchain_sha256": str, "build_constraints_sha256": str, "filename": str,
    "sha256": str, "tag": str, "seconds": (int, float), "cross_built": bool, "reason": str,
    "log_tail": list, "log": str, "cached": bool, "build_constraints": str, "libraries": list,
    "environment": list,
}  # fmt: skip


@dataclass(frozen=True)
class BuildOutcome:
    """The result of one (pin, target) cell.

    ``ok`` with ``filename``/``sha256``/``tag`` of the built wheel (it sits beside ``log``,
    in the build cache entry), or not ``ok`` with ``reason`` and ``log_tail`` (the log's
    last lines). ``builder`` is the builder image reference (``repo@sha256:…``);
    ``toolchain_sha256`` and ``build_constraints_sha256`` the sha256 hex of the locks the
    build used; ``seconds`` the build's wall time in seconds (the original build's when
    ``cached``); ``cross_built`` is True for musllinux wheels cross-compiled with zig
    (statically checked, not import-tested).
    """

    name: str
    version: str
    target: str
    ok: bool
    sdist: str
    sdist_sha256: str
    builder: str = ""
    toolchain_sha256: str = ""
    build_constraints_sha256: str = ""
    filename: str = ""
    sha256: str = ""
    tag: str = ""
    seconds: float = 0.0
    cross_built: bool = False
    reason: str = ""
    log_tail: tuple[str, ...] = ()
    log: str = ""
    cached: bool = False
    # the build lock used when it is not build-constraints: a user's override or a generated one
    build_constraints: str = ""
    # the library recipes linked in, ``name version`` each (libraries.Sysroot.labels)
    libraries: tuple[str, ...] = ()
    # variables factory added to the build on its own, ``NAME=value`` each (a Rust crate whose
    # PyO3 predates 3.14 is built again with PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1)
    environment: tuple[str, ...] = ()

    @property
    def wheel(self) -> Path:
        """The built wheel's path: in the cache entry, beside ``log`` (meaningful when ``ok``)."""
        return Path(self.log).parent / self.filename

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON object (every field; ``log_tail`` as a list)."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["log_tail"] = list(self.log_tail)
        data["libraries"] = list(self.libraries)
        data["environment"] = list(self.environment)
        return data

    @classmethod
    def from_json(cls, data: object) -> BuildOutcome:
        """The outcome from ``to_json``'s object. ``ValueError`` naming the first field that
        is missing (without a default) or of the wrong JSON type; unknown keys are ignored."""
        if not isinstance(data, Mapping):
            raise ValueError("a build outcome is a JSON object")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                if f.name in ("name", "version", "target", "ok", "sdist", "sdist_sha256"):
                    raise ValueError(f"build outcome without {f.name!r}")
                continue
            value: Any = data[f.name]
            want = _JSON_TYPES[f.name]
            if not isinstance(value, want) or (want == (int, float) and isinstance(value, bool)):
                raise ValueError(f"build outcome field {f.name!r} is {type(value).__name__}")
            if isinstance(value, list):
                if not all(isinstance(line, str) for line in value):
                    raise ValueError(f"build outcome field {f.name!r} is not a list of strings")
                value = tuple(value)
            values[f.name] = float(value) if f.name == "seconds" else value
        return cls(**values)
