"""Reproducible image configs: unit cases, and ``pin_created`` against a real loopback
registry (Debian's docker-registry, hence ``integration``)."""

from __future__ import annotations

import gzip
import hashlib
import json

import docker.errors
import pytest
from indexserver import free_port

from factory.bases.reproducible import epoch_of, normalized_config, pin_created, rfc3339
from factory.core.engine import Engine
from factory.core.registry import MANIFEST_V2, LocalRegistry, Registry

EPOCH = 1763596800  # 2025-11-20T00:00:00Z


def _engine_config(created: str, container: str) -> dict:
    """An image config as Docker's classic builder writes it (abridged)."""
    return {
        "architecture": "arm64",
        "os": "linux",
        "config": {"Cmd": ["python3"], "Labels": {"a": "b"}, "Image": "sha256:" + container},
        "container": container,
        "container_config": {"Hostname": container[:12], "Cmd": ["/bin/sh", "-c", "#(nop) CMD [\"python3\"]"]},
        "created": created,
        "docker_version": "20.10.24+dfsg1",
        "history": [
            {"created": created, "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created": created, "created_by": "/bin/sh -c #(nop)  CMD [\"python3\"]", "empty_layer": True},
        ],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
    }


def test_rfc3339_and_back():
    assert rfc3339(EPOCH) == "2025-11-20T00:00:00Z"
    assert epoch_of("2025-11-20T00:00:00Z") == EPOCH
    assert epoch_of("2025-11-20T01:00:00.123456789+01:00") == EPOCH  # the engine's nanoseconds
    with pytest.raises(ValueError):
        epoch_of("yesterday")


def test_normalized_config_drops_the_clock_and_the_build_container():
    a = normalized_config(_engine_config("2026-11-22T10:00:01.5Z", "f" * 64), EPOCH)
    b = normalized_config(_engine_config("2026-11-22T11:30:00.25Z", "e" * 64), EPOCH)
    assert a == b
    assert a["created"] == "2025-11-20T00:00:00Z"
    assert {h["created"] for h in a["history"]} == {"2025-11-20T00:00:00Z"}
    assert "container" not in a and "container_config" not in a and a["config"]["Image"] == ""
    assert a["config"]["Labels"] == {"a": "b"}
    assert a["rootfs"] == _engine_config("x", "y")["rootfs"]
    assert a["history"][1]["empty_layer"] is True


@pytest.fixture()
def registry(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    local = LocalRegistry(address, tmp_path / "registry")
    local.start()
    yield Registry(address)
    local.stop()


def _push_engine_image(registry: Registry, tag: str, created: str, container: str) -> str:
    layer = gzip.compress(b"layer bytes", mtime=0)
    layer_digest = registry.put_blob("repro/app", layer)
    config = json.dumps(_engine_config(created, container)).encode()
    config_digest = registry.put_blob("repro/app", config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": layer_digest}],
    }
    return registry.put_manifest("repro/app", tag, json.dumps(manifest).encode(), MANIFEST_V2)


@pytest.mark.integration
def test_pin_created_gives_equal_digests_for_equal_layers(registry):
    """Two pushes that differ only in build time and build container end up as one digest,
    tagged, with the layers untouched and the config's times at the epoch."""
    first = _push_engine_image(registry, "one", "2026-11-22T10:00:01Z", "f" * 64)
    second = _push_engine_image(registry, "two", "2026-11-22T11:00:02Z", "e" * 64)
    assert first != second
    pinned = [pin_created(registry, "repro/app", tag, d, EPOCH) for tag, d in (("one", first), ("two", second))]
    assert pinned[0] == pinned[1]
    manifest = registry.manifest("repro/app", "one")
    assert manifest.digest == pinned[0] and registry.manifest("repro/app", "two").digest == pinned[0]
    assert manifest.media_type == MANIFEST_V2
    assert manifest.body["layers"] == registry.manifest("repro/app", first).body["layers"]
    config = registry.blob("repro/app", manifest.body["config"]["digest"])
    assert manifest.body["config"]["size"] == len(config)
    assert json.loads(config)["created"] == rfc3339(EPOCH)
    assert manifest.body["config"]["digest"] == "sha256:" + hashlib.sha256(config).hexdigest()


@pytest.mark.integration
def test_pin_created_of_a_missing_image_names_it(registry):
    from factory.core.errors import RegistryError

    with pytest.raises(RegistryError, match="has no image repro/app@sha256:0+"):
        pin_created(registry, "repro/app", "x", "sha256:" + "0" * 64, EPOCH)


def _clean_engine(address: str) -> None:
    """Remove from the engine what a run against ``address`` left: images only it names
    (with the untagged stages built on them), and its names on images that others name
    too. The engine's image store is a cache, and a clean build must not find the previous
    build's images; a base whose digest another registry shares (reproducibly) stays,
    under that other name only."""
    engine = Engine()
    images = engine.client.api.images(all=True)
    children: dict[str, list[str]] = {}
    for i in images:
        children.setdefault(i.get("ParentId", ""), []).append(i["Id"])
    doomed: list[str] = []

    def visit(image_id: str) -> None:  # children first
        for child in children.get(image_id, []):
            visit(child)
        if image_id not in doomed:
            doomed.append(image_id)

    for i in images:
        names = (i.get("RepoTags") or []) + (i.get("RepoDigests") or [])
        ours = [n for n in names if n.startswith(f"{address}/")]
        if ours and len(ours) == len([n for n in names if n != "<none>:<none>" and n != "<none>@<none>"]):
            visit(i["Id"])
        else:
            for name in ours:
                try:
                    engine.client.api.remove_image(name)  # untags; the image stays for its other names
                except docker.errors.NotFound:
                    pass  # a repo@digest name goes with that repo's last tag, removed just before
    for image_id in doomed:
        try:
            engine.client.api.remove_image(image_id, force=True)
        except docker.errors.NotFound:
            pass
    left = {i["Id"] for i in engine.client.api.images(all=True)} & set(doomed)
    assert not left, f"images from {address} left in the engine: {sorted(left)}"
    named = [n for i in engine.client.api.images(all=True) for n in (i.get("RepoTags") or []) + (i.get("RepoDigests") or [])]
    assert not [n for n in named if n.startswith(f"{address}/")], f"names of {address} left in the engine"


def _clean_build(workdir, address: str, lock_text: str) -> dict:
    """One clean run of bootstrap, wheelhouse and images in ``workdir``: an empty cache
    directory, a fresh registry (new storage, same address), no engine layer cache."""
    from clirun import run_project as run
    from paths import ROOT

    workdir.mkdir()
    recipe = ROOT / "factory/resources/images/recipes/forky-slim.toml"
    (workdir / "pyproject.toml").write_text(
        f"""[tool.factory]
cache-dir = "cache"
registry = "{address}"
registry-dir = "registry"
engine-cache = false
repository = "factory-repro/app"
base-repository = "factory-repro/python"
bases-lock = "bases.lock"
lock = "requirements.lock"
toolchain = "{ROOT / 'factory/resources/constraints/toolchain.txt'}"
[tool.factory.base.amd64]
recipe = "{recipe}"
[tool.factory.base.arm64]
recipe = "{recipe}"
"""
    )
    (workdir / "requirements.lock").write_text(lock_text)
    try:
        run(workdir, "bootstrap")
        run(workdir, "wheelhouse", "--out", "wheelhouse", "--no-build")
        run(workdir, "images", "--wheelhouse", "wheelhouse", "--images-lock", "images.lock")
    finally:
        LocalRegistry(address, workdir / "registry").stop()
        _clean_engine(address)
    manifest = json.loads((workdir / "wheelhouse" / "manifest.json").read_text())
    images = json.loads((workdir / "images.lock").read_text())
    return {
        "bases": {a: b["ref"] for a, b in json.loads((workdir / "bases.lock").read_text())["bases"].items()},
        "wheels": {t: sorted((w["filename"], w["sha256"]) for w in ws) for t, ws in manifest["targets"].items()},
        "install_locks": {p.name: p.read_text() for p in sorted((workdir / "wheelhouse" / "install").iterdir())},
        "images": {i["arch"]: i["ref"] for i in images["images"]},
        "index": images["index"],
    }


@pytest.mark.integration
@pytest.mark.timeout(3600)
def test_two_clean_builds_give_identical_wheelhouse_and_image_digests(tmp_path, lock):
    """The issue's test: same inputs, empty caches, a fresh registry each time, the engine's
    layer cache off: the same wheel sha256s, base and image digests for both arches, and
    the same multi-arch index digest."""
    address = f"127.0.0.1:{free_port()}"
    first = _clean_build(tmp_path / "first", address, lock.path.read_text())
    second = _clean_build(tmp_path / "second", address, lock.path.read_text())
    assert set(first["images"]) == {"amd64", "arm64"}
    assert len(first["wheels"]) == 4 and all(first["wheels"].values())
    for key in ("wheels", "install_locks", "bases", "images", "index"):
        assert first[key] == second[key], key
