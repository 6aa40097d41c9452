"""Test images without Docker: a loopback docker-registry and tiny images pushed through its API."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexserver import free_port

from factory.core.registry import MANIFEST_V2, LocalRegistry, Registry


@contextmanager
def loopback_registry(state_dir: Path) -> Iterator[Registry]:
    """A fresh ``docker-registry`` on a free loopback port, stopped afterwards."""
    if shutil.which("docker-registry") is None:
        import pytest

        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    local = LocalRegistry(f"127.0.0.1:{free_port()}", state_dir)
    local.start()
    try:
        yield Registry(local.address)
    finally:
        local.stop()


def layer(content: bytes, name: str = "hello.txt") -> bytes:
    """A gzip layer tar holding one file (deterministic bytes: mtime 0, no gzip name/time)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def push_image(registry: Registry, repository: str, tag: str, arch: str, content: bytes) -> str:
    """Push a one-layer Docker v2 image for ``linux/<arch>`` (the engine's form) as
    ``repository:tag``; returns its manifest digest."""
    blob = layer(content)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    document = {
            "architecture": arch,
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Labels": {"org.opencontainers.image.title": "factory python base"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2026-01-01T00:00:00Z"}],
    }
    if arch == "arm64":
        document["variant"] = "v8"
    config = json.dumps(document, sort_keys=True).encode()
    layer_digest = registry.put_blob(repository, blob)
    config_digest = registry.put_blob(repository, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer_digest, "size": len(blob)}],
    }
    return registry.put_manifest(repository, tag, json.dumps(manifest, indent=3).encode(), MANIFEST_V2)
