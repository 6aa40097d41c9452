"""An image written without an engine: a base image plus one layer, pushed through the registry API.

Formats from the OCI image spec v1.1: ``layer.md`` (a layer is a tar of the changeset,
here gzip-compressed, ``application/vnd.oci.image.layer.v1.tar+gzip``; its ``diff_id`` is
the sha256 of the uncompressed tar), ``config.md`` (``rootfs.diff_ids``, ``history`` and
``config``: Env, User, WorkingDir, Cmd, Labels) and ``manifest.md``; pushed with the OCI
distribution spec's blob uploads and cross-repository mounts (the base's layers are
mounted from its repository, never downloaded).

Deterministic: tar entries in sorted path order, owners ``0:0`` without names, whole-second
mtimes as on disk (the host layer pins them to SOURCE_DATE_EPOCH), a gzip header without
file name or time, and config and manifest serialized canonically. The same layer tree and
base give the same digest on every machine, whatever storage driver an engine has.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..bases import oci
from ..bases.reproducible import normalized_config
from ..core import faults
from ..core.errors import ImageBuildError, RegistryError
from ..core.registry import ManifestInfo, Registry

RUNTIME_CONFIG = "images/runtime-config.json"


@dataclass(frozen=True)
class Layer:
    """A written layer: the gzip'd tar at ``path``, ``digest`` (``sha256:…``) and ``size``
    (bytes) of those compressed bytes, ``diff_id`` (``sha256:…``) of the uncompressed tar."""

    path: Path
    digest: str
    diff_id: str
    size: int


@dataclass(frozen=True)
class RuntimeConfig:
    """What an image sets over its base's config (``resources/images/runtime-config.json``):
    ``env`` as (name, value) pairs, ``working_dir``, ``cmd``; the user is given apart."""

    env: tuple[tuple[str, str], ...]
    working_dir: str
    cmd: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> RuntimeConfig:
        """Read the JSON file ``path`` (keys ``Env`` object, ``WorkingDir``, ``Cmd`` list)."""
        d = json.loads(path.read_text())
        return cls(tuple((str(k), str(v)) for k, v in d["Env"].items()), str(d["WorkingDir"]), tuple(str(c) for c in d["Cmd"]))


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


class _Hashing:
    """A write-only stream that hashes and counts what passes through to ``out``."""

    def __init__(self, out: _Writable) -> None:
        self.out, self.sha256, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = int(info.mtime)  # a float mtime would add a PAX header
    return info


def write_layer(root: Path, dest: Path, compresslevel: int = 6) -> Layer:
    """Write everything under ``root`` (not ``root`` itself; paths relative to it, as they
    land under ``/``) as a gzip'd tar at ``dest``; return it as a ``Layer``. Symlinks stay
    links; files that are hard links of each other become tar hard links."""
    with open(dest, "wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=compresslevel, mtime=0) as gz:
            plain = _Hashing(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for child in sorted(root.iterdir()):
                    tar.add(child, arcname=child.name, filter=_normalized)  # recursion is in sorted order
    return Layer(dest, "sha256:" + compressed.sha256.hexdigest(), "sha256:" + plain.sha256.hexdigest(), compressed.size)


def _with_env(env: list[str], name: str, value: str) -> list[str]:
    """``env`` (``NAME=value`` strings) with ``name`` set in place, or appended, as ENV does."""
    entry = f"{name}={value}"
    names = [e.partition("=")[0] for e in env]
    return [entry if n == name else e for n, e in zip(names, env, strict=True)] if name in names else [*env, entry]


def image_config(base: dict[str, Any], layer: Layer, runtime: RuntimeConfig, user: str, labels: dict[str, str], epoch: int, created_by: str) -> bytes:
    """The image config (canonical bytes) of ``base`` (a parsed base image config) plus
    ``layer``: its diff_id appended to ``rootfs.diff_ids``, one ``history`` entry
    (``created_by``), ``runtime``'s Env/WorkingDir/Cmd, ``user`` (``uid:gid``) and
    ``labels`` over the base's; ``created`` is ``epoch`` (SOURCE_DATE_EPOCH, seconds).
    Raises ``ImageBuildError`` when ``base`` has no ``rootfs.diff_ids``."""
    diff_ids = base.get("rootfs", {}).get("diff_ids")
    if not isinstance(diff_ids, list):
        raise ImageBuildError("the base image config has no rootfs.diff_ids", "rebuild the base image (`factory bootstrap`)")
    config = normalized_config(base, epoch)
    inner = dict(config.get("config") or {})
    env = list(inner.get("Env") or [])
    for name, value in runtime.env:
        env = _with_env(env, name, value)
    inner.update(Env=env, User=user, WorkingDir=runtime.working_dir, Cmd=list(runtime.cmd), Labels={**(inner.get("Labels") or {}), **labels})
    config["config"] = inner
    config["rootfs"] = {"type": "layers", "diff_ids": [*diff_ids, layer.diff_id]}
    config["history"] = [*config["history"], {"created": oci.rfc3339(epoch), "created_by": created_by}]
    return oci.canonical(config)


def base_repository(registry: Registry, ref: str) -> tuple[str, ManifestInfo]:
    """(repository, single-image manifest) of the base ``ref`` (``<address>/<repo>@sha256:…``)
    in ``registry``. Raises ``ImageBuildError`` when ``ref`` is not pinned in that registry
    or the registry no longer holds it."""
    manifest = registry.manifest_of_ref(ref)
    if manifest is None or "layers" not in manifest.body:
        raise ImageBuildError(f"base image {ref} is not an image of registry {registry.address}", "bootstrap the bases again (`factory bootstrap`)")
    return ref.removeprefix(f"{registry.address}/").partition("@")[0], manifest


def push_image(
    registry: Registry, repository: str, tag: str, base_ref: str, layer: Layer, config_of: Callable[[dict[str, Any]], bytes], annotations: oci.Annotations
) -> ManifestInfo:
    """Push the image ``base_ref`` + ``layer`` as ``repository:tag``: the base's layers
    mounted from its repository, ``layer`` uploaded (unless already there), the config that
    ``config_of(base config dict) -> bytes`` makes, and an annotated OCI image manifest
    (``oci.image_manifest``). Returns the manifest as the registry then serves it.
    Raises ``ImageBuildError`` for a base outside ``registry``, ``RegistryError`` when a
    push is refused or the manifest is not served back."""
    source, base = base_repository(registry, base_ref)
    for blob in base.body["layers"]:
        registry.mount_blob(repository, blob["digest"], source)
    registry.put_blob_file(repository, layer.path, layer.digest)
    faults.point("mid-push")  # blobs are up; nothing names the image yet
    config = config_of(json.loads(registry.blob(source, base.body["config"]["digest"])))
    config_digest = registry.put_blob(repository, config)
    manifest = {
        "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [*base.body["layers"], {"mediaType": oci.OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size}],
    }
    pushed = registry.put_manifest(repository, tag, oci.image_manifest(manifest, annotations), oci.OCI_MANIFEST)
    found = registry.manifest(repository, pushed)
    if found is None:
        raise RegistryError(f"registry {registry.address} lost {repository}@{pushed} right after the push", "check the registry")
    return found
