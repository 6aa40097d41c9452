"""The wheelhouse stage against a real loopback index serving small wheels."""

import json
import subprocess
import sys

import pytest
from indexserver import FixtureIndex, sha256
from wheelfiles import PY, TARGETS, VERSIONS, projects

from factory.core.cache import FileCache
from factory.core.errors import HashMismatchError, MissingWheelsError
from factory.index.client import Index
from factory.index.selection import unlocked_wheel
from factory.locks.lockfile import read_lock
from factory.wheelhouse.manifest import Manifest
from factory.wheelhouse.readiness import Readiness
from factory.wheelhouse.stage import WheelhouseRequest
from factory.wheelhouse.stage import build_wheelhouse as _build_wheelhouse


def build_wheelhouse(lock, targets, python, index, out, **options):
    return _build_wheelhouse(WheelhouseRequest(lock, targets, python, index, out, **options))


def write_lock(path, projs, extra=""):
    lines = []
    for name, files in projs.items():
        hashes = " ".join(f"--hash=sha256:{sha256(b)}" for b in files.values())
        lines.append(f"{name}=={VERSIONS[name]} {hashes}")
    path.write_text("\n".join(lines) + "\n" + extra)
    return read_lock(path)


@pytest.fixture
def served(tmp_path):
    projs = projects(["orjson", "markupsafe", "typing-extensions"])
    with FixtureIndex(projs) as idx:
        yield idx, Index(idx.url, FileCache(tmp_path / "cache")), write_lock(tmp_path / "req.lock", projs)


def test_four_targets_best_wheels_manifest_and_simple_index(tmp_path, served):
    idx, index, lock = served
    out = tmp_path / "wh"
    result = build_wheelhouse(lock, TARGETS, PY, index, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert Manifest.load(out / "manifest.json") == result.manifest and manifest == result.manifest.to_json()
    assert set(manifest) == {"python", "abi", "lock_sha256", "targets", "not_needed", "missing"}
    assert manifest["abi"] == "cp314" and manifest["not_needed"] == [] and manifest["missing"] == []
    assert manifest["python"] == PY and manifest["lock_sha256"] == lock.sha256
    by = {t: {e["name"]: e for e in entries} for t, entries in manifest["targets"].items()}
    assert set(by) == {t.name for t in TARGETS}
    for entries in manifest["targets"].values():
        for e in entries:
            assert set(e) == {"name", "version", "filename", "sha256", "tag", "source"}
            assert e["source"] == "index"
    assert by["manylinux_2_28_x86_64"]["orjson"]["filename"].startswith("orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64")
    assert by["manylinux_2_28_aarch64"]["orjson"]["tag"] == "cp314-cp314-manylinux_2_17_aarch64"
    assert by["manylinux_2_28_x86_64"]["markupsafe"]["filename"] == "markupsafe-3.0.4-cp314-cp314-manylinux_2_28_x86_64.whl"
    assert by["musllinux_1_2_x86_64"]["markupsafe"]["tag"] == "cp314-cp314-musllinux_1_2_x86_64"
    assert by["musllinux_1_2_aarch64"]["typing-extensions"]["version"] == "4.16.0"
    for t, entries in by.items():
        for e in entries.values():
            f = out / t / e["filename"]
            assert f.is_file() and sha256(f.read_bytes()) == e["sha256"]
    # the py3-none-any wheel serves four targets and is fetched once
    assert idx.requests["/files/typing_extensions-4.16.0-py3-none-any.whl"] == 1
    assert idx.requests["/files/orjson-3.13.0-cp314-cp314-manylinux_2_34_x86_64.whl"] == 0
    # PEP 503 index over the wheelhouse
    page = (out / "simple" / "orjson" / "index.html").read_text()
    assert "../../manylinux_2_28_x86_64/orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64" in page
    assert "#sha256=" in page
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_pip_installs_from_the_simple_index(tmp_path, served):
    _, index, lock = served
    out = tmp_path / "wh"
    build_wheelhouse(lock, TARGETS, PY, index, out)
    dest = tmp_path / "dl"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--isolated", "--only-binary", ":all:",
         "--python-version", "3.14", "--platform", "manylinux_2_17_x86_64", "--index-url", (out / "simple").as_uri(),
         "--dest", str(dest), "orjson==3.13.0"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in dest.iterdir()] == ["orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]


def test_missing_wheels_are_all_listed_and_nothing_is_written(tmp_path):
    projs = projects(["orjson", "nomusl"])
    with FixtureIndex(projs) as idx:
        lock = write_lock(tmp_path / "req.lock", projs)
        out = tmp_path / "wh"
        with pytest.raises(MissingWheelsError) as e:
            build_wheelhouse(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "c")), out)
    assert "nomusl==1.0 × musllinux_1_2_x86_64" in e.value.problem
    assert "nomusl==1.0 × musllinux_1_2_aarch64" in e.value.problem
    assert "2 pin × target" in e.value.problem
    assert "--allow-missing" in e.value.fix
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".wh")]


def test_allow_missing_reports_them(tmp_path):
    projs = projects(["orjson", "nomusl"])
    with FixtureIndex(projs) as idx:
        lock = write_lock(tmp_path / "req.lock", projs)
        result = build_wheelhouse(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "c")), tmp_path / "wh", allow_missing=True)
    assert {(p.name, t.name) for p, t in result.missing} == {("nomusl", "musllinux_1_2_x86_64"), ("nomusl", "musllinux_1_2_aarch64")}
    assert json.loads((tmp_path / "wh" / "manifest.json").read_text())["missing"][0]["name"] == "nomusl"
    assert {m.target for m in result.manifest.missing} == {"musllinux_1_2_x86_64", "musllinux_1_2_aarch64"}
    cells = {r.name: r.cells for r in Readiness.load(tmp_path / "wh" / "readiness.json").rows}
    assert cells["nomusl"]["musllinux_1_2_x86_64"].status == "missing" and cells["nomusl"]["manylinux_2_28_x86_64"].status == "index"


def test_a_failed_run_keeps_the_previous_wheelhouse(tmp_path, served):
    idx, index, lock = served
    out = tmp_path / "wh"
    build_wheelhouse(lock, TARGETS, PY, index, out)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    idx.served["markupsafe-3.0.4-cp314-cp314-musllinux_1_2_aarch64.whl"] = b"tampered"
    with pytest.raises(HashMismatchError):  # three targets: not the current wheelhouse, so the index is read
        build_wheelhouse(lock, TARGETS[1:], PY, Index(idx.url, FileCache(tmp_path / "cache2")), out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_index_hash_not_in_lock(tmp_path):
    projs = projects(["typing-extensions"])
    with FixtureIndex(projs) as idx:
        lock = write_lock(tmp_path / "req.lock", projs)
        for f in projs["typing-extensions"]:
            idx.listed_hash[f] = "0" * 64
        with pytest.raises(HashMismatchError, match="typing_extensions-4.16.0-py3-none-any.whl: the index lists sha256 0{64}, the lock allows"):
            build_wheelhouse(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "c")), tmp_path / "wh")
    assert not (tmp_path / "wh").exists()


def test_a_wheel_uploaded_after_the_lock_is_passed_over_as_pip_does(tmp_path):
    """A lock made before a release's musllinux aarch64 wheel was uploaded: that cell goes to
    the sdist lane (missing here, no builder) instead of failing the run; the others keep
    their locked wheels, and ``unlocked_wheel`` names the file the lock predates."""
    projs = projects(["markupsafe"])
    late = "markupsafe-3.0.4-cp314-cp314-musllinux_1_2_aarch64.whl"
    locked = {f: b for f, b in projs["markupsafe"].items() if f != late}
    with FixtureIndex(projs) as idx:
        lock = write_lock(tmp_path / "req.lock", {"markupsafe": locked})
        result = build_wheelhouse(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "c")), tmp_path / "wh", allow_missing=True)
        files = Index(idx.url, FileCache(tmp_path / "c2")).files("markupsafe", "3.0.4")
    assert [(p.name, t.name) for p, t in result.missing] == [("markupsafe", "musllinux_1_2_aarch64")]
    assert {e.filename for t in result.manifest.targets for e in result.manifest.entries(t)} == set(locked) - {
        "markupsafe-3.0.4-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "markupsafe-3.0.4-cp314-cp314-musllinux_1_1_x86_64.whl",
    }  # fmt: skip
    (pin,) = lock.pins
    assert unlocked_wheel(pin, TARGETS[3], PY, files) == late
    assert unlocked_wheel(pin, TARGETS[0], PY, files) is None


def test_a_pin_no_target_needs_is_reported_not_refused(tmp_path):
    """A universal lock's win32-only pin: not needed anywhere, so its page is never read."""
    projs = projects(["typing-extensions"])
    with FixtureIndex(projs) as idx:
        lock = write_lock(tmp_path / "req.lock", projs, extra=f'tzdata==2025.2 ; sys_platform == "win32" --hash=sha256:{"a" * 64}\n')
        result = build_wheelhouse(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "c")), tmp_path / "wh")
    assert not [p for p in idx.requests if "tzdata" in p]
    (excluded,) = result.manifest.not_needed_anywhere()
    assert (excluded.name, excluded.marker, set(excluded.targets)) == ("tzdata", 'sys_platform == "win32"', {t.name for t in TARGETS})
    assert all(e.name != "tzdata" for t in result.manifest.targets for e in result.manifest.entries(t))
    (row,) = Readiness.load(tmp_path / "wh" / "readiness.json").needed_nowhere()
    assert row.name == "tzdata"


def test_a_current_wheelhouse_is_reused_without_the_index(tmp_path, served):
    _idx, index, lock = served
    out = tmp_path / "wh"
    first = build_wheelhouse(lock, TARGETS, PY, index, out)
    dead = Index("http://127.0.0.1:9/simple/", FileCache(tmp_path / "cache"))
    again = build_wheelhouse(lock, TARGETS, PY, dead, out)
    assert again.reused and again.manifest == first.manifest
    # a damaged file makes it stale: the index is needed again
    victim = out / "musllinux_1_2_x86_64" / "markupsafe-3.0.4-cp314-cp314-musllinux_1_2_x86_64.whl"
    victim.unlink()
    victim.write_bytes(b"damaged")
    rebuilt = build_wheelhouse(lock, TARGETS, PY, index, out)
    assert not rebuilt.reused
    assert sha256(victim.read_bytes()) == next(
        e.sha256 for e in rebuilt.manifest.entries("musllinux_1_2_x86_64") if e.name == "markupsafe")


def test_a_current_wheelhouse_of_stamped_links_is_reused_unhashed_and_an_edit_in_place_is_seen(tmp_path, served, monkeypatch):
    from factory.wheelhouse import stage

    _idx, index, lock = served
    out = tmp_path / "wh"
    first = build_wheelhouse(lock, TARGETS, PY, index, out)
    hashed = []
    real = stage.sha256_file
    monkeypatch.setattr(stage, "sha256_file", lambda p: hashed.append(p) or real(p))
    dead = Index("http://127.0.0.1:9/simple/", FileCache(tmp_path / "cache"))
    assert build_wheelhouse(lock, TARGETS, PY, dead, out).reused and hashed == []
    victim = out / TARGETS[0].name / first.manifest.entries(TARGETS[0].name)[0].filename
    with open(victim, "r+b") as f:  # the wheelhouse's file is the cache entry's hard link
        f.write(b"X")
    assert not build_wheelhouse(lock, TARGETS, PY, Index(index.url, FileCache(tmp_path / "cache")), out).reused
    assert hashed


def test_a_new_output_from_a_warm_cache_needs_no_index(tmp_path, served):
    """The resolution (lock, python, abi, targets -> files) is recorded in the cache: a new
    output assembles with the index on a dead port, and gives the same manifest."""
    from indexserver import free_port

    _idx, index, lock = served
    first = build_wheelhouse(lock, TARGETS, PY, index, tmp_path / "wh1")
    dead = Index(f"http://127.0.0.1:{free_port()}/simple/", FileCache(tmp_path / "cache"))
    second = build_wheelhouse(lock, TARGETS, PY, dead, tmp_path / "wh2")
    assert not second.reused and second.manifest == first.manifest
    assert dead.pages_read == 0
    assert (tmp_path / "wh2" / "install" / f"{TARGETS[0].name}.lock").read_text() == (tmp_path / "wh1" / "install" / f"{TARGETS[0].name}.lock").read_text()


def test_a_warm_new_output_re_hashes_nothing_but_catches_a_flipped_byte(tmp_path, served, monkeypatch):
    """The second new output trusts the stamps (no cached wheel re-hashed, no wheel opened);
    bytes flipped in place in one cached wheel are caught on the next: that entry is
    evicted, and with the index down the run fails instead of shipping it."""
    from indexserver import free_port

    from factory.core.errors import IndexUnreachableError

    _idx, index, lock = served
    first = build_wheelhouse(lock, TARGETS, PY, index, tmp_path / "wh1")
    warm = FileCache(tmp_path / "cache")
    dead = Index(f"http://127.0.0.1:{free_port()}/simple/", warm)
    from factory.wheelhouse import stage

    opened = []
    monkeypatch.setattr(stage, "check_wheel", lambda path, target: opened.append(path))
    assert build_wheelhouse(lock, TARGETS, PY, dead, tmp_path / "wh2").manifest == first.manifest
    assert warm.hashed == 0 and opened == []
    entry = first.manifest.entries(TARGETS[1].name)[0]
    (cached,) = (tmp_path / "cache" / "files" / "sha256" / entry.sha256[:2] / entry.sha256).iterdir()
    size = cached.stat().st_size
    with open(cached, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    checked = FileCache(tmp_path / "cache")
    with pytest.raises(IndexUnreachableError):
        build_wheelhouse(lock, TARGETS, PY, Index(dead.url, checked), tmp_path / "wh3")
    assert checked.evicted == [entry.filename] and not (tmp_path / "wh3").exists()


def test_a_recorded_resolution_whose_file_left_the_cache_reads_the_index_again(tmp_path, served):
    import shutil

    from indexserver import free_port

    from factory.core.errors import IndexUnreachableError

    idx, index, lock = served
    first = build_wheelhouse(lock, TARGETS, PY, index, tmp_path / "wh1")
    entry = first.manifest.entries(TARGETS[0].name)[0]
    shutil.rmtree(tmp_path / "cache" / "files" / "sha256" / entry.sha256[:2] / entry.sha256)
    dead = Index(f"http://127.0.0.1:{free_port()}/simple/", FileCache(tmp_path / "cache"))
    with pytest.raises(IndexUnreachableError):
        build_wheelhouse(lock, TARGETS, PY, dead, tmp_path / "wh2")
    assert not (tmp_path / "wh2").exists()
    again = build_wheelhouse(lock, TARGETS, PY, Index(idx.url, FileCache(tmp_path / "cache")), tmp_path / "wh2")
    assert again.manifest == first.manifest


def test_the_lanes_and_target_sets_resolve_separately(tmp_path, served):
    from factory.wheelhouse.stage import resolution_key

    _idx, index, lock = served
    base = WheelhouseRequest(lock, TARGETS, PY, index, tmp_path / "wh")
    keys = {
        resolution_key(base),
        resolution_key(WheelhouseRequest(lock, TARGETS, PY, index, tmp_path / "wh", abi="cp314t")),
        resolution_key(WheelhouseRequest(lock, TARGETS[:1], PY, index, tmp_path / "wh")),
        resolution_key(WheelhouseRequest(lock, TARGETS, "3.14.9", index, tmp_path / "wh")),
    }
    assert len(keys) == 4
    assert resolution_key(WheelhouseRequest(lock, tuple(reversed(TARGETS)), PY, index, tmp_path / "other")) == resolution_key(base)
