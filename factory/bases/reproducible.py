"""Reproducible image digests: the engine's clock and container ids taken out of image configs.

Docker's classic builder writes the wall clock into an image config (``created`` and each
``history[].created``), the id of its build container (``container``,
``container_config``) and of the step's parent image (``config.Image``); see the OCI
image spec, config.md, for the fields an image config has. Two builds of bit-identical
layers therefore get different config digests and so different manifest digests.
``pin_created`` rewrites a pushed image through the registry: the same layers, a config
whose times are ``SOURCE_DATE_EPOCH`` and without the build container's fields, and a
manifest over it pushed under the same tag.

``SOURCE_DATE_EPOCH`` (reproducible-builds.org's convention, seconds since 1970 UTC) is the
Debian suite's Release date for a bootstrapped base image, and the base image's
``created`` for every image built on it, so it follows from the snapshot and nothing else.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from ..core.errors import RegistryError
from ..core.registry import ManifestInfo, Registry
from . import oci

# Written by the classic builder from the build container; no other builder writes them.
# (It also writes config.Image, the id of the step's parent image, which embeds that
# image's creation time: emptied, as BuildKit leaves it.)
VOLATILE_FIELDS = ("container", "container_config")


def rfc3339(epoch: int) -> str:
    """``1767225600`` -> ``2026-01-01T00:00:00Z`` (the form image configs use)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(created: str) -> int:
    """Seconds since 1970 UTC of an image config's RFC 3339 ``created`` (nanoseconds dropped).

    Raises ``ValueError`` for a string that is not RFC 3339.
    """
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", created.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {created!r}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return int(datetime.fromisoformat(m.group(1) + zone).timestamp())


def normalized_config(config: dict[str, Any], epoch: int) -> dict[str, Any]:
    """A copy of the image ``config`` with ``created`` and every ``history[].created`` set
    to ``epoch``, the build container's fields removed and ``config.Image`` emptied; layers
    (``rootfs``) untouched."""
    out = {k: v for k, v in config.items() if k not in VOLATILE_FIELDS}
    if isinstance(out.get("config"), dict) and "Image" in out["config"]:
        out["config"] = {**out["config"], "Image": ""}
    out["created"] = rfc3339(epoch)
    out["history"] = [{**h, "created": rfc3339(epoch)} for h in config.get("history", [])]
    return out


def pin_created(registry: Registry, repository: str, tag: str, digest: str, epoch: int) -> str:
    """Re-push image ``repository@digest`` with its config normalized (``normalized_config``)
    as ``repository:tag``; returns the new manifest digest (``sha256:…``).

    The config is serialized with sorted keys and no whitespace, and the manifest keeps the
    engine's media type and layer descriptors, so equal layers and inputs give an equal
    digest. Raises ``RegistryError`` when the image is missing or a push is refused.
    """
    manifest = registry.manifest(repository, digest)
    if manifest is None or "config" not in manifest.body:
        raise RegistryError(f"registry {registry.address} has no image {repository}@{digest}", "push it again")
    config = json.loads(registry.blob(repository, manifest.body["config"]["digest"]))
    data = json.dumps(normalized_config(config, epoch), sort_keys=True, separators=(",", ":")).encode()
    config_digest = registry.put_blob(repository, data)
    body = {**manifest.body, "config": {**manifest.body["config"], "digest": config_digest, "size": len(data)}}
    return registry.put_manifest(repository, tag, json.dumps(body, indent=3).encode(), manifest.media_type)


def push_oci_image(registry: Registry, repository: str, digest: str, tag: str, annotations: oci.Annotations) -> ManifestInfo:
    """Re-push image ``repository@digest`` (Docker v2 or OCI) as an OCI image manifest with
    ``annotations`` (``oci.image_manifest``), tagged ``tag``; returns the pushed manifest.

    Only the manifest is written: config and layers are the same blobs under OCI media
    types, so layer digests do not change. Same image and annotations give the same digest.
    Raises ``RegistryError`` when the image is missing, is not a single image, or a push is refused.
    """
    source = registry.manifest(repository, digest)
    if source is None:
        raise RegistryError(f"registry {registry.address} has no image {repository}@{digest}", "push it again")
    try:
        body = oci.image_manifest(source.body, annotations)
    except oci.NotAnImageError as e:
        raise RegistryError(f"{repository}@{digest}: {e}", "give the digest of one arch image") from None
    pushed = registry.put_manifest(repository, tag, body, oci.OCI_MANIFEST)
    found = registry.manifest(repository, pushed)
    if found is None:
        raise RegistryError(f"registry {registry.address} lost {repository}@{pushed} right after the push", "check the registry")
    return found


def push_oci_index(
    registry: Registry, repository: str, tags: list[str], images: list[tuple[ManifestInfo, str]], annotations: oci.Annotations
) -> str:
    """Push one OCI image index over ``images`` of (OCI image manifest, arch) under every tag
    in ``tags``; returns its digest (``sha256:…``, equal for equal inputs).

    Raises ``RegistryError`` if a push is refused (an image it names is missing, say).
    """
    entries = [oci.IndexEntry(m.digest, m.size, arch) for m, arch in images]
    body = oci.image_index(entries, annotations)
    digest = ""
    for tag in tags:
        digest = registry.put_manifest(repository, tag, body, oci.OCI_INDEX)
    return digest
