"""The report stage: the summary printed at the end of ``make images`` and by ``factory report``.

The readiness matrix itself (``readiness.Readiness``) is written by the wheelhouse stage
as ``readiness.json``/``.md``. At real-lock size (hundreds of pins) the terminal gets a
digest of it instead of the whole table: the cell counts per target, then only the rows
that are not plain index wheels everywhere, then a note naming the pins no target needs.
The images table gives each arch's image and base digests and sizes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .bases.imagelock import ImagesLock
from .wheelhouse.readiness import Readiness, Row, Status
from .wheelhouse.upgrade import UpgradePlan

_STYLE = {Status.INDEX: "", Status.BUILT: "[cyan]", Status.FAILED: "[red]", Status.MISSING: "[red]", Status.NOT_NEEDED: "[dim]"}
_COUNTED = (Status.INDEX, Status.BUILT, Status.NOT_NEEDED, Status.FAILED, Status.MISSING)
_HEADINGS = {Status.INDEX: "from the index", Status.BUILT: "built", Status.NOT_NEEDED: "not needed", Status.FAILED: "failed", Status.MISSING: "missing"}


def human(n: int) -> str:
    """Bytes as MB with one decimal (10**6, as docker prints sizes)."""
    return f"{n / 1e6:.1f} MB"


def counts_table(matrix: Readiness) -> Table:
    """One row per target: how many pins come from the index, are built, not needed, failed, missing."""
    table = Table(title=f"readiness: CPython {matrix.python} ({matrix.abi}), lock {matrix.lock_sha256[:12]}, {len(matrix.rows)} pins")
    table.add_column("target")
    for status in _COUNTED:
        table.add_column(_HEADINGS[status], justify="right")
    for target, counts in matrix.counts().items():
        table.add_row(target, *(str(counts[s]) for s in _COUNTED))
    return table


def rows_table(matrix: Readiness, rows: tuple[Row, ...]) -> Table:
    """``rows`` of the matrix as a rich table (cell texts without Markdown)."""
    table = Table(title=f"{len(rows)} of {len(matrix.rows)} pins are not plain index wheels on every target")
    table.add_column("dependency")
    for t in matrix.targets:
        table.add_column(t)
    for row in rows:
        cells = (row.cells[t] for t in matrix.targets)
        table.add_row(escape(f"{row.name}=={row.version}"), *(_STYLE[c.status] + escape(c.text().replace("**", "").replace("`", "")) for c in cells))
    return table


def print_readiness(matrix: Readiness, console: Console) -> None:
    """Counts per target, the notable rows (if any), a line on the missing cells the lock's
    hashes leave out (the index has their wheels: the fix is a re-lock), and a note on pins
    no target needs."""
    console.print(counts_table(matrix))
    notable = matrix.notable_rows()
    if notable:
        console.print(rows_table(matrix, notable))
    locked_out = matrix.locked_out()
    if locked_out:
        pins = sorted({f"{r.name}=={r.version}" for r, _t, _c in locked_out})
        _row, target, cell = locked_out[0]
        console.print(
            f"[yellow]{len(locked_out)} missing cells ({len(pins)} pins: {escape(', '.join(pins))}) are not a missing release: the index "
            f"has their wheels, but the lock's hashes leave them out (e.g. {escape(cell.file or '')} for {target}). Lock again for "
            f"CPython {matrix.python} (`factory lock`, or uv pip compile --python-version {matrix.python} --generate-hashes).[/yellow]"
        )
    for row in matrix.needed_nowhere():
        marker = next(iter(row.cells.values())).marker
        console.print(f"note: {escape(row.name)}=={escape(row.version)} is needed on no target (marker {escape(marker or '')}); left out of the wheelhouse")


def images_table(images_lock: dict[str, Any]) -> Table:
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


def service_lines(images_lock: dict[str, Any]) -> list[str]:
    """What a service image runs, as its config says (``images.lock``'s ``service``), one line
    each: the project, the command, the ports, the working directory; [] for dependency images."""
    service = images_lock.get("service")
    if not isinstance(service, dict):
        return []
    image = service.get("image", {})
    what = f"{service['project']}=={service['version']}" if service.get("project") else f"files under {service.get('app_dir')}"
    lines = [f"service: {what}"]
    argv = [*image.get("entrypoint", []), *image.get("command", [])]
    lines.append(f"  command: {' '.join(argv) or '(the base image default)'}")
    if image.get("ports"):
        lines.append(f"  ports: {', '.join(image['ports'])}")
    lines.append(f"  workdir: {image.get('workdir') or service.get('app_dir')}")
    if image.get("env"):
        lines.append(f"  env: {', '.join(sorted(image['env']))}")
    if image.get("stop_signal"):
        lines.append(f"  stop signal: {image['stop_signal']}")
    for i in images_lock.get("images", []):
        if i.get("dependencies"):
            lines.append(f"  {i['arch']}: dependency image {i['dependencies'].partition('@')[2]}")
    return lines


def startup_table(images_lock: dict[str, Any]) -> Table | None:
    """Each arch's service startup as smoke measured it (``images.lock``'s ``startup``): time
    to ready cold and under the limits (median and max of the runs), RSS at ready, the stop;
    None when no image has one."""
    measured = [i for i in images_lock.get("images", []) if isinstance(i.get("startup"), dict)]
    if not measured:
        return None
    first = measured[0]["startup"]
    table = Table(title=f"service startup: {first['ready']}, {first['runs']} fresh containers per figure")
    for col in ("arch", "ready cold", f"ready at {first['cpus']:g} CPU, {first['memory'] / 2**20:.0f} MiB", "RSS at ready", "stop (exit)"):
        table.add_column(col)
    for i in measured:
        s = i["startup"]
        table.add_row(
            i["arch"] + (" (emulated, not gated)" if s["emulated"] else ""),
            f"{s['cold_median_s']:.2f} s (max {s['cold_max_s']:.2f})",
            f"{s['limited_median_s']:.2f} s (max {s['limited_max_s']:.2f})",
            f"{s['rss_bytes'] / 2**20:.1f} MiB",
            f"{s['stop_max_s']:.2f} s ({s['stop_exit_code']})",
        )
    return table


def print_summary(wheelhouse: Path | None, images_lock: Path | None, console: Console | None = None) -> None:
    """Print the readiness digest of ``<wheelhouse>/readiness.json`` and the images table
    of ``images_lock``, each when its file is present. A readiness file of another format
    (an older factory's) is named, not printed; the full matrix is in ``readiness.md``.
    ``ArtifactError`` when ``images_lock`` is not an images.lock (``ImagesLock.load``)."""
    console = console or Console(width=200)
    readiness = wheelhouse / "readiness.json" if wheelhouse is not None else None
    if readiness is not None and readiness.exists():
        try:
            matrix = Readiness.load(readiness)
        except ValueError as e:
            console.print(f"[yellow]{escape(str(readiness))} is not a readiness matrix of this factory ({escape(str(e))}); rebuild the wheelhouse[/yellow]")
        else:
            print_readiness(matrix, console)
            console.print(f"full matrix: {escape(str(readiness.with_suffix('.md')))}")
    if images_lock is not None and images_lock.exists():
        ImagesLock.load(images_lock)  # ArtifactError, one line, for a file not of its form
        data = json.loads(images_lock.read_text())
        console.print(images_table(data))
        for line in service_lines(data):
            console.print(escape(line))
        startup = startup_table(data)
        if startup is not None:
            console.print(startup)


def print_upgrade(plan: UpgradePlan, console: Console) -> None:
    """``factory upgrade``'s summary: cells ready before and after, the changes table
    (pin, old → new, why, major, forced), the pins no release makes ready, the run time."""
    b, a = plan.before, plan.after
    console.print(
        f"upgrade of {escape(str(plan.lock.path))} for CPython {plan.python} ({plan.abi}): cells ready from the index "
        f"{b.ready}/{b.cells} before, {a.ready}/{a.cells} after; {len(plan.changes)} pins change, "
        f"{len(plan.relocked)} only gain hashes, {len(plan.blocked)} no release makes ready ({plan.seconds:.1f} s)"
    )
    if plan.changes:
        table = Table(title=f"{len(plan.changes)} pin changes")
        for col in ("pin", "old → new", "why", "major", "forced"):
            table.add_column(col, overflow="fold")
        for c in plan.changes:
            why = c.why + (f" (forced by {c.forced_by})" if c.forced_by else "")
            table.add_row(escape(c.name), escape(f"{c.old or '(new)'} → {c.new or '(dropped)'}"), escape(why), "yes" if c.major else "", escape(", ".join(c.forced)))
        console.print(table)
    for k in plan.blocked:
        newest = f"newest checked {k.newest}" if k.newest else "no later release"
        console.print(f"[yellow]not ready, no release fixes it: {escape(k.name)}=={escape(k.version)}: {escape(k.why)} ({newest})[/yellow]")
