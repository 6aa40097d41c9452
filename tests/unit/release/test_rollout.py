"""Promote, rollback and the release history through a real loopback registry (issue 14, part 4).

Each bad input must give one line on stderr, a non-zero exit, and change neither the tag
in the registry nor the history file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import run_factory
from indexserver import free_port
from registrykit import loopback_registry, push_image

from factory.bases import oci
from factory.bases.reproducible import push_oci_image, push_oci_index
from factory.core.errors import ReleaseError
from factory.core.registry import Registry
from factory.release import rollout

REPO = "t/app"


def test_the_chain_pops_on_rollback_so_two_rollbacks_go_back_two_promotes():
    def move(digest: str, action: str) -> rollout.Release:
        return rollout.Release("prod", "r/app", digest, "t", "x", action)

    history = [move("A", "promote"), move("B", "promote"), move("C", "promote"), move("B", "rollback")]
    assert [r.digest for r in rollout.chain(history, "prod")] == ["A", "B"]
    assert rollout.chain(history, "staging") == []
    assert [r.digest for r in rollout.chain([*history, move("A", "rollback")], "prod")] == ["A"]


@pytest.mark.parametrize("tag", ["", "-x", "a/b", "sha256-" + "0" * 64, "x" * 129])
def test_a_bad_tag_is_refused_before_anything_is_read(tmp_path, tag):
    with pytest.raises(ReleaseError):
        rollout.rollback(Registry, tag, tmp_path / "releases.json")


def test_a_corrupt_history_is_one_error(tmp_path):
    (tmp_path / "releases.json").write_text("{not json")
    with pytest.raises(ReleaseError, match="not a release history"):
        rollout.releases("prod", tmp_path / "releases.json")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with loopback_registry(tmp_path_factory.mktemp("release-registry")) as reg:
        yield reg


def _images_lock(registry: Registry, directory: Path, payload: bytes) -> Path:
    """An images.lock over a fresh two-arch OCI index whose layers hold ``payload``."""
    annotations = oci.Annotations(1767225600, "3.14.8", "base:3.14.8", "sha256:" + "b" * 64, "https://example.org", "app", "app")
    images = []
    for arch in ("amd64", "arm64"):
        digest = push_image(registry, REPO, f"build-{arch}", arch, payload + arch.encode())
        images.append((push_oci_image(registry, REPO, digest, f"build-{arch}", annotations), arch))
    index = push_oci_index(registry, REPO, ["build"], images, annotations)
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / "images.lock"
    lock.write_text(json.dumps({"index": f"{registry.address}/{REPO}@{index}", "images": [], "tags": []}))
    return lock


def _tag_digest(registry: Registry, tag: str) -> str | None:
    found = registry.manifest(REPO, tag)
    return found.digest if found else None


def _fails_with_one_line(proc, *words: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("factory: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.integration
def test_promote_promote_rollback_returns_the_tag_to_the_first_digest(registry, tmp_path):
    lock_a = _images_lock(registry, tmp_path / "a", b"release A")
    lock_b = _images_lock(registry, tmp_path / "b", b"release B")
    history = tmp_path / "releases.json"
    digest_a = json.loads(lock_a.read_text())["index"].partition("@")[2]
    digest_b = json.loads(lock_b.read_text())["index"].partition("@")[2]
    assert digest_a != digest_b

    cache = ["--cache-dir", str(tmp_path / "cache")]
    for lock, digest in ((lock_a, digest_a), (lock_b, digest_b)):
        run_factory(tmp_path, "promote", "--images-lock", str(lock), "--tag", "prod", "--history", str(history), *cache, check=True)
        assert _tag_digest(registry, "prod") == digest
    proc = run_factory(tmp_path, "rollback", "--tag", "prod", "--history", str(history), *cache, check=True)
    # the run lock is the cache's, not a file left beside the user's history
    assert not list(tmp_path.glob(".releases.json.lock")) and list((tmp_path / "cache" / "locks").glob("*.lock"))
    assert digest_a in proc.stdout + proc.stderr
    assert _tag_digest(registry, "prod") == digest_a
    # the index came back byte for byte: same media type, still OCI
    assert registry.manifest(REPO, "prod").media_type == oci.OCI_INDEX

    moves = json.loads(history.read_text())["releases"]
    assert [(m["action"], m["digest"]) for m in moves] == [("promote", digest_a), ("promote", digest_b), ("rollback", digest_a)]
    import hashlib

    assert moves[0]["images_lock_sha256"] == hashlib.sha256(lock_a.read_bytes()).hexdigest()
    listed = run_factory(tmp_path, "releases", "--tag", "prod", "--history", str(history), check=True)
    assert (listed.stdout + listed.stderr).count("sha256:") == 3

    # back at the first release: nothing further to roll back to, and nothing changes
    before = history.read_bytes()
    proc = run_factory(tmp_path, "rollback", "--tag", "prod", "--history", str(history))
    _fails_with_one_line(proc, "nothing to roll back to")
    assert history.read_bytes() == before and _tag_digest(registry, "prod") == digest_a


@pytest.mark.integration
def test_every_bad_input_is_one_line_and_changes_nothing(registry, tmp_path):
    lock_a = _images_lock(registry, tmp_path / "a", b"bad inputs A")
    history = tmp_path / "releases.json"
    run_factory(tmp_path, "promote", "--images-lock", str(lock_a), "--tag", "staging", "--history", str(history), check=True)
    before, digest = history.read_bytes(), _tag_digest(registry, "staging")

    proc = run_factory(tmp_path, "rollback", "--tag", "nosuch", "--history", str(history))
    _fails_with_one_line(proc, "never promoted")

    gone = tmp_path / "gone" / "images.lock"
    gone.parent.mkdir()
    gone.write_text(json.dumps({"index": f"{registry.address}/{REPO}@sha256:{'0' * 64}"}))
    proc = run_factory(tmp_path, "promote", "--images-lock", str(gone), "--tag", "staging", "--history", str(history))
    _fails_with_one_line(proc, "no longer holds")

    down = tmp_path / "down" / "images.lock"
    down.parent.mkdir()
    down.write_text(json.dumps({"index": f"127.0.0.1:{free_port()}/{REPO}@sha256:{'0' * 64}"}))
    proc = run_factory(tmp_path, "promote", "--images-lock", str(down), "--tag", "staging", "--history", str(history))
    _fails_with_one_line(proc, "is down")

    proc = run_factory(tmp_path, "promote", "--images-lock", str(tmp_path / "missing.lock"), "--tag", "staging", "--history", str(history))
    _fails_with_one_line(proc, "cannot read the index")

    assert history.read_bytes() == before and _tag_digest(registry, "staging") == digest
