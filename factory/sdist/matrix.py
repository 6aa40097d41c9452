"""``factory plan`` output: the work cells as JSON, or as the matrix a CI system fans out
(GitHub Actions ``strategy.matrix`` include list, GitLab CI ``parallel:matrix``).

Only cells with work left (not cached, not failing before any build) go into a CI matrix;
the JSON lists every cell.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .outcome import PlannedCell

FORMATS = ("json", "github", "gitlab")


def to_build(cells: Sequence[PlannedCell]) -> list[PlannedCell]:
    """The cells a worker must build: not cached and not failing before a build."""
    return [c for c in cells if not c.cached and not c.reason]


def render(cells: Sequence[PlannedCell], fmt: str, lock_sha256: str, python: str) -> str:
    """``cells`` as ``fmt`` (one of ``FORMATS``; ``ValueError`` otherwise):

    - ``json``: ``{"python", "lock_sha256", "cells": [PlannedCell.to_json()…], "to_build": n}``;
    - ``github``: one JSON line ``{"include": [{"cell", "target", "arch"}…]}``, for
      ``strategy.matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}``;
    - ``gitlab``: a ``parallel:matrix`` YAML block with one ``FACTORY_CELL``/``FACTORY_ARCH``
      entry per cell (strings JSON-quoted, which YAML reads as they are).
    """
    work = to_build(cells)
    if fmt == "json":
        return json.dumps({"python": python, "lock_sha256": lock_sha256, "cells": [c.to_json() for c in cells], "to_build": len(work)}, indent=1)
    if fmt == "github":
        return json.dumps({"include": [{"cell": c.id, "target": c.target, "arch": c.arch} for c in work]}, separators=(",", ":"))
    if fmt == "gitlab":
        lines = ["parallel:", "  matrix:"]
        for c in work:
            lines += [f"    - FACTORY_CELL: {json.dumps(c.id)}", f"      FACTORY_ARCH: {json.dumps(c.arch)}"]
        if not work:
            lines = ["# nothing to build: every cell is cached or fails before building"]
        return "\n".join(lines)
    raise ValueError(f"unknown plan format {fmt!r}")
