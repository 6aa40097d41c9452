"""Crash safety: SIGKILL the factory mid-download and mid-output-write, then rerun.

After each kill the rerun must complete, its outputs must equal a clean run's, no
temporary file may remain, and every cache entry must still hash to its name.
"""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from clirun import start_factory
from indexserver import FixtureIndex, make_wheel, sha256

from factory.core.cache import sha256_file

BIG = "big-1.0-py3-none-any.whl"
SMALL = "small-2.0-py3-none-any.whl"


@pytest.fixture
def served(tmp_path):
    files = {"big": {BIG: make_wheel(BIG, extra={"big/blob.bin": os.urandom(1 << 20)})}, "small": {SMALL: make_wheel(SMALL)}}
    (tmp_path / "pyproject.toml").write_text('[tool.factory]\ncache-dir = "cache"\nregistry-local = false\n')
    (tmp_path / "req.lock").write_text(
        f"big==1.0 --hash=sha256:{sha256(files['big'][BIG])}\nsmall==2.0 --hash=sha256:{sha256(files['small'][SMALL])}\n"
    )
    with FixtureIndex(files) as idx:
        yield idx, tmp_path


def start(cwd, url, out="wh", **env):
    return start_factory(cwd, "wheelhouse", "--lock", "req.lock", "--out", out, env={"FACTORY_INDEX_URL": url, **env})


def temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


def assert_recovered(root: Path, idx) -> None:
    proc = start(root, idx.url)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    clean = start(root, idx.url, out="clean", FACTORY_CACHE_DIR=str(root / "clean-cache"))
    _, err = clean.communicate(timeout=120)
    assert clean.returncode == 0, err
    manifest = json.loads((root / "wh" / "manifest.json").read_text())
    assert manifest == json.loads((root / "clean" / "manifest.json").read_text())
    assert sorted(p.relative_to(root / "wh") for p in (root / "wh").rglob("*")) == sorted(
        p.relative_to(root / "clean") for p in (root / "clean").rglob("*"))
    assert temp_leftovers(root) == []
    for entry in (root / "cache" / "files" / "sha256").glob("*/*"):
        for f in entry.iterdir():
            assert sha256_file(f) == entry.name, f


def test_kill_mid_download(served):
    idx, root = served
    idx.stall[BIG] = 30
    proc = start(root, idx.url)
    deadline = time.monotonic() + 30
    staged = []
    while time.monotonic() < deadline and not staged:
        staged = [p for p in (root / "cache").rglob(".tmp-*") if p.stat().st_size > 0]
        time.sleep(0.1)
    assert staged, "the download never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert temp_leftovers(root), "the kill left nothing half-written: the test proves nothing"
    assert not (root / "wh").exists()
    idx.stall.clear()
    assert_recovered(root, idx)


def test_kill_before_the_output_rename(served):
    idx, root = served
    proc = start(root, idx.url, FACTORY_FAULT="before-rename")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert temp_leftovers(root) and not (root / "wh").exists()
    assert_recovered(root, idx)


def test_kill_while_replacing_keeps_the_previous_output(served):
    idx, root = served
    first = start(root, idx.url)
    first.communicate(timeout=120)
    before = (root / "wh" / "manifest.json").read_text()
    (root / "wh" / "manifest.json").write_text(before.replace('"3.14.8"', '"3.14.7"'))  # stale: forces a rebuild
    stale = (root / "wh" / "manifest.json").read_text()
    assert stale != before
    proc = start(root, idx.url, FACTORY_FAULT="before-rename")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert (root / "wh" / "manifest.json").read_text() == stale  # the complete old state
    (root / "wh" / "manifest.json").unlink()
    assert_recovered(root, idx)
