"""The wheelhouse manifest and the per-target install locks, as typed values (domain).

``manifest.json`` (JSON Schema: ``factory/resources/schemas/manifest.schema.json``)::

    {"python": "3.14.8", "abi": "cp314", "lock_sha256": "<64 hex>",
     "targets": {"<target>": [entry, ...]},             entries sorted by name
     "not_needed": [{"name", "version", "marker", "targets": ["<target>", ...]}],
     "missing": [{"name", "version", "target", "cause", "file"?}],
     "project": {...}}                                  a service's own project, when it ships one

An entry is ``{"name", "version", "filename", "sha256", "tag", "source": "index"}``; a
wheel built from its sdist has ``"source": "built"`` plus ``sdist``, ``sdist_sha256``,
``builder``, ``toolchain_sha256``, ``build_constraints_sha256``, ``build_seconds`` and
``cross_built``. ``not_needed`` lists the pins whose PEP 508 marker excludes some targets
(those targets, never the pin's wheel, appear there); ``missing`` the cells left without a
wheel (``--allow-missing``), with their ``cause``: ``no-wheel`` (the index lists no wheel of
the release for the target) or ``locked-out`` (it lists ``file``, but the lock's hashes
leave it out). ``project`` is the service's own wheel (``ProjectEntry``,
``"source": "project"``), kept as ``project/<filename>``: it serves every target, and the
install locks leave it out (it is the image's top layer, above the dependencies).

``install/<target>.lock`` is a pip requirements file in hash-checking mode (pip's
"Secure installs" format), one line per wheel of that target, sorted by name::

    name[extra1,extra2]==version --hash=sha256:<64 hex of the wheelhouse file>

The ``[extras]`` part is present only when the lock's pin names extras. This line format
is the install lock's contract (``InstallLock.parse`` reads it back); it has no JSON form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from ..core.textfile import write_atomically

DEFAULT_ABI = "cp314"
Source = Literal["index", "built"]
_SOURCES = ("index", "built")


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``textfile.write_atomically``): a reader sees
    the old file or the new one. ``OutputError`` on a full disk or a refused write."""
    write_atomically(path, text)


def json_text(data: object) -> str:
    """``data`` as the JSON every wheelhouse document uses: indent 2, sorted keys, final newline."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``. ``OSError`` passes through; ``ValueError`` if the file is
    not JSON or not an object."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def _strings(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = d[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} is not a list of strings: {value!r}")
    return tuple(value)


def _str(d: Mapping[str, Any], key: str) -> str:
    value = d[key]
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not a string: {value!r}")
    return value


@dataclass(frozen=True)
class ManifestEntry:
    """One wheel file of one target.

    ``sha256`` is the hex digest of the file in ``<wheelhouse>/<target>/<filename>``; ``tag``
    the PEP 425 tag that made it fit the target. The ``sdist``… fields are set only for
    ``source == "built"``: the sdist's file name and sha256, the builder image reference,
    the toolchain and build constraints lock sha256 hexes, the build's wall time in seconds,
    and whether it was cross-built (musllinux: statically checked, not import-tested).
    """

    name: str
    version: str
    filename: str
    sha256: str
    tag: str
    source: Source = "index"
    sdist: str | None = None
    sdist_sha256: str | None = None
    builder: str | None = None
    toolchain_sha256: str | None = None
    build_constraints_sha256: str | None = None
    build_seconds: float | None = None
    cross_built: bool | None = None
    build_constraints: str | None = None
    # the library recipes linked in, "name version" each (built entries only; none: absent)
    libraries: tuple[str, ...] = ()
    # variables factory added to the build, "NAME=value" each (built entries only; none: absent)
    environment: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The entry's JSON object (index entries carry only the six index keys)."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "filename": self.filename,
            "sha256": self.sha256,
            "tag": self.tag,
            "source": self.source,
        }
        if self.source == "built":
            out |= {
                "sdist": self.sdist,
                "sdist_sha256": self.sdist_sha256,
                "builder": self.builder,
                "toolchain_sha256": self.toolchain_sha256,
                "build_constraints_sha256": self.build_constraints_sha256,
                "build_seconds": self.build_seconds,
                "cross_built": self.cross_built,
            }
            if self.build_constraints:
                out["build_constraints"] = self.build_constraints
            if self.libraries:
                out["libraries"] = list(self.libraries)
            if self.environment:
                out["environment"] = list(self.environment)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ManifestEntry:
        """Parse ``to_json``'s form. ``ValueError`` for a missing key, a wrong type or an unknown source."""
        try:
            source = _str(d, "source")
            if source not in _SOURCES:
                raise ValueError(f"unknown source {source!r}")
            built = source == "built"
            seconds = d["build_seconds"] if built else None
            if built and not isinstance(seconds, int | float):
                raise ValueError(f"build_seconds is not a number: {seconds!r}")
            cross = d["cross_built"] if built else None
            if built and not isinstance(cross, bool):
                raise ValueError(f"cross_built is not a boolean: {cross!r}")
            return cls(
                name=_str(d, "name"),
                version=_str(d, "version"),
                filename=_str(d, "filename"),
                sha256=_str(d, "sha256"),
                tag=_str(d, "tag"),
                source=cast(Source, source),
                sdist=_str(d, "sdist") if built else None,
                sdist_sha256=_str(d, "sdist_sha256") if built else None,
                builder=_str(d, "builder") if built else None,
                toolchain_sha256=_str(d, "toolchain_sha256") if built else None,
                build_constraints_sha256=_str(d, "build_constraints_sha256") if built else None,
                build_seconds=float(seconds) if seconds is not None else None,
                cross_built=cross,
                build_constraints=_str(d, "build_constraints") if built and "build_constraints" in d else None,
                libraries=_strings(d, "libraries") if built and "libraries" in d else (),
                environment=_strings(d, "environment") if built and "environment" in d else (),
            )
        except KeyError as e:
            raise ValueError(f"manifest entry lacks {e}") from None


@dataclass(frozen=True)
class NotNeeded:
    """A pin whose PEP 508 ``marker`` excludes ``targets`` (sorted names): it has no wheel there."""

    name: str
    version: str
    marker: str
    targets: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"name", "version", "marker", "targets": [name, ...]}``."""
        return {"name": self.name, "version": self.version, "marker": self.marker, "targets": list(self.targets)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NotNeeded:
        """Parse ``to_json``'s form; ``ValueError`` if malformed."""
        try:
            targets = d["targets"]
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise ValueError(f"not_needed targets is not a list of names: {targets!r}")
            return cls(_str(d, "name"), _str(d, "version"), _str(d, "marker"), tuple(targets))
        except KeyError as e:
            raise ValueError(f"not_needed item lacks {e}") from None


NO_WHEEL = "no-wheel"
LOCKED_OUT = "locked-out"
MISSING_CAUSES = (NO_WHEEL, LOCKED_OUT)


@dataclass(frozen=True)
class MissingCell:
    """A pin × target left without a wheel (no allowed index wheel, not built), and why.

    ``cause`` is ``"no-wheel"`` (the index lists no wheel of the release that fits the
    target) or ``"locked-out"`` (it lists one, ``file``, but the lock's hashes leave it out:
    a lock made for another Python, or before the wheel was uploaded)."""

    name: str
    version: str
    target: str
    cause: str = NO_WHEEL
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"name", "version", "target", "cause"}``, plus ``"file"`` when locked out."""
        out: dict[str, Any] = {"name": self.name, "version": self.version, "target": self.target, "cause": self.cause}
        if self.file is not None:
            out["file"] = self.file
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MissingCell:
        """Parse ``to_json``'s form (an older manifest without ``cause`` reads as no-wheel);
        ``ValueError`` if malformed."""
        try:
            cause = d.get("cause", NO_WHEEL)
            if cause not in MISSING_CAUSES:
                raise ValueError(f"missing item has an unknown cause {cause!r}")
            file = d.get("file")
            if file is not None and not isinstance(file, str):
                raise ValueError(f"missing item's file is not a string: {file!r}")
            return cls(_str(d, "name"), _str(d, "version"), _str(d, "target"), cause, file)
        except KeyError as e:
            raise ValueError(f"missing item lacks {e}") from None


@dataclass(frozen=True)
class ProjectEntry:
    """The service's own wheel: built from its source tree (``tree_sha256``, the content hash
    of ``core.tree``) in ``builder`` with the toolchain and build constraints locks of those
    sha256 hexes, in ``build_seconds`` seconds. The file is ``<wheelhouse>/project/<filename>``."""

    name: str
    version: str
    filename: str
    sha256: str
    tag: str
    tree_sha256: str
    builder: str
    toolchain_sha256: str
    build_constraints_sha256: str
    build_seconds: float

    def to_json(self) -> dict[str, Any]:
        """The ``project`` object of ``manifest.json`` (``"source": "project"``)."""
        return {
            "name": self.name, "version": self.version, "filename": self.filename, "sha256": self.sha256, "tag": self.tag,
            "source": "project", "tree_sha256": self.tree_sha256, "builder": self.builder, "toolchain_sha256": self.toolchain_sha256,
            "build_constraints_sha256": self.build_constraints_sha256, "build_seconds": self.build_seconds,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ProjectEntry:
        """Parse ``to_json``'s form. ``ValueError`` for a missing key or a wrong type."""
        try:
            if d["source"] != "project":
                raise ValueError(f"project source is {d['source']!r}, not 'project'")
            seconds = d["build_seconds"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise ValueError(f"build_seconds is not a number: {seconds!r}")
            keys = ("name", "version", "filename", "sha256", "tag", "tree_sha256", "builder", "toolchain_sha256", "build_constraints_sha256")
            return cls(**{k: _str(d, k) for k in keys}, build_seconds=float(seconds))
        except KeyError as e:
            raise ValueError(f"manifest project lacks {e}") from None


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``: what a wheelhouse holds, per target (see the module docstring).

    ``python`` is the CPython version (``"3.14.8"``), ``abi`` the wheel ABI tag the
    wheelhouse is for (``"cp314"``), ``lock_sha256`` the sha256 hex of the lock's bytes.
    ``targets`` maps every target name to its entries sorted by name (the constructor sorts).
    """

    python: str
    lock_sha256: str
    targets: Mapping[str, tuple[ManifestEntry, ...]]
    abi: str = DEFAULT_ABI
    not_needed: tuple[NotNeeded, ...] = ()
    missing: tuple[MissingCell, ...] = ()
    project: ProjectEntry | None = None

    def __post_init__(self) -> None:
        ordered = {t: tuple(sorted(es, key=lambda e: (e.name, e.filename))) for t, es in self.targets.items()}
        object.__setattr__(self, "targets", ordered)
        object.__setattr__(self, "not_needed", tuple(sorted(self.not_needed, key=lambda n: n.name)))
        object.__setattr__(self, "missing", tuple(sorted(self.missing, key=lambda m: (m.name, m.target))))

    def entries(self, target: str) -> tuple[ManifestEntry, ...]:
        """The wheels of ``target`` sorted by name; ``KeyError`` if the wheelhouse lacks the target."""
        return self.targets[target]

    def entry(self, name: str, target: str) -> ManifestEntry | None:
        """The wheel of project ``name`` (canonical) on ``target``, or None."""
        return next((e for e in self.targets.get(target, ()) if e.name == name), None)

    def not_needed_on(self, name: str, target: str) -> NotNeeded | None:
        """The marker exclusion of ``name`` on ``target``, or None when the pin applies there."""
        return next((n for n in self.not_needed if n.name == name and target in n.targets), None)

    def not_needed_anywhere(self) -> tuple[NotNeeded, ...]:
        """Pins whose marker excludes every target of this wheelhouse."""
        return tuple(n for n in self.not_needed if set(n.targets) >= set(self.targets))

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``manifest.json`` (``manifest.schema.json``)."""
        return {
            "python": self.python,
            "abi": self.abi,
            "lock_sha256": self.lock_sha256,
            "targets": {t: [e.to_json() for e in es] for t, es in self.targets.items()},
            "not_needed": [n.to_json() for n in self.not_needed],
            "missing": [m.to_json() for m in self.missing],
            **({"project": self.project.to_json()} if self.project is not None else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        """Parse ``to_json``'s form. ``ValueError`` when a key is missing or has the wrong
        type (a manifest of an older factory, without ``abi``, is refused this way)."""
        try:
            targets = d["targets"]
            if not isinstance(targets, dict):
                raise ValueError("targets is not an object")
            return cls(
                python=_str(d, "python"),
                abi=_str(d, "abi"),
                lock_sha256=_str(d, "lock_sha256"),
                targets={str(t): tuple(ManifestEntry.from_json(e) for e in _list(es)) for t, es in targets.items()},
                not_needed=tuple(NotNeeded.from_json(n) for n in _list(d["not_needed"])),
                missing=tuple(MissingCell.from_json(m) for m in _list(d["missing"])),
                project=ProjectEntry.from_json(d["project"]) if d.get("project") is not None else None,
            )
        except KeyError as e:
            raise ValueError(f"manifest lacks {e}") from None
        except (TypeError, AttributeError) as e:
            raise ValueError(f"malformed manifest: {e}") from None

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read ``manifest.json`` at ``path``. ``OSError`` (e.g. ``FileNotFoundError``) passes
        through; ``ValueError`` if it is not a manifest of this format."""
        return cls.from_json(read_json_object(path))

    def dump(self, path: Path) -> None:
        """Write ``manifest.json`` to ``path`` atomically (``write_file``)."""
        write_file(path, json_text(self.to_json()))


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {value!r}")
    return value


_LINE_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[A-Za-z0-9._,-]*)\])?==(?P<version>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class InstallEntry:
    """One line of an install lock: a wheel of the target, with the extras its pin names."""

    name: str
    version: str
    sha256: str
    extras: tuple[str, ...] = ()

    def line(self) -> str:
        """``name[extras]==version --hash=sha256:<hex>`` (no ``[]`` without extras)."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class InstallLock:
    """``install/<target>.lock``: pip ``--require-hashes`` pins of one target's wheel files."""

    entries: tuple[InstallEntry, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=lambda e: e.name)))

    @classmethod
    def of(cls, entries: Iterable[ManifestEntry], extras: Mapping[str, Iterable[str]] | None = None) -> InstallLock:
        """The install lock of a target's manifest ``entries``; ``extras`` maps a project
        name to the extras its lock pin names (sorted on output)."""
        extras = extras or {}
        return cls(tuple(InstallEntry(e.name, e.version, e.sha256, tuple(sorted(extras.get(e.name, ())))) for e in entries))

    SCHEMA = "schemas/install-lock.schema.json"

    def to_json(self) -> dict[str, Any]:
        """The parsed form, ``{"entries": [{"name", "version", "sha256", "extras"}]}``
        (``resources/schemas/install-lock.schema.json``)."""
        return {"entries": [{"name": e.name, "version": e.version, "sha256": e.sha256, "extras": list(e.extras)} for e in self.entries]}

    def text(self) -> str:
        """The file's text: one ``InstallEntry.line`` per entry, each ending in a newline."""
        return "".join(e.line() + "\n" for e in self.entries)

    @classmethod
    def parse(cls, text: str) -> InstallLock:
        """Read ``text`` back; ``ValueError`` naming the first line not in the format."""
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            m = _LINE_RE.match(line)
            if m is None:
                raise ValueError(f"install lock line {number} is not name[extras]==version --hash=sha256:<hex>: {line!r}")
            extras = tuple(x for x in (m["extras"] or "").split(",") if x)
            entries.append(InstallEntry(m["name"], m["version"], m["sha"], extras))
        return cls(tuple(entries))

    @classmethod
    def load(cls, path: Path) -> InstallLock:
        """Read ``path``; ``OSError`` passes through, ``ValueError`` as in ``parse``."""
        return cls.parse(path.read_text())

    def dump(self, path: Path) -> None:
        """Write ``text()`` to ``path`` atomically (``write_file``)."""
        write_file(path, self.text())
