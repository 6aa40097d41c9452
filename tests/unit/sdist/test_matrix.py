"""``factory plan`` formats: every cell as JSON; the cells left to build as a GitHub Actions
include list and a GitLab CI parallel:matrix."""

from __future__ import annotations

import json

import pytest

from factory.sdist.matrix import render, to_build
from factory.sdist.outcome import PlannedCell, cell_id

CELLS = [
    PlannedCell(cell_id("tinyc", "1.0", "manylinux_2_28_x86_64"), "tinyc", "1.0", "manylinux_2_28_x86_64", "amd64", "a" * 64, cached=True),
    PlannedCell(cell_id("tinyc", "1.0", "musllinux_1_2_aarch64"), "tinyc", "1.0", "musllinux_1_2_aarch64", "arm64", "b" * 64),
    PlannedCell(cell_id("nosdist", "2.0", "manylinux_2_28_x86_64"), "nosdist", "2.0", "manylinux_2_28_x86_64", "amd64", reason="no sdist"),
    PlannedCell(cell_id("new", "3.0", "manylinux_2_28_aarch64"), "new", "3.0", "manylinux_2_28_aarch64", "arm64"),
]


def test_json_lists_every_cell_and_counts_the_work():
    data = json.loads(render(CELLS, "json", "f" * 64, "3.14.8"))
    assert [c["id"] for c in data["cells"]] == [c.id for c in CELLS] and data["to_build"] == 2
    assert data["cells"][0] == {
        "id": "tinyc-1.0-manylinux_2_28_x86_64", "name": "tinyc", "version": "1.0", "target": "manylinux_2_28_x86_64",
        "arch": "amd64", "key": "a" * 64, "cached": True, "reason": "",
    }  # fmt: skip
    assert data["cells"][3]["key"] is None


def test_github_and_gitlab_matrices_hold_only_the_cells_to_build():
    assert [c.id for c in to_build(CELLS)] == ["tinyc-1.0-musllinux_1_2_aarch64", "new-3.0-manylinux_2_28_aarch64"]
    github = render(CELLS, "github", "f" * 64, "3.14.8")
    assert "\n" not in github  # one line, for $GITHUB_OUTPUT
    assert json.loads(github) == {"include": [
        {"cell": "tinyc-1.0-musllinux_1_2_aarch64", "target": "musllinux_1_2_aarch64", "arch": "arm64"},
        {"cell": "new-3.0-manylinux_2_28_aarch64", "target": "manylinux_2_28_aarch64", "arch": "arm64"},
    ]}  # fmt: skip
    gitlab = render(CELLS, "gitlab", "f" * 64, "3.14.8")
    assert gitlab.splitlines() == [
        "parallel:",
        "  matrix:",
        '    - FACTORY_CELL: "tinyc-1.0-musllinux_1_2_aarch64"',
        '      FACTORY_ARCH: "arm64"',
        '    - FACTORY_CELL: "new-3.0-manylinux_2_28_aarch64"',
        '      FACTORY_ARCH: "arm64"',
    ]
    assert render(CELLS[:1], "gitlab", "f" * 64, "3.14.8").startswith("# nothing to build")
    with pytest.raises(ValueError, match="unknown plan format"):
        render(CELLS, "jenkins", "f" * 64, "3.14.8")
