"""The shared build cache in an OCI registry: one artifact per build cache entry.

Workers on different machines (a CI matrix of ``factory wheelhouse --only CELL``, native
hosts) meet here, the way BuildKit shares layers with ``--cache-to type=registry``:

- an entry of ``<cache>/builds/<key>/`` (the wheel, ``build.log``, ``outcome.json``) is
  pushed as an OCI image manifest (image spec 1.1 artifact: ``artifactType``
  ``ARTIFACT_TYPE``, the empty config, one layer per file titled with its name) tagged
  ``<key>`` in ``<address>/<repository>`` (``remote-cache``); the key is the sha256 hex the
  local entry is named by;
- a cell missing locally is looked up there before it is built; every blob is checked
  against its digest as it arrives (``Registry.blob``), the manifest's ``io.factory.build-key``
  must be the key asked for, and the wheel must hash to what ``outcome.json`` records: an
  entry that fails any check is refused (a warning) and the cell is built and pushed again;
- a registry that is down gives one warning and the run builds locally;
- two workers pushing the same key each push a complete, self-consistent artifact; the
  tag ends on one of them (no partial entry can exist: the manifest goes last).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.cache import sha256_file
from ..core.config import RemoteSpec
from ..core.errors import RegistryError
from ..core.progress import console
from ..core.registry import Registry
from .outcome import BuildOutcome

ARTIFACT_TYPE = "application/vnd.factory.build.v1"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
TITLE = "org.opencontainers.image.title"
KEY_ANNOTATION = "io.factory.build-key"


class RemoteCache:
    """Build cache entries in the registry ``spec`` names, through ``registry`` (a client of
    ``spec.address``). Safe to call from several cells at once (each call is independent)."""

    def __init__(self, spec: RemoteSpec, registry: Registry) -> None:
        self.spec, self.registry = spec, registry
        self._warned = False

    def _warn(self, message: str) -> None:
        console.print(f"warning: remote cache {self.spec.address}/{self.spec.repository}: {message}")

    def _down(self, err: RegistryError) -> None:
        if not self._warned:  # once per run: every cell would say the same
            self._warned = True
            self._warn(f"{err.problem}; building locally")

    def has(self, key: str) -> bool:
        """Whether the registry holds an entry tagged ``key`` (False when it is down)."""
        try:
            return self.registry.manifest(self.spec.repository, key) is not None
        except RegistryError as e:
            self._down(e)
            return False

    def fetch(self, key: str, work: Path) -> bool:
        """Download the entry ``key`` into the empty directory ``work`` and check it; True
        when ``work`` now holds a sound entry (its ``outcome.json`` ok, the wheel hashing
        to it). False, with a warning, for an entry that fails a check; False when there
        is none or the registry is down."""
        try:
            found = self.registry.manifest(self.spec.repository, key)
            if found is None:
                return False
            body = found.body
            if body.get("annotations", {}).get(KEY_ANNOTATION) != key or body.get("artifactType") != ARTIFACT_TYPE:
                self._warn(f"entry {key[:16]} is not a factory build entry for that key; refused, building it")
                return False
            for layer in body.get("layers", []):
                name = str(layer.get("annotations", {}).get(TITLE, ""))
                if not name or "/" in name or name.startswith("."):
                    self._warn(f"entry {key[:16]} names a file {name!r}; refused, building it")
                    return False
                (work / name).write_bytes(self.registry.blob(self.spec.repository, str(layer["digest"])))
        except RegistryError as e:
            if "another sha256" in e.problem:
                self._warn(f"entry {key[:16]}: {e.problem}; refused, building it")
            else:
                self._down(e)
            return False
        try:
            outcome = BuildOutcome.from_json(json.loads((work / "outcome.json").read_text()))
            sound = outcome.ok and (work / outcome.filename).is_file() and sha256_file(work / outcome.filename) == outcome.sha256
        except (OSError, ValueError):
            sound = False
        if not sound:
            self._warn(f"entry {key[:16]}: its wheel does not match its outcome.json; refused, building it")
        else:
            console.print(f"{outcome.name}=={outcome.version} for {outcome.target}: from the remote cache ({key[:16]})")
        return sound

    def push(self, key: str, entry: Path) -> str | None:
        """Push the local entry directory ``entry`` (named ``key``) as the artifact tagged
        ``key``; returns its manifest digest, or None in pull mode or when the registry is
        down (a warning)."""
        if not self.spec.push:
            return None
        try:
            config = self.registry.put_blob(self.spec.repository, EMPTY_DATA)
            layers = []
            for path in sorted(p for p in entry.iterdir() if p.is_file()):
                data = path.read_bytes()
                digest = self.registry.put_blob(self.spec.repository, data)
                layers.append({"mediaType": "application/octet-stream", "digest": digest, "size": len(data), "annotations": {TITLE: path.name}})
            manifest = {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": ARTIFACT_TYPE,
                "config": {"mediaType": EMPTY, "digest": config, "size": len(EMPTY_DATA)},
                "layers": layers,
                "annotations": {KEY_ANNOTATION: key},
            }
            body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            return self.registry.put_manifest(self.spec.repository, key, body, MANIFEST)
        except RegistryError as e:
            self._down(e)
            return None


