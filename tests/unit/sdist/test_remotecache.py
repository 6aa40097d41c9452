"""The shared build cache in a registry (remotecache.py, BuildCache with a remote): entries
pushed as OCI artifacts to a real loopback docker-registry, pulled by another cache, refused
when tampered with, skipped with a warning when the registry is down, never written by a
pull-only run; and the remote-cache settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from indexserver import free_port
from registrykit import loopback_registry

from factory.core.config import RemoteSpec, load_config
from factory.core.errors import ConfigError
from factory.core.registry import Registry
from factory.sdist.buildcache import BuildCache, BuildKey
from factory.sdist.outcome import BuildOutcome
from factory.sdist.remotecache import ARTIFACT_TYPE, KEY_ANNOTATION, MANIFEST, RemoteCache

REPO = "factory-test/buildcache"


def key(n: int) -> BuildKey:
    return BuildKey(
        sdist_sha256=f"{n:064x}", target="manylinux_2_28_x86_64", python="3.14.8", builder="b", toolchain_sha256="t",
        build_constraints_sha256="c", resources_sha256="r", environment=(), cibuildwheel_version="4.3.3",
    )  # fmt: skip


def builder(content: bytes = b"wheel bytes"):
    def build(work: Path) -> BuildOutcome:
        wheel = work / "tiny-1.0-cp314-cp314-manylinux_2_17_x86_64.whl"
        wheel.write_bytes(content)
        (work / "build.log").write_text("built\n")
        return BuildOutcome(
            "tiny", "1.0", "manylinux_2_28_x86_64", ok=True, sdist="tiny-1.0.tar.gz", sdist_sha256="0" * 64,
            filename=wheel.name, sha256=hashlib.sha256(content).hexdigest(), tag="cp314-cp314-manylinux_2_17_x86_64", seconds=1.0,
        )  # fmt: skip

    return build


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with loopback_registry(tmp_path_factory.mktemp("buildcache-registry")) as reg:
        yield reg


def remote(registry: Registry, mode: str = "pull-push") -> RemoteCache:
    return RemoteCache(RemoteSpec(registry.address, REPO, mode), registry)


def test_an_entry_built_on_one_machine_is_pulled_on_another(registry, tmp_path, capsys):
    first = BuildCache(tmp_path / "a", remote(registry))
    built = first.put(key(1), builder())
    manifest = registry.manifest(REPO, key(1).hexdigest())
    assert manifest is not None and manifest.body["artifactType"] == ARTIFACT_TYPE
    assert manifest.body["annotations"][KEY_ANNOTATION] == key(1).hexdigest()
    titles = sorted(layer["annotations"]["org.opencontainers.image.title"] for layer in manifest.body["layers"])
    assert titles == ["build.log", "outcome.json", built.filename]
    second = BuildCache(tmp_path / "b", remote(registry))
    assert second.has(key(1)) and not second.has(key(2))
    pulled = second.get(key(1))
    assert pulled is not None and pulled.cached and pulled.sha256 == built.sha256
    assert (tmp_path / "b" / key(1).hexdigest() / built.filename).read_bytes() == b"wheel bytes"
    assert "from the remote cache" in capsys.readouterr().err
    # the entry is local now: a cache without the remote finds it
    assert BuildCache(tmp_path / "b", None).get(key(1)) is not None


def test_a_tampered_entry_is_refused_and_rebuilt(registry, tmp_path, capsys):
    good = BuildCache(tmp_path / "a", remote(registry)).put(key(3), builder())
    found = registry.manifest(REPO, key(3).hexdigest())
    assert found is not None
    body = json.loads(found.raw)
    # swap the wheel's blob for other bytes: every blob still matches its digest, but the
    # wheel no longer matches outcome.json
    evil = registry.put_blob(REPO, b"evil wheel")
    for layer in body["layers"]:
        if layer["annotations"]["org.opencontainers.image.title"] == good.filename:
            layer["digest"], layer["size"] = evil, len(b"evil wheel")
    registry.put_manifest(REPO, key(3).hexdigest(), json.dumps(body).encode(), MANIFEST)
    victim = BuildCache(tmp_path / "b", remote(registry))
    assert victim.get(key(3)) is None
    assert "does not match its outcome.json; refused" in capsys.readouterr().err
    assert not (tmp_path / "b" / key(3).hexdigest()).exists()
    rebuilt = victim.put(key(3), builder())
    assert rebuilt.ok and victim.get(key(3)).sha256 == good.sha256
    # the rebuild was pushed over the tampered tag
    assert BuildCache(tmp_path / "c", remote(registry)).get(key(3)) is not None


def test_an_entry_under_another_key_is_refused(registry, tmp_path, capsys):
    BuildCache(tmp_path / "a", remote(registry)).put(key(4), builder())
    found = registry.manifest(REPO, key(4).hexdigest())
    registry.put_manifest(REPO, key(5).hexdigest(), found.raw, MANIFEST)  # key 4's entry under key 5's tag
    assert BuildCache(tmp_path / "b", remote(registry)).get(key(5)) is None
    assert "not a factory build entry for that key" in capsys.readouterr().err


def test_a_pull_only_run_never_writes(registry, tmp_path):
    cache = BuildCache(tmp_path / "a", remote(registry, "pull"))
    assert cache.put(key(6), builder()).ok
    assert registry.manifest(REPO, key(6).hexdigest()) is None


def test_a_registry_that_is_down_falls_back_to_building(tmp_path, capsys):
    dead = Registry(f"127.0.0.1:{free_port()}")
    cache = BuildCache(tmp_path / "a", RemoteCache(RemoteSpec(dead.address, REPO), dead))
    assert cache.get(key(7)) is None
    assert cache.put(key(7), builder()).ok  # built and kept locally; the push only warns
    assert cache.get(key(7)) is not None
    out = capsys.readouterr().err
    assert out.count("building locally") == 1 and "warning: remote cache" in out


def test_remote_cache_settings(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.factory]\nremote-cache = "127.0.0.1:5000/team/buildcache"\n')
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    assert cfg.remote_cache == RemoteSpec("127.0.0.1:5000", "team/buildcache", "pull-push")
    env = {"FACTORY_REMOTE_CACHE": "reg.example:443/x/cache", "FACTORY_REMOTE_CACHE_MODE": "pull"}
    assert load_config(tmp_path / "pyproject.toml", env=env).remote_cache == RemoteSpec("reg.example:443", "x/cache", "pull")
    with pytest.raises(ConfigError, match="is not <registry>/<repository>"):
        load_config(tmp_path / "pyproject.toml", env={"FACTORY_REMOTE_CACHE": "justahost:5000"})
    with pytest.raises(ConfigError, match="remote-cache-mode 'push' is not one of"):
        load_config(tmp_path / "pyproject.toml", env={"FACTORY_REMOTE_CACHE_MODE": "push"})
