"""The readiness matrix: one row per locked dependency, one cell per target (domain).

The migration playbooks' dependency readiness checklist, as a product. A cell is a wheel
from the index (its tag), built from the sdist (its tag and build time; musllinux cells
"cross-built, not import-tested"), failed (the reason and the build log's last lines),
missing (no allowed wheel and not built: ``--no-build``, ``--allow-missing``), or not
needed (the pin's PEP 508 marker excludes the target). A missing cell says which of two
causes it has: the index has no wheel of the release for the target (``no-wheel``), or it
has one but the lock's hashes leave it out (``locked-out``, naming the file: the fix is to
lock again for the configured Python, not to wait for a release).

``readiness.json`` (JSON Schema: ``factory/resources/schemas/readiness.schema.json``)::

    {"python", "abi", "lock_sha256", "targets": [name, ...],
     "rows": [{"name", "version", "cells": {target: cell}}]}

where a cell is ``{"status": "index"|"built"|"failed"|"missing"|"not needed"}`` plus
``tag`` (index, built), ``seconds`` (built), ``note`` (built, cross-built), ``reason``,
``log_tail`` and ``log`` (failed), ``cause`` (``"no-wheel"``/``"locked-out"``), ``reason``
and, when locked out, ``file`` (missing), ``marker`` (not needed). ``readiness.md`` is the same
matrix as a Markdown table, followed by the failed cells' log tails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..locks.lockfile import Lock
from .manifest import DEFAULT_ABI, LOCKED_OUT, NO_WHEEL, Manifest, MissingCell, json_text, read_json_object, write_file

CROSS_NOTE = "cross-built, not import-tested"
PROJECT_NOTE = "the service's own project"


class Status(StrEnum):
    """What a cell of the matrix is."""

    INDEX = "index"
    BUILT = "built"
    FAILED = "failed"
    MISSING = "missing"
    NOT_NEEDED = "not needed"


@dataclass(frozen=True)
class Failure:
    """A build that failed for ``name`` on ``target``: the reason, the log's last lines and its path."""

    name: str
    target: str
    reason: str
    log_tail: tuple[str, ...] = ()
    log: str = ""


@dataclass(frozen=True)
class Cell:
    """One pin × target. Which optional fields are set depends on ``status`` (module docstring)."""

    status: Status
    tag: str | None = None
    seconds: float | None = None
    note: str | None = None
    reason: str | None = None
    log_tail: tuple[str, ...] = ()
    log: str | None = None
    marker: str | None = None
    cause: str | None = None
    file: str | None = None

    def text(self) -> str:
        """The cell in words, Markdown-flavoured (tags in backticks, FAILED in bold)."""
        if self.status is Status.INDEX:
            return f"wheel from index (`{self.tag}`)"
        if self.status is Status.BUILT and self.note and self.note.startswith(PROJECT_NOTE):
            return f"built from its source tree (`{self.tag}`, {self.seconds or 0.0:.0f} s; {self.note.removeprefix(PROJECT_NOTE).strip(' ()')})"
        if self.status is Status.BUILT:
            note = f"; {self.note}" if self.note else ""
            return f"built from sdist (`{self.tag}`, {self.seconds or 0.0:.0f} s{note})"
        if self.status is Status.FAILED:
            return f"**FAILED**: {self.reason}"
        if self.status is Status.MISSING:
            return f"**MISSING**: {self.reason}" if self.reason else "**MISSING**: no wheel on the index, not built"
        return f"not needed (marker `{self.marker}`)"

    def to_json(self) -> dict[str, Any]:
        """The cell's JSON object: ``status`` and the fields that status carries."""
        out: dict[str, Any] = {"status": self.status.value}
        if self.status in (Status.INDEX, Status.BUILT):
            out["tag"] = self.tag
        if self.status is Status.BUILT:
            out["seconds"] = self.seconds
            if self.note:
                out["note"] = self.note
        if self.status is Status.FAILED:
            out |= {"reason": self.reason, "log_tail": list(self.log_tail), "log": self.log or ""}
        if self.status is Status.MISSING and self.cause:
            out |= {"cause": self.cause, "reason": self.reason or ""}
            if self.file:
                out["file"] = self.file
        if self.status is Status.NOT_NEEDED:
            out["marker"] = self.marker
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Cell:
        """Parse ``to_json``'s form; ``ValueError`` for an unknown status or a missing key."""
        try:
            status = Status(d["status"])
            return cls(
                status=status,
                tag=d["tag"] if status in (Status.INDEX, Status.BUILT) else None,
                seconds=float(d["seconds"]) if status is Status.BUILT else None,
                note=d.get("note"),
                reason=d["reason"] if status is Status.FAILED else d.get("reason") if status is Status.MISSING else None,
                log_tail=tuple(d.get("log_tail", ())),
                log=d.get("log"),
                marker=d["marker"] if status is Status.NOT_NEEDED else None,
                cause=d.get("cause") if status is Status.MISSING else None,
                file=d.get("file") if status is Status.MISSING else None,
            )
        except KeyError as e:
            raise ValueError(f"readiness cell lacks {e}") from None


@dataclass(frozen=True)
class Row:
    """One dependency: its canonical name, pinned version and a cell per target."""

    name: str
    version: str
    cells: Mapping[str, Cell]

    @property
    def plain(self) -> bool:
        """True when every cell is a wheel from the index (nothing to tell about this row)."""
        return all(c.status is Status.INDEX for c in self.cells.values())

    @property
    def needed_nowhere(self) -> bool:
        """True when the pin's marker excludes every target."""
        return bool(self.cells) and all(c.status is Status.NOT_NEEDED for c in self.cells.values())


@dataclass(frozen=True)
class Readiness:
    """The matrix: CPython ``python`` and ``abi``, the lock's sha256 hex, target names in
    column order, and one row per pin in lock order."""

    python: str
    lock_sha256: str
    targets: tuple[str, ...]
    rows: tuple[Row, ...]
    abi: str = DEFAULT_ABI

    def counts(self) -> dict[str, Counter[Status]]:
        """Per target, how many cells have each status."""
        return {t: Counter(row.cells[t].status for row in self.rows) for t in self.targets}

    def notable_rows(self) -> tuple[Row, ...]:
        """The rows that are not plain index wheels everywhere."""
        return tuple(r for r in self.rows if not r.plain)

    def needed_nowhere(self) -> tuple[Row, ...]:
        """The rows whose marker excludes every target."""
        return tuple(r for r in self.rows if r.needed_nowhere)

    def locked_out(self) -> tuple[tuple[Row, str, Cell], ...]:
        """The missing cells whose wheel the index has but the lock's hashes leave out, as
        (row, target, cell), in row then target order."""
        return tuple((r, t, r.cells[t]) for r in self.rows for t in self.targets if r.cells[t].cause == LOCKED_OUT)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``readiness.json`` (``readiness.schema.json``)."""
        return {
            "python": self.python,
            "abi": self.abi,
            "lock_sha256": self.lock_sha256,
            "targets": list(self.targets),
            "rows": [
                {"name": r.name, "version": r.version, "cells": {t: r.cells[t].to_json() for t in self.targets}} for r in self.rows
            ],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Readiness:
        """Parse ``to_json``'s form; ``ValueError`` if a key is missing or a status unknown
        (e.g. an older factory's ``"n/a"``)."""
        try:
            targets = tuple(d["targets"])
            rows = tuple(
                Row(r["name"], r["version"], {t: Cell.from_json(r["cells"][t]) for t in targets}) for r in d["rows"]
            )
            return cls(python=d["python"], abi=d["abi"], lock_sha256=d["lock_sha256"], targets=targets, rows=rows)
        except KeyError as e:
            raise ValueError(f"readiness matrix lacks {e}") from None
        except TypeError as e:
            raise ValueError(f"malformed readiness matrix: {e}") from None

    @classmethod
    def load(cls, path: Path) -> Readiness:
        """Read ``readiness.json`` at ``path``; ``OSError`` passes through, ``ValueError`` if malformed."""
        return cls.from_json(read_json_object(path))

    def dump(self, path: Path) -> None:
        """Write ``readiness.json`` to ``path`` atomically (``manifest.write_file``)."""
        write_file(path, json_text(self.to_json()))

    def markdown(self, rows: Iterable[Row] | None = None) -> str:
        """The matrix (or only ``rows``) as a Markdown table, then the failed cells' log tails."""
        shown = tuple(self.rows if rows is None else rows)
        lines = [
            f"# Dependency readiness: CPython {self.python} ({self.abi}), lock {self.lock_sha256[:12]}",
            "",
            "| dependency | " + " | ".join(self.targets) + " |",
            "| --- |" + " --- |" * len(self.targets),
        ]
        for row in shown:
            cells = [row.cells[t].text().replace("|", "\\|") for t in self.targets]
            lines.append(f"| {row.name}=={row.version} | " + " | ".join(cells) + " |")
        for row in shown:
            for t in self.targets:
                cell = row.cells[t]
                if cell.status is Status.FAILED and cell.log_tail:
                    lines += ["", f"## {row.name}=={row.version} on {t}", "", f"log: {cell.log or ''}", "", "```", *cell.log_tail, "```"]
        return "\n".join(lines) + "\n"

    def dump_markdown(self, path: Path) -> None:
        """Write ``markdown()`` to ``path`` atomically."""
        write_file(path, self.markdown())


def project_row(manifest: Manifest, targets: tuple[str, ...], failure: Failure | None = None, version: str = "") -> Row | None:
    """The row of the service's own project: built on every target (one pure wheel), or
    ``failure``'s reason on every target; None when the wheelhouse ships no project."""
    entry = manifest.project
    if failure is not None:
        cell = Cell(Status.FAILED, reason=failure.reason, log_tail=failure.log_tail, log=failure.log)
        return Row(failure.name, version or "source", dict.fromkeys(targets, cell))
    if entry is None:
        return None
    note = f"{PROJECT_NOTE} (tree {entry.tree_sha256[:12]})"
    return Row(entry.name, entry.version, dict.fromkeys(targets, Cell(Status.BUILT, tag=entry.tag, seconds=entry.build_seconds, note=note)))


def missing_cell(record: MissingCell | None, manifest: Manifest) -> Cell:
    """The ``missing`` cell of the manifest's ``record`` of it, its reason in words: which
    wheel the index lacks, or which file the lock's hashes leave out and the re-lock that
    takes it; a cell without a record has the bare reason."""
    if record is None:
        return Cell(Status.MISSING, reason="no allowed wheel, not built")
    if record.cause == LOCKED_OUT and record.file:
        reason = (
            f"the index has {record.file}, but the lock's hashes leave it out (the lock was made for another Python, or before "
            f"the upload): lock again for CPython {manifest.python} (`factory lock`, or uv pip compile --python-version "
            f"{manifest.python} --generate-hashes); not built"
        )
        return Cell(Status.MISSING, reason=reason, cause=LOCKED_OUT, file=record.file)
    reason = f"the index has no {manifest.abi} wheel of {record.name} {record.version} for {record.target} (`factory upgrade` finds a release that has one); not built"
    return Cell(Status.MISSING, reason=reason, cause=NO_WHEEL)


def readiness_of(manifest: Manifest, lock: Lock, failures: Iterable[Failure] = (), project: Failure | None = None) -> Readiness:
    """The matrix of a wheelhouse: rows in ``lock`` order, columns the ``manifest``'s targets,
    after the row of the service's project when there is one (``project_row``; ``project`` its
    failed build).

    A cell is ``failed`` when ``failures`` has it (over any manifest entry: an import check
    can fail a wheel that was built), else the manifest's entry (``index``/``built``), else
    ``not needed`` when the manifest records the pin's marker excluding the target, else
    ``missing``.
    """
    failed = {(f.name, f.target): f for f in failures}
    missing = {(m.name, m.target): m for m in manifest.missing}
    targets = tuple(manifest.targets)
    own = project_row(manifest, targets, project)
    rows = [own] if own is not None else []
    for pin in lock.pins:
        cells: dict[str, Cell] = {}
        for t in targets:
            entry = manifest.entry(pin.name, t)
            excluded = manifest.not_needed_on(pin.name, t)
            if (pin.name, t) in failed:
                f = failed[(pin.name, t)]
                cells[t] = Cell(Status.FAILED, reason=f.reason, log_tail=f.log_tail, log=f.log)
            elif entry is not None and entry.source == "built":
                notes = [CROSS_NOTE] if entry.cross_built else []
                notes += [f"own build lock {entry.build_constraints}"] if entry.build_constraints else []
                notes += [f"library recipes {', '.join(entry.libraries)}"] if entry.libraries else []
                notes += [f"built with {' '.join(entry.environment)}"] if entry.environment else []
                cells[t] = Cell(Status.BUILT, tag=entry.tag, seconds=entry.build_seconds or 0.0, note="; ".join(notes) or None)
            elif entry is not None:
                cells[t] = Cell(Status.INDEX, tag=entry.tag)
            elif excluded is not None:
                cells[t] = Cell(Status.NOT_NEEDED, marker=excluded.marker)
            else:
                cells[t] = missing_cell(missing.get((pin.name, t)), manifest)
        rows.append(Row(pin.name, pin.version, cells))
    return Readiness(python=manifest.python, abi=manifest.abi, lock_sha256=manifest.lock_sha256, targets=targets, rows=tuple(rows))
