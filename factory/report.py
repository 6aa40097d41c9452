"""The report stage: the summary printed at the end of ``make images``.

Reads ``<wheelhouse>/manifest.json`` and ``images.lock``; prints a pins × targets table
(the wheel tag chosen per cell, or MISSING) and the images with digests and sizes.
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
    if wheelhouse is not None and (wheelhouse / "manifest.json").exists():
        console.print(readiness_table(json.loads((wheelhouse / "manifest.json").read_text())))
    if images_lock is not None and images_lock.exists():
        console.print(images_table(json.loads(images_lock.read_text())))
