"""OCI image manifests and the OCI index with annotations (issue 14, part 1).

Unit tests check the documents; the integration tests push tiny images to a loopback
docker-registry and read the result back with the registry API and with skopeo.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from registrykit import loopback_registry, push_image

from factory.bases import oci
from factory.bases.reproducible import push_oci_image, push_oci_index

ANNOTATIONS = oci.Annotations(
    created_epoch=1767225600,
    version="3.14.8",
    base_name="127.0.0.1:5555/factory/python:3.14.8-slim",
    base_digest="sha256:" + "b" * 64,
    source="https://example.org/factory",
    title="example app",
    description="the example app on CPython 3.14.8",
)
DOCKER_IMAGE = {
    "schemaVersion": 2,
    "mediaType": oci.DOCKER_MANIFEST,
    "config": {"mediaType": oci.DOCKER_CONFIG, "digest": "sha256:" + "c" * 64, "size": 100},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "sha256:" + "d" * 64, "size": 200}],
}


def test_a_docker_manifest_becomes_an_oci_manifest_over_the_same_blobs():
    body = json.loads(oci.image_manifest(DOCKER_IMAGE, ANNOTATIONS))
    assert body["mediaType"] == oci.OCI_MANIFEST
    assert body["config"] == {"mediaType": oci.OCI_CONFIG, "digest": "sha256:" + "c" * 64, "size": 100}
    assert body["layers"] == [{"mediaType": oci.OCI_LAYER_GZIP, "digest": "sha256:" + "d" * 64, "size": 200}]
    assert body["annotations"]["org.opencontainers.image.created"] == "2026-01-01T00:00:00Z"
    assert body["annotations"]["org.opencontainers.image.title"] == "example app"
    assert body["annotations"]["org.opencontainers.image.base.digest"] == "sha256:" + "b" * 64


def test_the_documents_are_deterministic_and_follow_their_inputs():
    assert oci.image_manifest(DOCKER_IMAGE, ANNOTATIONS) == oci.image_manifest(json.loads(json.dumps(DOCKER_IMAGE)), ANNOTATIONS)
    other = oci.Annotations(**{**ANNOTATIONS.__dict__, "version": "3.14.9"})
    assert oci.image_manifest(DOCKER_IMAGE, ANNOTATIONS) != oci.image_manifest(DOCKER_IMAGE, other)
    entries = [oci.IndexEntry("sha256:" + "1" * 64, 10, "arm64"), oci.IndexEntry("sha256:" + "2" * 64, 11, "amd64")]
    assert oci.image_index(entries, ANNOTATIONS) == oci.image_index(entries[::-1], ANNOTATIONS)


def test_the_index_gives_arm64_its_variant():
    entries = [oci.IndexEntry("sha256:" + "1" * 64, 10, "arm64"), oci.IndexEntry("sha256:" + "2" * 64, 11, "amd64")]
    body = json.loads(oci.image_index(entries, ANNOTATIONS))
    assert body["mediaType"] == oci.OCI_INDEX
    assert [m["platform"] for m in body["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    assert body["annotations"] == ANNOTATIONS.as_dict()


@pytest.mark.parametrize(
    "manifest",
    [
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []},
        {**DOCKER_IMAGE, "layers": [{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": "sha256:" + "e" * 64, "size": 1}]},
    ],
)
def test_an_index_or_a_foreign_layer_is_refused(manifest):
    with pytest.raises(oci.NotAnImageError):
        oci.image_manifest(manifest, ANNOTATIONS)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with loopback_registry(tmp_path_factory.mktemp("oci-registry")) as reg:
        yield reg


def _push_app(registry, repository: str, payload: bytes) -> str:
    images = []
    for arch in ("amd64", "arm64"):
        digest = push_image(registry, repository, f"3.14.8-{arch}", arch, payload + arch.encode())
        images.append((push_oci_image(registry, repository, digest, f"3.14.8-{arch}", ANNOTATIONS), arch))
    return push_oci_index(registry, repository, ["3.14.8-abc", "3.14.8"], images, ANNOTATIONS)


@pytest.mark.integration
def test_the_registry_serves_an_annotated_oci_index_and_digests_are_reproducible(registry):
    first = _push_app(registry, "t/app", b"one")
    again = _push_app(registry, "t/app", b"one")
    assert again == first
    index = registry.manifest("t/app", "3.14.8")
    assert index is not None and index.digest == first and index.media_type == oci.OCI_INDEX
    for entry in index.body["manifests"]:
        image = registry.manifest("t/app", entry["digest"])
        assert image is not None and image.media_type == oci.OCI_MANIFEST
        assert image.body["annotations"]["org.opencontainers.image.version"] == "3.14.8"
        assert image.body["layers"][0]["mediaType"] == oci.OCI_LAYER_GZIP
    assert _push_app(registry, "t/app", b"two") != first


@pytest.mark.integration
def test_skopeo_reads_the_index_as_an_oci_index_with_the_annotations(registry):
    assert shutil.which("skopeo"), "skopeo is not installed: `make deps` installs it"
    digest = _push_app(registry, "t/skopeo", b"skopeo")
    ref = f"docker://{registry.address}/t/skopeo"
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"{ref}:3.14.8"], capture_output=True, text=True, check=True)
    index = json.loads(raw.stdout)
    assert index["mediaType"] == oci.OCI_INDEX
    assert index["annotations"]["org.opencontainers.image.title"] == "example app"
    assert {m["platform"].get("variant") for m in index["manifests"]} == {None, "v8"}
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--override-arch", "arm64", f"{ref}@{digest}"],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(out.stdout)["Architecture"] == "arm64"
