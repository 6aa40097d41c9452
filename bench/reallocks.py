"""Issue 11's measurement: the sdist cells of real production locks, built for every target
of this project (not a test; part of ``make bench``).

usage: python bench/reallocks.py [LOCK ...]

LOCK defaults to every ``bench/locks/*.requirements.txt`` (their sources are in
``bench/locks/README.md``). Each lock runs through ``factory wheelhouse`` with this
project's configuration and cache; generated build locks go to a temporary directory, not
to ``constraints/``. A direct-URL pin (``name @ https://…``) is left out of the copy that is
run and named in the report: factory takes index pins only, and no host but the index is
reachable here. Prints, and writes to ``bench/reallocks-last-run.md``, per lock: the wall
time, the sdist cells (every cell without an index wheel), how many were built on each
target, and every failed cell with its classified cause.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

from factory.sdist.checks import BLOCKED
from factory.sdist.failures import CauseKind
from factory.wheelhouse.readiness import Readiness, Status

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "bench" / "locks"
# A requirement line that pins by URL, and the indented --hash/comment lines that follow it.
URL_PIN = re.compile(r"^[A-Za-z0-9._-]+(\[[^\]]*\])? @ ")
# Failed cells that factory puts on the pinned release, not on the build: its source is not
# ready for 3.14 (the cause is one of these, or the reason names a later release with a wheel:
# ``factory/sdist/build.py``, ``_with_upgrade``), or it publishes no sdist (``factory/sdist/plan.py``).
NOT_READY = "the pinned release's source is not ready for 3.14"
NOT_READY_CAUSES = (CauseKind.CAPI_REMOVED.value, CauseKind.PYO3_TOO_OLD.value, CauseKind.CYTHON3.value)
UPGRADE_NAMED = "is the first later release with a wheel for"
NO_SDIST = "the pinned release publishes no sdist"


def without_url_pins(text: str) -> tuple[str, list[str]]:
    """``text`` without its direct-URL requirements (each with its continuation lines), and
    the names of those left out."""
    kept, dropped, skipping = [], [], False
    for line in text.splitlines():
        if URL_PIN.match(line):
            dropped.append(line.split(" @ ", 1)[0])
            skipping = True
            continue
        if skipping and line.startswith((" ", "\t")):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept) + "\n", dropped


def cause_of(reason: str) -> str:
    """The cause a failed cell's reason starts with: ``"timeout"`` of ``"timeout (fix: …)"``,
    ``"missing header"`` of ``"missing header: x.h (…)"``, with a target named in it written
    ``<target>`` so that the four cells of one cause count together."""
    return without_targets(re.split(r":| \(fix", reason, maxsplit=1)[0].strip())


def without_targets(text: str) -> str:
    """``text`` with every target it names (``manylinux_2_28_x86_64``) written ``<target>``."""
    return re.sub(r"\b(many|musl)linux_\d+_\d+_\w+", "<target>", text)


def pin_side(reason: str) -> str | None:
    """``NOT_READY`` or ``NO_SDIST`` when a failed cell's reason puts the failure on the pinned
    release, None when it puts it on the build."""
    if reason.startswith(NOT_READY_CAUSES) or UPGRADE_NAMED in reason:
        return NOT_READY
    return NO_SDIST if " publishes no sdist" in reason else None


def failure_lines(failed: dict[str, list[tuple[str, str]]]) -> list[str]:
    """One Markdown item per failed pin and reason, from ``{pin: [(target, reason)]}``: the
    cells of a pin whose reasons differ only in the target they name share a line, which
    quotes the first of them; a reason that differs otherwise (a retry that failed
    differently on one arch) gets its own line."""
    lines = []
    for pin, cells in sorted(failed.items()):
        by_reason: dict[str, list[tuple[str, str]]] = {}
        for target, reason in cells:
            by_reason.setdefault(without_targets(reason), []).append((target, reason))
        lines += [f"- `{pin}` ({', '.join(t for t, _ in group)}): {group[0][1]}" for group in by_reason.values()]
    return lines


def run_lock(lock: Path, work: Path) -> list[str]:
    """Run one lock; the report lines of its section."""
    text, dropped = without_url_pins(lock.read_text())
    copy = work / lock.name
    copy.write_text(text)
    out = work / f"{lock.stem}-wheelhouse"
    env = {**os.environ, "FACTORY_BUILD_OVERRIDES_DIR": str(work / "build-overrides")}
    start = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "factory"), "wheelhouse", "--lock", str(copy), "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.monotonic() - start
    (work / f"{lock.stem}.log").write_text(proc.stdout + proc.stderr)
    lines = [f"### {lock.name}", ""]
    # a run that publishes no target writes its matrix beside the output, in <out>.failed
    readiness = next((p for p in (out / "readiness.json", out.with_name(out.name + ".failed") / "readiness.json") if p.is_file()), out / "readiness.json")
    if not readiness.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return [*lines, f"no readiness matrix (exit {proc.returncode}): {tail}", ""]
    matrix = Readiness.load(readiness)
    pins, targets = len(matrix.rows), sorted(matrix.targets)
    sdist = Counter[str]()
    built = Counter[str]()
    blocked = Counter[str]()
    causes = Counter[str]()
    pinned = Counter[str]()  # failed cells by pin_side()
    failed: dict[str, list[tuple[str, str]]] = {}  # pin -> [(target, reason)]
    helped: dict[str, set[str]] = {}  # pin -> what the matrix says factory added to its builds
    for row in matrix.rows:
        for target, cell in sorted(row.cells.items()):
            if cell.status in (Status.INDEX, Status.NOT_NEEDED):
                continue
            sdist[target] += 1
            if cell.status is Status.BUILT:
                built[target] += 1
                for note in (cell.note or "").split("; "):
                    if note.startswith(("library recipes", "own build lock", "built with")):
                        helped.setdefault(f"{row.name}=={row.version}", set()).add(note)
            elif (cell.reason or "").startswith(BLOCKED):  # the wheel built; a dependency's cell failed
                built[target] += 1
                blocked[target] += 1
            else:
                reason = cell.reason or cell.status.value
                causes[cause_of(reason)] += 1
                if (kind := pin_side(reason)) is not None:
                    pinned[kind] += 1
                failed.setdefault(f"{row.name}=={row.version}", []).append((target, reason))
    failures = failure_lines(failed)
    total, done = sum(sdist.values()), sum(built.values())
    share = f"{100 * done / total:.0f} %" if total else "—"
    lines += [
        f"{pins} pins run"
        + (f" ({', '.join(dropped)} left out: a direct-URL pin)" if dropped else "")
        + f"; `factory wheelhouse` exit {proc.returncode}, {wall:.0f} s wall; "
        f"sdist cells {total}, built {done} ({share}; {sum(blocked.values())} of them then blocked by a failed dependency).",
        "",
        "| target | sdist cells | built | of which blocked by a failed dependency |",
        "| --- | --- | --- | --- |",
        *(f"| {t} | {sdist[t]} | {built[t]} | {blocked[t]} |" for t in targets),
        "",
    ]
    if pinned:
        rest = total - sum(pinned.values())
        of_rest = f"{done} built ({100 * done / rest:.0f} %)" if rest else "none is left"
        kinds = " and ".join(f"{n} fail because {kind}" for kind, n in pinned.most_common())
        lines += [f"Of the failed cells, {kinds}; of the other {rest} sdist cells, {of_rest}.", ""]
    if helped:
        lines += ["Built with what factory added:", "", *(f"- `{pin}`: {'; '.join(sorted(notes))}" for pin, notes in sorted(helped.items())), ""]
    if failures:
        lines += [
            "Failed cells by cause: " + "; ".join(f"{cause} {n}" for cause, n in causes.most_common()) + ".",
            "",
            "Failed pins and their causes:",
            "",
            *failures,
            "",
        ]
    return lines


def commit() -> str:
    """The checkout's short commit (BENCHMARKS.md records one per figure), or ``unknown``."""
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def main(argv: list[str]) -> int:
    locks = [Path(a) for a in argv] or sorted(LOCKS.glob("*.requirements.txt"))
    if not (ROOT / ".venv" / "bin" / "factory").exists():
        print("reallocks: .venv/bin/factory not found (fix: run `make venv` first)", file=sys.stderr)
        return 2
    report = [
        f"## Real locks (`python bench/reallocks.py`, {date.today().isoformat()}, "
        f"{os.cpu_count()} cores, commit {commit()})",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="factory-reallocks-") as tmp:
        for lock in locks:
            report += run_lock(lock, Path(tmp))
    text = "\n".join(report)
    (ROOT / "bench" / "reallocks-last-run.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
