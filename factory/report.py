"""The report stage: the readiness matrix and the summary printed at the end of ``make images``.

The readiness matrix (the migration playbooks' dependency readiness checklist, as a
product) has one row per dependency and one cell per target: a wheel from the index (its
tag), built from the sdist (its tag and build time; musllinux cells "cross-built, not
import-tested"), failed (the reason and the log's last lines), or not applicable (marker).
It is written as ``readiness.json`` and ``readiness.md`` into the wheelhouse, or, when a
build failed and nothing was published, beside it as ``<wheelhouse>.failed/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table


def human(n: int) -> str:
    """Bytes as MB with one decimal (10**6, as docker prints sizes)."""
    return f"{n / 1e6:.1f} MB"


def readiness_table(manifest: dict) -> Table:
    """pins × targets: the chosen index wheel's tag (``cp314-cp314-manylinux_2_17_x86_64``…)."""
    targets = list(manifest["targets"])
    table = Table(title=f"wheelhouse: python {manifest['python']}, lock {manifest['lock_sha256'][:12]}")
    table.add_column("pin")
    for t in targets:
        table.add_column(t)
    cells: dict[str, dict[str, str]] = {}
    for t, entries in manifest["targets"].items():
        for e in entries:
            tag = e.get("tag", e["filename"])
            cells.setdefault(f"{e['name']}=={e['version']}", {})[t] = tag if e["source"] == "index" else f"{e['source']}: {tag}"
    for m in manifest.get("missing", []):
        cells.setdefault(f"{m['name']}=={m['version']}", {})[m["target"]] = "[red]MISSING[/red]"
    for pin in sorted(cells):
        table.add_row(pin, *(cells[pin].get(t, "n/a (marker)") for t in targets))
    return table


CROSS_NOTE = "cross-built, not import-tested"


def readiness(python: str, lock_sha256: str, pins: list[tuple[str, str, list[str]]], targets: list[str], manifest_targets: dict, outcomes: list) -> dict:
    """The readiness matrix as JSON-ready data.

    ``pins`` is (name, version, targets the pin applies to); ``manifest_targets`` the
    manifest's ``targets`` dict (index and built entries); ``outcomes`` the build stage's
    ``BuildOutcome``s (failed ones included). Returns ``{"python", "lock_sha256",
    "targets", "rows": [{"name", "version", "cells": {target: cell}}]}`` where a cell is
    ``{"status": "index"|"built"|"failed"|"n/a", "tag"?, "seconds"?, "note"?, "reason"?,
    "log_tail"?, "log"?}``.
    """
    entries = {(e["name"], t): e for t, es in manifest_targets.items() for e in es}
    failed = {(o.name, o.target): o for o in outcomes if not o.ok}
    rows = []
    for name, version, applies in pins:
        cells = {}
        for t in targets:
            e = entries.get((name, t))
            if (name, t) in failed:
                o = failed[(name, t)]
                cells[t] = {"status": "failed", "reason": o.reason, "log_tail": o.log_tail, "log": o.log}
            elif e is not None and e["source"] == "built":
                cells[t] = {"status": "built", "tag": e["tag"], "seconds": e.get("build_seconds", 0.0)}
                if e.get("cross_built"):
                    cells[t]["note"] = CROSS_NOTE
            elif e is not None:
                cells[t] = {"status": "index", "tag": e["tag"]}
            elif t in applies:
                cells[t] = {"status": "failed", "reason": "no wheel on the index and not built"}
            else:
                cells[t] = {"status": "n/a", "note": "marker excludes this target"}
        rows.append({"name": name, "version": version, "cells": cells})
    return {"python": python, "lock_sha256": lock_sha256, "targets": targets, "rows": rows}


def _cell_text(cell: dict) -> str:
    if cell["status"] == "index":
        return f"wheel from index (`{cell['tag']}`)"
    if cell["status"] == "built":
        note = f"; {cell['note']}" if cell.get("note") else ""
        return f"built from sdist (`{cell['tag']}`, {cell['seconds']:.0f} s{note})"
    if cell["status"] == "failed":
        return f"**FAILED**: {cell['reason']}"
    return "n/a"


def readiness_markdown(matrix: dict) -> str:
    """The matrix as a Markdown table, followed by the failed cells' log tails."""
    targets = matrix["targets"]
    lines = [
        f"# Dependency readiness: CPython {matrix['python']}, lock {matrix['lock_sha256'][:12]}",
        "",
        "| dependency | " + " | ".join(targets) + " |",
        "| --- |" + " --- |" * len(targets),
    ]
    for row in matrix["rows"]:
        cells = [_cell_text(row["cells"][t]).replace("|", "\\|") for t in targets]
        lines.append(f"| {row['name']}=={row['version']} | " + " | ".join(cells) + " |")
    for row in matrix["rows"]:
        for t in targets:
            cell = row["cells"][t]
            if cell["status"] == "failed" and cell.get("log_tail"):
                lines += ["", f"## {row['name']}=={row['version']} on {t}", "", f"log: {cell.get('log', '')}", "", "```", *cell["log_tail"], "```"]
    return "\n".join(lines) + "\n"


def write_readiness(directory: Path, matrix: dict) -> None:
    """Write ``readiness.json`` and ``readiness.md`` into ``directory``, each atomically."""
    from . import atomic

    atomic.write_json(directory / "readiness.json", matrix)
    atomic.write_text(directory / "readiness.md", readiness_markdown(matrix))


def matrix_table(matrix: dict) -> Table:
    """The readiness matrix as a rich table for the terminal."""
    table = Table(title=f"readiness: CPython {matrix['python']}, lock {matrix['lock_sha256'][:12]}")
    table.add_column("dependency")
    for t in matrix["targets"]:
        table.add_column(t)
    style = {"index": "", "built": "[cyan]", "failed": "[red]", "n/a": "[dim]"}
    for row in matrix["rows"]:
        table.add_row(f"{row['name']}=={row['version']}", *(style[row["cells"][t]["status"]] + _cell_text(row["cells"][t]).replace("**", "").replace("`", "") for t in matrix["targets"]))
    return table


def images_table(images_lock: dict) -> Table:
    """arch, image and base digests, sizes (unpacked and compressed)."""
    table = Table(title=f"images: index {images_lock['index']}")
    for col in ("arch", "image digest", "base digest", "base size", "final size"):
        table.add_column(col, overflow="fold")
    for i in images_lock["images"]:
        table.add_row(
            i["arch"],
            i["ref"].partition("@")[2],
            i["base"].partition("@")[2],
            f"{human(i['base_size'])} ({human(i['base_compressed_size'])} compressed)",
            f"{human(i['size'])} ({human(i['compressed_size'])} compressed)",
        )
    return table


def print_summary(wheelhouse: Path | None, images_lock: Path | None, console: Console | None = None) -> None:
    """Print whichever of the two tables has its input file present."""
    console = console or Console(width=200)
    if wheelhouse is not None and (wheelhouse / "readiness.json").exists():
        console.print(matrix_table(json.loads((wheelhouse / "readiness.json").read_text())))
    elif wheelhouse is not None and (wheelhouse / "manifest.json").exists():
        console.print(readiness_table(json.loads((wheelhouse / "manifest.json").read_text())))
    if images_lock is not None and images_lock.exists():
        console.print(images_table(json.loads(images_lock.read_text())))
