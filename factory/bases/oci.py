"""OCI image documents: media types, image manifests and the image index, with annotations.

Formats from the OCI image spec v1.1: ``manifest.md`` (image manifest), ``image-index.md``
(index, ``platform`` with ``variant``), ``annotations.md`` (the ``org.opencontainers.image.*``
keys) and ``media-types.md`` (the Docker v2 types each OCI type is compatible with).

Every document is serialized canonically (sorted keys, no whitespace), so the same inputs
give the same bytes and so the same digest. Nothing here may depend on the clock or the
commit: provenance that changes per commit belongs in an attestation, not in an image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

# media-types.md, "Compatibility Matrix": the same blob bytes under the OCI name.
TO_OCI = {
    DOCKER_CONFIG: OCI_CONFIG,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": OCI_LAYER_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": OCI_LAYER_ZSTD,
}
OCI_TYPES = {OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD}

# image-index.md: arm64 images carry variant v8 (the spec's platform variants table).
VARIANTS = {"arm64": "v8"}


class NotAnImageError(ValueError):
    """A manifest is not a single-image manifest, or names a blob type with no OCI equivalent."""


@dataclass(frozen=True)
class Annotations:
    """The ``org.opencontainers.image.*`` annotations of the app image (annotations.md).

    ``created_epoch`` is SOURCE_DATE_EPOCH (seconds since 1970 UTC); ``version`` the Python
    patch version (``3.14.8``); ``base_name`` and ``base_digest`` the base image's
    ``name:tag`` and ``sha256:…``; ``source`` the project's URL; ``title`` and
    ``description`` those of the app, not of the base. An empty value is left out (an
    index spans the bases of several arches and names none; a project may have no URL).
    """

    created_epoch: int
    version: str
    base_name: str
    base_digest: str
    source: str
    title: str
    description: str

    def as_dict(self) -> dict[str, str]:
        """The annotation map, keys in ``org.opencontainers.image.`` form, values strings."""
        prefix = "org.opencontainers.image."
        values = {
            "created": rfc3339(self.created_epoch),
            "version": self.version,
            "base.name": self.base_name,
            "base.digest": self.base_digest,
            "source": self.source,
            "title": self.title,
            "description": self.description,
        }
        return {prefix + k: v for k, v in values.items() if v}


def rfc3339(epoch: int) -> str:
    """``1767225600`` -> ``2026-01-01T00:00:00Z`` (RFC 3339, UTC, as annotations.md asks)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical(document: dict[str, Any]) -> bytes:
    """``document`` as JSON with sorted keys and no whitespace (UTF-8 bytes)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` (the OCI descriptor digest)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _oci_descriptor(descriptor: dict[str, Any]) -> dict[str, Any]:
    media_type = descriptor.get("mediaType", "")
    oci_type = media_type if media_type in OCI_TYPES else TO_OCI.get(media_type)
    if oci_type is None:
        raise NotAnImageError(f"blob {descriptor.get('digest', '?')} has media type {media_type!r} with no OCI equivalent")
    out: dict[str, Any] = {"mediaType": oci_type, "digest": descriptor["digest"], "size": int(descriptor["size"])}
    return out


def image_manifest(manifest: dict[str, Any], annotations: Annotations) -> bytes:
    """The OCI image manifest (canonical bytes) over the blobs of ``manifest``.

    ``manifest`` is a parsed Docker v2 schema 2 or OCI image manifest; its config and layer
    descriptors keep their digests and sizes (the blobs are the same bytes) and get the OCI
    media types. Raises ``NotAnImageError`` for an index, a list, or a foreign layer type.
    """
    if "config" not in manifest or "layers" not in manifest:
        raise NotAnImageError("not a single-image manifest (no config/layers)")
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _oci_descriptor(manifest["config"]),
            "layers": [_oci_descriptor(layer) for layer in manifest["layers"]],
            "annotations": annotations.as_dict(),
        }
    )


@dataclass(frozen=True)
class IndexEntry:
    """One image of an index: its manifest digest (``sha256:…``), size in bytes, arch."""

    digest: str
    size: int
    arch: str


def platform(arch: str) -> dict[str, str]:
    """The OCI ``platform`` object for a Linux ``arch`` (``amd64``, ``arm64`` gets ``v8``)."""
    out = {"architecture": arch, "os": "linux"}
    if arch in VARIANTS:
        out["variant"] = VARIANTS[arch]
    return out


def image_index(entries: list[IndexEntry], annotations: Annotations) -> bytes:
    """The OCI image index (canonical bytes) over ``entries``, ordered by arch so the digest
    does not depend on build order, with ``annotations`` on the index."""
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": e.digest, "size": e.size, "platform": platform(e.arch)}
                for e in sorted(entries, key=lambda e: e.arch)
            ],
            "annotations": annotations.as_dict(),
        }
    )
