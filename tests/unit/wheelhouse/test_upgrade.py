"""``factory upgrade`` against a loopback index of crafted releases, re-resolved by the real
pinned uv (the venv's, ``constraints/host.txt``; the same version as ``resources/constraints/uv.txt``)."""

import json
import sys
from pathlib import Path

import pytest
from clirun import run_factory
from indexserver import FixtureIndex, free_port, sha256
from wheelfiles import PY, TARGETS, release

from factory.core.cache import FileCache
from factory.core.errors import ResolutionError
from factory.index.client import Index
from factory.index.releases import oldest_ready
from factory.locks.lockfile import read_lock
from factory.tools.uv import Compiler, pinned_version, uv_platform
from factory.wheelhouse.stage import select
from factory.wheelhouse.upgrade import plan_upgrade, write_upgrade

UV = Path(sys.executable).parent / "uv"
OLD = "cp312"  # the Python the locks below were made for


def merge(*releases):
    out = {}
    for r in releases:
        out.update(r)
    return out


def projects():
    """slowext: first ready two releases later (1.2), and a newer ready 1.3; 1.2 needs
    typx>=2 (held at 1.0 in the lock: relaxed). pair/paircore: pinned exactly to each other,
    paircore ready only from 1.1. stuck: no release has a cp314 wheel. plain: pure Python."""
    return {
        "slowext": merge(
            release("slowext", "1.0", OLD),
            release("slowext", "1.1", OLD),
            release("slowext", "1.2", requires=("typx>=2",)),
            release("slowext", "1.3", requires=("typx>=2",)),
        ),
        "typx": merge(release("typx", "1.0", "py3"), release("typx", "2.0", "py3"), release("typx", "2.1", "py3")),
        "pair": merge(
            release("pair", "1.0", "py3", requires=("paircore==1.0",)),
            release("pair", "1.1", "py3", requires=("paircore==1.1",)),
            release("pair", "1.2", "py3", requires=("paircore==1.2",)),
        ),
        "paircore": merge(release("paircore", "1.0", OLD), release("paircore", "1.1"), release("paircore", "1.2")),
        "stuck": merge(release("stuck", "1.0", OLD, requires=()), release("stuck", "1.1", OLD)),
        "plain": release("plain", "1.0", "py3"),
    }


def lock_text(projs, pins):
    lines = []
    for name, version in pins.items():
        files = {f: b for f, b in projs[name].items() if f"-{version}-" in f}
        lines.append(f"{name}=={version} " + " ".join(f"--hash=sha256:{sha256(b)}" for b in files.values()))
    return "\n".join(lines) + "\n"


@pytest.fixture
def served(tmp_path):
    projs = projects()
    with FixtureIndex(projs) as idx:
        yield projs, idx, Index(idx.url, FileCache(tmp_path / "cache")), Compiler(UV, idx.url, tmp_path / "uv-cache")


def test_the_venv_uv_is_the_pinned_one():
    assert UV.is_file() and pinned_version() == "0.13.9"


def test_the_oldest_ready_release_is_chosen_over_a_newer_one(served):
    _projs, _idx, index, _uv = served
    found = oldest_ready("1.0", index.files("slowext"), TARGETS, PY)
    assert str(found.found.version) == "1.2" and str(found.newest) == "1.3" and found.checked == 3
    # a release whose requires-python refuses 3.14 is not ready, however many wheels it has
    assert oldest_ready("1.0", index.files("stuck"), TARGETS, PY).found is None


def test_requires_python_of_the_index_page_is_read(tmp_path):
    projs = {"slowext": merge(release("slowext", "1.0", OLD), release("slowext", "1.2"), release("slowext", "1.3"))}
    with FixtureIndex(projs) as idx:
        for f in projs["slowext"]:
            if "-1.2-" in f:
                idx.requires_python[f] = "<3.14"
        found = oldest_ready("1.0", Index(idx.url, FileCache(tmp_path / "c")).files("slowext"), TARGETS, PY)
    assert str(found.found.version) == "1.3"


def test_upgrade_moves_the_oldest_ready_release_an_exact_pair_and_relaxes_a_held_pin(tmp_path, served):
    projs, _idx, index, uv = served
    lock_path = tmp_path / "req.lock"
    lock_path.write_text(lock_text(projs, {"slowext": "1.0", "typx": "1.0", "pair": "1.0", "paircore": "1.0", "stuck": "1.0", "plain": "1.0"}))
    before = lock_path.read_bytes()
    plan = plan_upgrade(read_lock(lock_path), TARGETS, PY, "cp314", index, uv, uv_platform)
    changes = {c.name: c for c in plan.changes}
    assert {n: (c.old, c.new) for n, c in changes.items()} == {
        "slowext": ("1.0", "1.2"), "typx": ("1.0", "2.0"), "pair": ("1.0", "1.1"), "paircore": ("1.0", "1.1"),
    }  # fmt: skip
    assert "oldest later release with a wheel for every target" in changes["slowext"].why
    assert changes["typx"].major and not changes["slowext"].major
    assert "typx" in changes["typx"].why and "slowext" in changes["typx"].why and changes["typx"].forced_by == "slowext"
    assert "typx" in changes["slowext"].forced
    assert "paircore==1.0" in changes["pair"].why and changes["pair"].forced_by == "paircore"
    (stuck,) = plan.blocked
    assert (stuck.name, stuck.version, stuck.newest, stuck.checked) == ("stuck", "1.0", "1.1", 1)
    assert "no cp314 wheel" in stuck.why
    assert plan.before.cells == plan.after.cells == 24
    assert plan.after.ready == 20 and plan.before.ready < plan.after.ready  # stuck's four cells stay missing
    out = tmp_path / "upgrade"
    proposed = write_upgrade(plan, out)
    assert lock_path.read_bytes() == before  # nothing replaces the user's lock without --write
    doc = json.loads((out / "upgrade.json").read_text())
    assert doc["after"] == {"ready": 20, "cells": 24, "locked_out": 0} and doc["blocked"][0]["name"] == "stuck"
    assert "| slowext | 1.0 → 1.2 |" in (out / "upgrade.md").read_text()
    new = read_lock(proposed)
    assert {p.name: p.version for p in new.pins} == {"slowext": "1.2", "typx": "2.0", "pair": "1.1", "paircore": "1.1", "stuck": "1.0", "plain": "1.0"}
    sel = select(new, TARGETS, PY, index)
    assert {(p.name, t.name) for p, t in sel.missing} == {("stuck", t.name) for t in TARGETS}


def test_a_lock_whose_hashes_leave_out_the_cp314_wheels_is_relocked_without_version_changes(tmp_path):
    """A lock made for 3.12 allows paircore 1.1's cp312 wheels only; the index has its cp314
    ones too: the re-lock keeps the version and takes them (no upgrade needed)."""
    cp314 = release("paircore", "1.1")
    projs = {"paircore": merge(release("paircore", "1.1", OLD), cp314), "plain": release("plain", "1.0", "py3")}
    lock_path = tmp_path / "req.lock"
    with FixtureIndex(projs) as idx:
        index = Index(idx.url, FileCache(tmp_path / "cache"))
        lock_path.write_text(lock_text({"paircore": release("paircore", "1.1", OLD), "plain": projs["plain"]}, {"paircore": "1.1", "plain": "1.0"}))
        plan = plan_upgrade(read_lock(lock_path), TARGETS, PY, "cp314", index, Compiler(UV, idx.url, tmp_path / "uv-cache"), uv_platform)
    assert plan.changes == () and plan.blocked == ()
    assert plan.before.locked_out == 4 and plan.before.ready == 4 and plan.after.ready == plan.after.cells == 8
    ((name, version, files),) = plan.relocked
    assert (name, version) == ("paircore", "1.1") and set(files) == set(cp314)


def test_a_lock_whose_pins_conflict_already_is_refused(tmp_path, served):
    projs, _idx, index, uv = served
    lock_path = tmp_path / "req.lock"
    lock_path.write_text(lock_text(projs, {"pair": "1.1", "paircore": "1.2"}))
    with pytest.raises(ResolutionError, match="the lock's pins conflict already"):
        plan_upgrade(read_lock(lock_path), TARGETS, PY, "cp314", index, uv, uv_platform)


def project(tmp_path, index_url):
    (tmp_path / "pyproject.toml").write_text(f'[tool.factory]\ncache-dir = "{tmp_path / "cache"}"\nindex-url = "{index_url}"\n')


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, served):
    projs, idx, _index, _uv = served
    (tmp_path / "req.lock").write_text(lock_text(projs, {"pair": "1.1", "paircore": "1.2"}))
    before = (tmp_path / "req.lock").read_bytes()
    project(tmp_path, idx.url)
    conflict = run_factory(tmp_path, "upgrade", "--lock", "req.lock", "--out", "up")
    project(tmp_path, f"http://127.0.0.1:{free_port()}/simple/")
    unreachable = run_factory(tmp_path, "upgrade", "--lock", "req.lock", "--out", "up")
    for proc, what in ((conflict, "the lock's pins conflict already"), (unreachable, "cannot be reached")):
        assert proc.returncode != 0 and what in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "up").exists() and (tmp_path / "req.lock").read_bytes() == before


def test_the_command_writes_the_plan_and_with_write_the_lock(tmp_path, served):
    projs, idx, _index, _uv = served
    (tmp_path / "req.lock").write_text(lock_text(projs, {"pair": "1.0", "paircore": "1.0", "plain": "1.0"}))
    project(tmp_path, idx.url)
    proc = run_factory(tmp_path, "upgrade", "--lock", "req.lock", "--out", "up", "--write", check=True)
    assert "paircore" in proc.stderr and "1 pins change" not in proc.stderr and (tmp_path / "up" / "upgrade.md").is_file()
    assert (tmp_path / "req.lock").read_text() == (tmp_path / "up" / "req.lock").read_text()
    assert {p.name: p.version for p in read_lock(tmp_path / "req.lock").pins} == {"pair": "1.1", "paircore": "1.1", "plain": "1.0"}
    valid = run_factory(tmp_path, "validate", "--lock", "req.lock", check=True)
    assert ": ok, requirements lock, 3 pins" in valid.stderr
