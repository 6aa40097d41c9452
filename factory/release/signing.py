"""Signing, attesting and verifying the images an ``images.lock`` records, with cosign.

``sign_images`` signs the index and every arch image by digest, attaches the SLSA
provenance (to the index and to each image) and each image's CycloneDX SBOM, and returns
the ``signing`` block that ``images.lock`` records::

    "signing": {"public_key": "cosign.pub",          # relative to images.lock's directory
                "cosign": "3.1.1-2",
                "signatures": {"<ref>": "<address/name>:sha256-<hex>"},
                "attestations": {"<ref>": ["slsaprovenance1", "cyclonedx"]}}

cosign v3 stores signatures and attestations as referrers under ``sha256-<hex>`` in the
image's own repository (see ``factory.release.cosign``). ``verify_images`` checks it all back.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core import atomic, resources
from ..core.cache import sha256_file
from ..core.errors import SigningError
from ..core.registry import Registry, credentials
from . import provenance
from .cosign import Cosign, SigningKey, install, signing_key

PROVENANCE = "slsaprovenance1"
SBOM = "cyclonedx"


def signature_tag(ref: str) -> str:
    """Where cosign stores the signatures of ``address/name@sha256:<hex>``:
    ``address/name:sha256-<hex>``."""
    name, _, digest = ref.partition("@")
    return f"{name}:{digest.replace(':', '-')}"


def _verifies(check: Callable[..., object], *args: object) -> bool:
    """True when ``check(*args)`` passes: a digest already signed (or attested) by this key
    is not signed again, so a rebuild that reuses an image adds no second signature."""
    try:
        check(*args)
    except SigningError:
        return False
    return True


def sign_images(
    cosign: Cosign, key: SigningKey, images_lock: Path, data: dict[str, Any], provenance: dict[str, Any] | None
) -> dict[str, Any]:
    """Sign ``data["index"]`` and every ``data["images"][].ref``; attest ``provenance`` (a
    SLSA v1 predicate, ``factory.release.provenance.predicate``) on each, and each image's SBOM
    (``images[].sbom``, relative to ``images_lock``'s directory) when present.

    ``data`` is the images.lock content about to be written. A digest this key already signed
    or attested (an image reused from an earlier run) is not signed or attested again.
    Returns the ``signing`` block.
    Raises ``SigningError`` when cosign refuses any step.
    """
    refs = [data["index"], *[image["ref"] for image in data.get("images", [])]]
    attestations: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="factory-attest-") as tmp:
        predicate_file = Path(tmp) / "provenance.json"
        if provenance is not None:
            predicate_file.write_text(json.dumps(provenance, sort_keys=True))
        for ref in refs:
            if not _verifies(cosign.verify, ref, key.public_key):
                cosign.sign(ref, key.key)
            attestations[ref] = []
            if provenance is not None:
                if not _verifies(cosign.verify_attestation, ref, key.public_key, PROVENANCE):
                    cosign.attest(ref, key.key, predicate_file, PROVENANCE)
                attestations[ref].append(PROVENANCE)
        for image in data.get("images", []):
            if image.get("sbom"):
                if not _verifies(cosign.verify_attestation, image["ref"], key.public_key, SBOM):
                    cosign.attest(image["ref"], key.key, images_lock.parent / image["sbom"], SBOM)
                attestations[image["ref"]].append(SBOM)
    try:
        public_key = str(key.public_key.relative_to(images_lock.parent))
    except ValueError:
        public_key = str(key.public_key)
    return {
        "public_key": public_key,
        "cosign": tomllib.loads(resources.path("cosign.toml").read_text())["version"],
        "signatures": {ref: signature_tag(ref) for ref in refs},
        "attestations": attestations,
    }


def registry_of(images_lock: Path) -> str:
    """The registry address of the index ``images_lock`` records; "" when unreadable (the
    command that reads it then reports why)."""
    try:
        return str(json.loads(images_lock.read_text())["index"]).partition("/")[0]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""


def _split(ref: str) -> tuple[str, str, str]:
    name, _, digest = ref.partition("@")
    address, _, repository = name.partition("/")
    return address, repository, digest


def verify_images(
    cosign: Cosign, connect: Callable[[str], Registry], images_lock: Path, public_key: Path | None = None
) -> list[str]:
    """Check what ``images_lock`` records against the registry; returns the refs checked.

    - the index and every image are signed by the public key (``public_key``, else the one
      ``signing.public_key`` names) and their attestations verify with it;
    - the index in the registry lists exactly the images' digests;
    - every tag the lock names still points at the recorded digest, or at a digest the same
      key signed (a later signed build); a tag pushed over with anything else fails.

    Raises ``SigningError`` at the first failure (one line), ``RegistryError`` when the
    registry is down.
    """
    try:
        data = json.loads(images_lock.read_text())
        index_ref = data["index"]
        images = data.get("images", [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SigningError(f"cannot read {images_lock} ({type(e).__name__})", "give the images.lock that `factory images` wrote") from None
    signing = data.get("signing") or {}
    if public_key is None:
        if not signing.get("public_key"):
            raise SigningError(f"{images_lock} records no signing public key: its images were never signed", "sign them (`factory images`) or pass --key")
        public_key = images_lock.parent / signing["public_key"]
    if not public_key.is_file():
        raise SigningError(f"public key {public_key} does not exist", "pass --key with the publisher's cosign.pub")
    address, repository, index_digest = _split(index_ref)
    registry = connect(address)
    registry.check()
    index = registry.manifest(repository, index_digest)
    if index is None:
        raise SigningError(f"registry {address} no longer holds the index {index_ref}", "rebuild and push it with `factory images`")
    listed = {m["digest"] for m in index.body.get("manifests", [])}
    recorded = {_split(image["ref"])[2] for image in images}
    if listed != recorded:
        raise SigningError(
            f"the index {index_digest[:19]} lists {sorted(d[:19] for d in listed)}, images.lock records {sorted(d[:19] for d in recorded)}",
            "the lock and the registry disagree: rebuild with `factory images`",
        )
    checked = []
    for ref in [index_ref, *[image["ref"] for image in images]]:
        cosign.verify(ref, public_key)
        for predicate_type in signing.get("attestations", {}).get(ref, []):
            statements = cosign.verify_attestation(ref, public_key, predicate_type)
            digest = _split(ref)[2].removeprefix("sha256:")
            if not any(s.get("subject", [{}])[0].get("digest", {}).get("sha256") == digest for s in statements):
                raise SigningError(f"the {predicate_type} attestation of {ref} names another subject", "re-attest the image")
        checked.append(ref)
    tags = [(tag, index_digest) for tag in data.get("tags", [])] + [(image["tag"], _split(image["ref"])[2]) for image in images if image.get("tag")]
    for tag, digest in tags:
        name, _, tag_name = tag.rpartition(":")
        current = registry.manifest(_split(name + "@")[1], tag_name)
        if current is None or current.digest == digest:
            continue
        try:
            cosign.verify(f"{name}@{current.digest}", public_key)
        except SigningError:
            raise SigningError(
                f"tag {tag} was pushed over: it points at {current.digest}, which {public_key.name} did not sign (images.lock has {digest})",
                f"do not deploy the tag; deploy {name}@{digest} or promote a signed build",
            ) from None
    return checked


def lock_inputs(images_lock: Path, data: dict[str, Any]) -> list[provenance.Input]:
    """The inputs ``images.lock`` itself records: the requirements lock's sha256, each
    image's base and inputs hash, the wheelhouse SBOM file, the source commit. The pipeline
    adds the rest (toolchain, recipes, builder images, wheelhouse manifest)."""
    inputs = [provenance.Input("lock", "requirements.lock", data["lock_sha256"])] if data.get("lock_sha256") else []
    for image in data.get("images", []):
        if image.get("base"):
            inputs.append(provenance.image_input(f"base-{image['arch']}", image["base"]))
        if image.get("inputs_sha256"):
            inputs.append(provenance.Input(f"image-inputs-{image['arch']}", f"factory:image-inputs/{image['arch']}", image["inputs_sha256"]))
    sbom = images_lock.parent / data["wheelhouse_sbom"] if data.get("wheelhouse_sbom") else None
    if sbom is not None and sbom.is_file():
        inputs.append(provenance.Input("wheelhouse-sbom", str(data["wheelhouse_sbom"]), sha256_file(sbom)))
    if re.fullmatch(r"[0-9a-f]{40}", str(data.get("revision", ""))):
        inputs.append(provenance.Input("source", "git+file:.", git_commit=data["revision"]))
    return inputs


def sign_lock(
    cosign: Cosign, key: SigningKey, images_lock: Path, extra_inputs: Sequence[provenance.Input] = (), builder_id: str = ""
) -> dict[str, Any]:
    """Sign and attest what ``images_lock`` records and rewrite it (atomically) with the
    ``signing`` block; returns the new content. ``extra_inputs`` join the provenance's
    ``lock_inputs``. Raises ``SigningError`` (cosign, unreadable lock) or ``OutputError``."""
    try:
        data: dict[str, Any] = json.loads(images_lock.read_text())
        data["index"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SigningError(f"cannot read {images_lock} ({type(e).__name__})", "give the images.lock that `factory images` wrote") from None
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    arches = sorted(image.get("arch", "") for image in data.get("images", []))
    try:
        predicate = provenance.predicate(
            builder_id or f"https://factory.invalid/builder/{socket.gethostname()}",
            [*lock_inputs(images_lock, data), *extra_inputs],
            {"python": data.get("python", ""), "arches": arches, "index": data["index"], "tags": data.get("tags", [])},
            started_on=started,
        )
    except ValueError as e:
        raise SigningError(f"cannot state the provenance of {images_lock}: {e}", "rebuild with `factory images`") from None
    data["signing"] = sign_images(cosign, key, images_lock, data, predicate)
    atomic.write_json(images_lock, data)
    return data


def sign_with_cosign(
    cache_dir: Path, images_lock: Path, extra_inputs: Sequence[provenance.Input] = (), env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``sign_lock`` with Debian's cosign installed into ``cache_dir`` (``cosign.install``)
    and the key of ``cosign.signing_key`` (``FACTORY_SIGNING_KEY``, else one made once in
    ``<cache_dir>/signing/``; its public key written as ``cosign.pub`` beside
    ``images_lock``). Registry credentials: ``FACTORY_REGISTRY_USER``/``PASSWORD`` of the
    lock's registry, else cosign's own reading of ``docker login``. Returns the rewritten
    images.lock content; raises ``SigningError`` and the install's errors."""
    env = os.environ if env is None else env
    address = registry_of(images_lock)
    auth = credentials(address) if address else None
    tool = Cosign(install(cache_dir), auth=auth, password=env.get("COSIGN_PASSWORD", ""))
    key = signing_key(tool, cache_dir, images_lock.parent / "cosign.pub", env)
    return sign_lock(tool, key, images_lock, extra_inputs)
