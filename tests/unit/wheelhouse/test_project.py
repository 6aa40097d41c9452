"""The service's own project in the wheelhouse: manifest.json's project entry and its readiness row."""

import json

import jsonschema
import pytest

from factory.bases.bootstrap import unknown_packages
from factory.core import resources
from factory.wheelhouse.manifest import Manifest, ProjectEntry
from factory.wheelhouse.readiness import Failure, Status, readiness_of

SHA = "a" * 64
ENTRY = ProjectEntry("svc", "1.0.0", "svc-1.0.0-py3-none-any.whl", SHA, "py3-none-any", "b" * 64, "r/builder@sha256:" + "c" * 64, "t", "d", 2.5)


class _NoPins:
    pins = ()


def test_the_project_entry_round_trips_and_meets_the_schema():
    manifest = Manifest(python="3.14.8", lock_sha256=SHA, targets={"manylinux_2_28_x86_64": ()}, project=ENTRY)
    data = manifest.to_json()
    assert data["project"]["source"] == "project" and data["project"]["tree_sha256"] == "b" * 64
    jsonschema.validate(data, json.loads(resources.path("schemas/manifest.schema.json").read_text()))
    assert Manifest.from_json(json.loads(json.dumps(data))).project == ENTRY
    assert "project" not in Manifest(python="3.14.8", lock_sha256=SHA, targets={}).to_json()


@pytest.mark.parametrize("change", [{"source": "built"}, {"build_seconds": "2"}, {"tree_sha256": None}])
def test_a_malformed_project_entry_is_refused(change):
    data = Manifest(python="3.14.8", lock_sha256=SHA, targets={}, project=ENTRY).to_json()
    data["project"] |= change
    with pytest.raises(ValueError):
        Manifest.from_json(data)


def test_the_project_has_a_row_of_its_own_built_or_failed_everywhere():
    targets = {"manylinux_2_28_x86_64": (), "manylinux_2_28_aarch64": ()}
    built = readiness_of(Manifest(python="3.14.8", lock_sha256=SHA, targets=targets, project=ENTRY), _NoPins())
    (row,) = built.rows
    assert (row.name, row.version) == ("svc", "1.0.0") and {c.status for c in row.cells.values()} == {Status.BUILT}
    assert "built from its source tree" in row.cells["manylinux_2_28_x86_64"].text()
    failed = readiness_of(Manifest(python="3.14.8", lock_sha256=SHA, targets=targets), _NoPins(), project=Failure("svc", "", "backend error: no module", ("Traceback",)))
    (row,) = failed.rows
    assert {c.status for c in row.cells.values()} == {Status.FAILED} and row.cells["manylinux_2_28_aarch64"].reason == "backend error: no module"


def test_apt_s_unknown_package_lines_are_read():
    log = "I: x\nE: Unable to locate package libnope9\nE: Package 'libmagic1' has no installation candidate\nE: other\n"
    assert unknown_packages(log) == ["libmagic1", "libnope9"]
    assert unknown_packages("E: Failed to fetch http://x\n") == []
