"""The typed wheelhouse artifacts (manifest, install locks, readiness matrix): their JSON
Schemas against real wheelhouses from the loopback index, round trips, per-target markers,
and the summary the report stage prints."""

import io
import json
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from indexserver import FixtureIndex, make_wheel, sha256
from rich.console import Console
from wheelfiles import PY, TARGETS, VERSIONS, projects

from factory.core import resources
from factory.core.cache import FileCache
from factory.core.errors import MissingWheelsError
from factory.index.client import Index
from factory.locks.lockfile import read_lock
from factory.report import print_summary
from factory.wheelhouse.manifest import InstallEntry, InstallLock, Manifest, ManifestEntry, MissingCell, NotNeeded
from factory.wheelhouse.readiness import Cell, Readiness, Row, Status, readiness_of
from factory.wheelhouse.stage import WheelhouseRequest, build_wheelhouse

X86, ARM = "manylinux_2_28_x86_64", "manylinux_2_28_aarch64"
MUSL_X86, MUSL_ARM = "musllinux_1_2_x86_64", "musllinux_1_2_aarch64"
AARCH64_ONLY = 'platform_machine == "aarch64"'
WIN32_ONLY = 'sys_platform == "win32"'


def validator(name):
    schema = json.loads(resources.path(f"schemas/{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def lock_line(name, files, marker=None):
    hashes = " ".join(f"--hash=sha256:{sha256(b)}" for b in files.values())
    return f"{name}=={VERSIONS[name]}" + (f" ; {marker}" if marker else "") + f" {hashes}\n"


@pytest.fixture
def marked(tmp_path):
    """A wheelhouse of a universal-style lock: orjson everywhere, markupsafe only on aarch64,
    tzdata only on win32 (so on no target), typing-extensions everywhere."""
    projs = projects(["orjson", "markupsafe", "typing-extensions"])
    text = (
        lock_line("orjson", projs["orjson"])
        + lock_line("markupsafe", projs["markupsafe"], AARCH64_ONLY)
        + f"tzdata==2025.2 ; {WIN32_ONLY} --hash=sha256:{'a' * 64}\n"
        + lock_line("typing-extensions", projs["typing-extensions"])
    )
    (tmp_path / "req.lock").write_text(text)
    lock = read_lock(tmp_path / "req.lock")
    out = tmp_path / "wh"
    with FixtureIndex(projs) as idx:
        result = build_wheelhouse(WheelhouseRequest(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "c")), out))
    return lock, out, result, projs


# -- schemas ----------------------------------------------------------------------------


def test_the_wheelhouse_files_and_their_typed_forms_match_the_schemas(marked):
    _, out, result, _ = marked
    manifest_schema, readiness_schema = validator("manifest"), validator("readiness")
    manifest_schema.validate(json.loads((out / "manifest.json").read_text()))
    manifest_schema.validate(result.manifest.to_json())
    readiness_schema.validate(json.loads((out / "readiness.json").read_text()))
    readiness_schema.validate(Readiness.load(out / "readiness.json").to_json())
    install_schema = validator("install-lock")
    for t in TARGETS:
        install = InstallLock.load(out / "install" / f"{t.name}.lock")
        assert install.text() == (out / "install" / f"{t.name}.lock").read_text()
        install_schema.validate(install.to_json())
        assert install.to_json()["entries"], t.name


@pytest.mark.parametrize(
    "broken",
    [
        {"entries": [{"name": "six", "version": "1.0", "extras": []}]},  # no sha256
        {"entries": [{"name": "Six_X", "version": "1.0", "sha256": "a" * 64, "extras": []}]},  # not a canonical name
        {"entries": [{"name": "six", "version": "1.0", "sha256": "a" * 63, "extras": []}]},
    ],
)
def test_the_install_lock_schema_rejects_a_broken_document(broken):
    with pytest.raises(jsonschema.ValidationError):
        validator("install-lock").validate(broken)


def built_entry(**changes):
    entry = ManifestEntry(
        name="tinyc", version="1.0", filename="tinyc-1.0-cp314-cp314-musllinux_1_2_x86_64.whl", sha256="b" * 64,
        tag="cp314-cp314-musllinux_1_2_x86_64", source="built", sdist="tinyc-1.0.tar.gz", sdist_sha256="c" * 64,
        builder="127.0.0.1:5555/factory/builder@sha256:" + "d" * 64, toolchain_sha256="e" * 64,
        build_constraints_sha256="f" * 64, build_seconds=12.5, cross_built=True,
    )
    return replace(entry, **changes)


def synthetic_manifest():
    index = ManifestEntry("six", "1.17.0", "six-1.17.0-py3-none-any.whl", "a" * 64, "py3-none-any")
    return Manifest(
        python=PY, abi="cp314", lock_sha256="0" * 64,
        targets={X86: (index,), MUSL_X86: (built_entry(), index)},
        not_needed=(NotNeeded("tzdata", "2025.2", WIN32_ONLY, (X86, MUSL_X86)),),
        missing=(MissingCell("nomusl", "1.0", MUSL_X86),),
    )


def test_built_entries_and_every_cell_status_match_the_schemas():
    validator("manifest").validate(synthetic_manifest().to_json())
    validator("readiness").validate(big_matrix(8).to_json())


def test_what_factory_added_to_a_build_is_recorded_and_shown(tmp_path):
    """A Rust cell built again with PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1: the manifest
    entry carries it (schema-valid, round-trips) and the readiness cell's note says it."""
    forward = built_entry(environment=("PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1",))
    index = ManifestEntry("six", "1.17.0", "six-1.17.0-py3-none-any.whl", "a" * 64, "py3-none-any")
    manifest = Manifest(python=PY, abi="cp314", lock_sha256="0" * 64, targets={MUSL_X86: (forward, index)})
    doc = manifest.to_json()
    validator("manifest").validate(doc)
    built = next(e for e in doc["targets"][MUSL_X86] if e["name"] == "tinyc")
    assert built["environment"] == ["PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1"]
    assert "environment" not in built_entry().to_json()
    assert ManifestEntry.from_json(built) == forward
    (tmp_path / "req.lock").write_text(f"tinyc==1.0 --hash=sha256:{'c' * 64}\nsix==1.17.0 --hash=sha256:{'a' * 64}\n")
    matrix = readiness_of(manifest, read_lock(tmp_path / "req.lock"))
    assert "built with PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1" in (matrix.rows[0].cells[MUSL_X86].note or "")
    assert matrix.rows[1].cells[MUSL_X86].note is None


@pytest.mark.parametrize(
    "breakage",
    [
        lambda m: m["targets"][X86][0].pop("sha256"),
        lambda m: m["targets"][X86][0].update(sha256="not-hex"),
        lambda m: m["targets"][MUSL_X86][1].pop("sdist"),  # a built entry must say what it was built from
        lambda m: m["targets"][X86][0].update(sdist="six-1.17.0.tar.gz"),  # an index entry has no build fields
        lambda m: m["targets"][X86][0].update(source="pypi"),
        lambda m: m.pop("abi"),
        lambda m: m["not_needed"][0].pop("marker"),
    ],
    ids=["no-sha256", "bad-sha256", "built-without-sdist", "index-with-sdist", "unknown-source", "no-abi", "not-needed-without-marker"],
)
def test_the_manifest_schema_rejects_a_broken_document(breakage):
    doc = synthetic_manifest().to_json()
    validator("manifest").validate(doc)
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        validator("manifest").validate(doc)


def test_the_readiness_schema_rejects_unknown_statuses_and_missing_fields():
    doc = big_matrix(8).to_json()
    doc["rows"][0]["cells"][X86] = {"status": "n/a", "note": "marker excludes this target"}  # an older factory's cell
    with pytest.raises(jsonschema.ValidationError):
        validator("readiness").validate(doc)
    with pytest.raises(ValueError, match="n/a"):
        Readiness.from_json(doc)
    doc = big_matrix(8).to_json()
    not_needed = next(r for r in doc["rows"] if r["cells"][X86]["status"] == "not needed")
    del not_needed["cells"][X86]["marker"]
    with pytest.raises(jsonschema.ValidationError):
        validator("readiness").validate(doc)


def test_from_json_refuses_what_the_schema_refuses():
    doc = synthetic_manifest().to_json()
    del doc["targets"][X86][0]["sha256"]
    with pytest.raises(ValueError, match="sha256"):
        Manifest.from_json(doc)
    old = synthetic_manifest().to_json()
    del old["abi"]  # a manifest written before the abi field: not current, rebuilt
    with pytest.raises(ValueError, match="abi"):
        Manifest.from_json(old)


# -- round trips -------------------------------------------------------------------------


def test_manifest_readiness_and_install_lock_round_trip_through_their_files(tmp_path):
    manifest = synthetic_manifest()
    manifest.dump(tmp_path / "manifest.json")
    assert Manifest.load(tmp_path / "manifest.json") == manifest
    assert Manifest.from_json(json.loads(json.dumps(manifest.to_json()))) == manifest
    assert manifest.entries(MUSL_X86)[0].name == "six"  # sorted by name
    matrix = big_matrix(12)
    matrix.dump(tmp_path / "readiness.json")
    assert Readiness.load(tmp_path / "readiness.json") == matrix
    lock = InstallLock((InstallEntry("zope-interface", "8.0", "1" * 64), InstallEntry("uvicorn", "0.38.0", "2" * 64, ("standard",))))
    lock.dump(tmp_path / "x.lock")
    assert (tmp_path / "x.lock").read_text() == (
        f"uvicorn[standard]==0.38.0 --hash=sha256:{'2' * 64}\nzope-interface==8.0 --hash=sha256:{'1' * 64}\n"
    )
    assert InstallLock.load(tmp_path / "x.lock") == lock
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    with pytest.raises(ValueError, match="line 1"):
        InstallLock.parse("uvicorn>=0.38\n")


def test_a_manifest_of_the_old_format_makes_the_wheelhouse_stale(marked, tmp_path):
    lock, out, first, projs = marked
    doc = json.loads((out / "manifest.json").read_text())
    del doc["abi"], doc["not_needed"], doc["missing"]
    (out / "manifest.json").write_text(json.dumps(doc))
    with FixtureIndex(projs) as idx:  # the same files: make_wheel's bytes depend on the clock
        again = build_wheelhouse(WheelhouseRequest(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "c2")), out))
    assert not again.reused and again.manifest == first.manifest
    assert idx.requests["/simple/orjson/"] == 1


# -- markers per target --------------------------------------------------------------------


def test_excluded_pins_are_not_needed_where_their_marker_excludes_them(marked):
    _, out, result, _ = marked
    manifest = result.manifest
    names = {t: {e.name for e in manifest.entries(t)} for t in manifest.targets}
    assert names[X86] == names[MUSL_X86] == {"orjson", "typing-extensions"}
    assert names[ARM] == names[MUSL_ARM] == {"orjson", "markupsafe", "typing-extensions"}
    assert {n.name: (n.marker, set(n.targets)) for n in manifest.not_needed} == {
        "markupsafe": (AARCH64_ONLY, {X86, MUSL_X86}),
        "tzdata": (WIN32_ONLY, {X86, ARM, MUSL_X86, MUSL_ARM}),
    }
    assert [n.name for n in manifest.not_needed_anywhere()] == ["tzdata"]
    assert sorted(p.name for p in (out / X86).iterdir()) == sorted(e.filename for e in manifest.entries(X86))
    for t in (X86, MUSL_X86):
        text = (out / "install" / f"{t}.lock").read_text()
        assert "markupsafe" not in text and "tzdata" not in text and "orjson==3.13.0 --hash=sha256:" in text
    assert "markupsafe==3.0.4 --hash=sha256:" in (out / "install" / f"{ARM}.lock").read_text()
    matrix = Readiness.load(out / "readiness.json")
    cells = {r.name: r.cells for r in matrix.rows}
    assert [r.name for r in matrix.rows] == ["orjson", "markupsafe", "tzdata", "typing-extensions"]  # lock order
    assert cells["markupsafe"][X86] == Cell(Status.NOT_NEEDED, marker=AARCH64_ONLY)
    assert cells["markupsafe"][ARM].status is Status.INDEX
    assert all(c == Cell(Status.NOT_NEEDED, marker=WIN32_ONLY) for c in cells["tzdata"].values())
    md = (out / "readiness.md").read_text()
    assert f"| markupsafe==3.0.4 | not needed (marker `{AARCH64_ONLY}`) | wheel from index (`cp314-cp314-manylinux_2_28_aarch64`) |" in md
    assert {c["name"] for c in json.loads((out / "sbom.cdx.json").read_text())["components"]} == {"orjson", "markupsafe", "typing-extensions"}


def test_a_pin_no_target_needs_is_a_note_in_the_summary(marked):
    _, out, _, _ = marked
    text = summary(out)
    assert f"note: tzdata==2025.2 is needed on no target (marker {WIN32_ONLY})" in text


def test_extras_of_the_lock_pins_survive_into_the_install_locks(tmp_path):
    projs = projects(["orjson", "typing-extensions"])
    # the real reader: extras as written in the lock (orjson[fast,cli]) come out canonical and sorted
    text = lock_line("orjson", projs["orjson"]).replace("orjson==", "orjson[fast,cli]==", 1) + lock_line("typing-extensions", projs["typing-extensions"])
    (tmp_path / "req.lock").write_text(text)
    lock = read_lock(tmp_path / "req.lock")
    assert lock.pin("orjson").extras == ("cli", "fast")
    with FixtureIndex(projs) as idx:
        result = build_wheelhouse(WheelhouseRequest(lock, TARGETS[:1], PY, Index(idx.url, FileCache(tmp_path / "c")), tmp_path / "wh"))
    orjson = result.manifest.entry("orjson", X86)
    assert orjson is not None
    lines = (tmp_path / "wh" / "install" / f"{X86}.lock").read_text().splitlines()
    assert lines[0] == f"orjson[cli,fast]==3.13.0 --hash=sha256:{orjson.sha256}"
    assert lines[1].startswith("typing-extensions==4.16.0 --hash=sha256:")
    assert InstallLock.parse("\n".join(lines)).entries[0].extras == ("cli", "fast")


# -- the summary -------------------------------------------------------------------------


def big_matrix(n):
    """``n`` pins, all index wheels everywhere but three: one built (musl), one failed, one
    aarch64-only, one needed nowhere (win32)."""
    targets = (X86, ARM, MUSL_X86, MUSL_ARM)
    index = {t: Cell(Status.INDEX, tag=f"cp314-cp314-{t}") for t in targets}
    rows = [Row(f"pkg-{i:04d}", "1.0", dict(index)) for i in range(n - 4)]
    rows.append(Row("asyncpg", "0.30.0", {**index, MUSL_X86: Cell(Status.BUILT, tag=f"cp314-cp314-{MUSL_X86}", seconds=80.0, note="cross-built, not import-tested")}))
    rows.append(Row("broken", "1.0", {**index, ARM: Cell(Status.FAILED, reason="compiler error", log_tail=("error: x",), log="/tmp/log")}))
    not_arm = Cell(Status.NOT_NEEDED, marker=AARCH64_ONLY)
    rows.append(Row("armonly", "2.0", {X86: not_arm, ARM: index[ARM], MUSL_X86: not_arm, MUSL_ARM: index[MUSL_ARM]}))
    rows.append(Row("tzdata", "2025.2", dict.fromkeys(targets, Cell(Status.NOT_NEEDED, marker=WIN32_ONLY))))
    return Readiness(python=PY, abi="cp314", lock_sha256="0" * 64, targets=targets, rows=tuple(rows))


def summary(wheelhouse: Path) -> str:
    console = Console(file=io.StringIO(), width=250, record=True)
    print_summary(wheelhouse, None, console)
    return console.export_text()


def test_the_summary_of_a_184_pin_lock_prints_counts_and_only_the_notable_rows(tmp_path):
    big_matrix(184).dump(tmp_path / "readiness.json")
    text = summary(tmp_path)
    counts = {}
    for line in text.splitlines():
        cols = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cols) == 6 and cols[0] in (X86, ARM, MUSL_X86, MUSL_ARM):
            counts[cols[0]] = tuple(map(int, cols[1:]))
    # columns: from the index, built, not needed, failed, missing
    assert counts == {X86: (182, 0, 2, 0, 0), ARM: (182, 0, 1, 1, 0), MUSL_X86: (181, 1, 2, 0, 0), MUSL_ARM: (183, 0, 1, 0, 0)}
    for notable in ("asyncpg==0.30.0", "broken==1.0", "armonly==2.0", "tzdata==2025.2"):
        assert notable in text
    assert "pkg-0" not in text  # no plain row
    assert "4 of 184 pins are not plain index wheels" in text
    assert "compiler error" in text and "cross-built, not import-tested" in text and f"not needed (marker {AARCH64_ONLY})" in text
    assert "note: tzdata==2025.2 is needed on no target" in text
    assert len(text.splitlines()) < 40


def test_the_summary_of_a_plain_wheelhouse_is_the_counts_table_alone(tmp_path):
    plain = big_matrix(10)
    plain = replace(plain, rows=tuple(r for r in plain.rows if r.plain))
    plain.dump(tmp_path / "readiness.json")
    text = summary(tmp_path)
    assert "not plain" not in text and "note:" not in text and "pkg-0000" not in text
    assert re.search(rf"{X86}\s*[│┃|]\s*6\s*[│┃|]\s*0", text)


def test_an_old_readiness_file_is_named_not_printed(tmp_path):
    (tmp_path / "readiness.json").write_text(json.dumps({"python": PY, "lock_sha256": "0" * 64, "targets": [], "rows": []}))
    assert "is not a readiness matrix of this factory" in summary(tmp_path)


# The wheelhouse side's layering (no report, sbom or engine import; domain modules import
# no infrastructure) is enforced for every module by tests/unit/test_layers.py.


def test_the_wheelhouse_sbom_lists_each_file_once_and_is_the_same_for_the_same_manifest():
    from factory.wheelhouse.sbom import wheelhouse_sbom

    manifest = synthetic_manifest()
    first, second = (json.loads(wheelhouse_sbom(manifest)) for _ in range(2))
    for doc in (first, second):
        del doc["metadata"]["timestamp"]
    assert first == second
    by_ref = {c["bom-ref"]: c for c in first["components"]}
    assert set(by_ref) == {"six-1.17.0-py3-none-any.whl", built_entry().filename}
    six = by_ref["six-1.17.0-py3-none-any.whl"]
    assert [p["value"] for p in six["properties"] if p["name"] == "factory:target"] == [X86, MUSL_X86]
    assert six["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert {p["value"] for p in by_ref[built_entry().filename]["properties"] if p["name"] == "factory:source"} == {"built"}


# -- the true reason of a missing cell ------------------------------------------------------


def test_a_cp314_wheel_the_lock_hashes_leave_out_is_named_with_the_relock(tmp_path):
    """A lock made for 3.12 (as uv writes it for ``requires-python = "==3.12.*"``): the index
    serves cffi's cp314 manylinux wheel, but its sha256 is not in the lock. The cell names
    that file and the re-lock, in readiness.json (schema-valid), readiness.md, the manifest
    and the summary; a cell whose release has no wheel at all says so instead."""
    cp314 = "cffi-2.0.0-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    files = {
        "cffi-2.0.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": b"",
        cp314: b"",
        "cffi-2.0.0.tar.gz": b"sdist of cffi 2.0.0",
    }
    files = {f: (b if f.endswith(".tar.gz") else make_wheel(f)) for f, b in files.items()}
    locked = {f: b for f, b in files.items() if f != cp314}
    lock_path = tmp_path / "req.lock"
    lock_path.write_text(f"cffi==2.0.0 {' '.join(f'--hash=sha256:{sha256(b)}' for b in locked.values())}\n")
    lock = read_lock(lock_path)
    out = tmp_path / "wh"
    with FixtureIndex({"cffi": files}) as idx:
        index = Index(idx.url, FileCache(tmp_path / "c"))
        with pytest.raises(MissingWheelsError) as refused:
            build_wheelhouse(WheelhouseRequest(lock, TARGETS[:2], PY, index, out))
        result = build_wheelhouse(WheelhouseRequest(lock, TARGETS[:2], PY, index, out, allow_missing=True))
    assert f"cffi==2.0.0 × {X86} (the lock leaves out {cp314})" in str(refused.value)
    assert f"lock again for CPython {PY}" in str(refused.value) and not out.with_name("wh.tmp").exists()
    doc = json.loads((out / "readiness.json").read_text())
    validator("readiness").validate(doc)
    validator("manifest").validate(json.loads((out / "manifest.json").read_text()))
    x86, arm = doc["rows"][0]["cells"][X86], doc["rows"][0]["cells"][ARM]
    assert (x86["status"], x86["cause"], x86["file"]) == ("missing", "locked-out", cp314)
    assert f"lock again for CPython {PY}" in x86["reason"] and "no wheel on the index" not in x86["reason"]
    assert (arm["status"], arm["cause"]) == ("missing", "no-wheel") and "file" not in arm
    assert arm["reason"].startswith(f"the index has no cp314 wheel of cffi 2.0.0 for {ARM}")
    assert {(m.target, m.cause, m.file) for m in result.manifest.missing} == {(X86, "locked-out", cp314), (ARM, "no-wheel", None)}
    assert Readiness.load(out / "readiness.json").rows[0].cells[X86].file == cp314
    assert f"the index has {cp314}, but the lock's hashes leave it out" in (out / "readiness.md").read_text()
    buf = io.StringIO()
    print_summary(out, None, Console(file=buf, width=400))
    summary = buf.getvalue()
    assert "the index has their wheels, but the lock's hashes leave them out" in summary and cp314 in summary
    assert f"Lock again for CPython {PY}" in summary
