"""cosign, the real one: installing Debian's package and running it with a local key.

cosign (github.com/sigstore/cosign, v3) signs a manifest digest and stores the signature in
the same repository under the tag ``sha256-<hex>`` (its fallback for registries without
the OCI referrers API, such as distribution 2.8); ``cosign attest`` does the same for
in-toto attestations in DSSE envelopes. No transparency log or Fulcio is used: signing is
``--tlog-upload=false --use-signing-config=false`` and verification
``--insecure-ignore-tlog=true``, so everything stays inside the registry and the key pair.

The key is ``FACTORY_SIGNING_KEY`` (a cosign key file, or a KMS URI cosign supports:
``awskms://``, ``gcpkms://``, ``azurekms://``, ``hashivault://``, ``k8s://``), its password
``COSIGN_PASSWORD``; without one a password-less pair is generated in the cache once.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import debs, resources
from ..core.errors import SigningError

KMS_SCHEMES = ("awskms://", "gcpkms://", "azurekms://", "hashivault://", "k8s://")
FIX_INSTALL = "check the Debian mirror, or the pin in factory/resources/cosign.toml"


def install(cache_dir: Path) -> Path:
    """The cosign binary, unpacked from the sha256-pinned sid .deb
    (``resources/cosign.toml``) into ``<cache_dir>/tools/cosign-<version>/cosign`` the first
    time. Raises ``SigningError`` when the host arch has no pin, the download fails or its
    sha256 differs."""
    try:
        return debs.install_tool(resources.path("cosign.toml"), cache_dir)
    except debs.DebError as e:
        raise SigningError(str(e), FIX_INSTALL) from None


@dataclass(frozen=True)
class SigningKey:
    """``key`` is what cosign's ``--key`` takes (a file path or KMS URI); ``public_key`` the
    PEM public key file consumers verify with; ``generated`` whether the factory made it."""

    key: str
    public_key: Path
    generated: bool


class Cosign:
    """Runs the cosign ``binary``; ``auth`` (user, password) is passed for registries with
    basic auth. ``password`` unlocks an encrypted key file (cosign's ``COSIGN_PASSWORD``)."""

    def __init__(self, binary: Path, auth: tuple[str, str] | None = None, password: str = "") -> None:
        self.binary = binary
        self.auth = auth
        self.password = password

    def _run(self, args: list[str], what: str, fix: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COSIGN_PASSWORD": self.password, "COSIGN_YES": "true"}
        try:
            proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SigningError(f"cosign could not {what}: {e}", FIX_INSTALL) from None
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.startswith("Error:")] or proc.stderr.strip().splitlines() or ["no output"]
            raise SigningError(f"cosign could not {what}: {lines[-1].removeprefix('Error: ')[:300]}", fix)
        return proc

    def _registry_args(self) -> list[str]:
        args = ["--allow-insecure-registry"]
        if self.auth:
            args += ["--registry-username", self.auth[0], "--registry-password", self.auth[1]]
        return args

    def generate_key_pair(self, directory: Path) -> tuple[Path, Path]:
        """A new pair ``directory/cosign.key`` (encrypted with ``password``, possibly empty)
        and ``cosign.pub``, written into a temporary sibling and renamed in."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
        try:
            self._run(["generate-key-pair"], "generate a key pair", "check the cache directory", cwd=staged)
            shutil.rmtree(directory, ignore_errors=True)
            os.replace(staged, directory)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return directory / "cosign.key", directory / "cosign.pub"

    def public_key(self, key: str) -> bytes:
        """The PEM public key of ``key`` (file or KMS URI)."""
        return self._run(["public-key", "--key", key], f"read the public key of {key}", "check FACTORY_SIGNING_KEY and COSIGN_PASSWORD").stdout.encode()

    def sign(self, ref: str, key: str) -> None:
        """Sign the manifest ``ref`` (``address/name@sha256:…``) with ``key``."""
        self._run(
            ["sign", "--yes", "--key", key, "--use-signing-config=false", "--tlog-upload=false", *self._registry_args(), ref],
            f"sign {ref}",
            "check the key (FACTORY_SIGNING_KEY, COSIGN_PASSWORD) and that the registry accepts pushes",
        )

    def verify(self, ref: str, public_key: Path) -> list[dict[str, Any]]:
        """Check ``ref``'s signatures against ``public_key``; returns cosign's parsed claims.

        Raises ``SigningError`` when none verifies (unsigned, foreign key, another digest)."""
        proc = self._run(
            ["verify", "--key", str(public_key), "--insecure-ignore-tlog=true", "--output", "json", *self._registry_args(), ref],
            f"verify the signature of {ref} with {public_key.name}",
            "the image is not one this key signed: do not deploy it; re-sign or use the right public key",
        )
        return _json_lines(proc.stdout)

    def attest(self, ref: str, key: str, predicate: Path, predicate_type: str) -> None:
        """Attach the in-toto attestation of ``predicate`` (a JSON file) of ``predicate_type``
        (``slsaprovenance1``, ``cyclonedx``, … or a URI) to ``ref``, signed with ``key``."""
        self._run(
            [
                "attest", "--yes", "--key", key, "--type", predicate_type, "--predicate", str(predicate),
                "--use-signing-config=false", "--tlog-upload=false", *self._registry_args(), ref,
            ],
            f"attest {predicate_type} on {ref}",
            "check the key and that the registry accepts pushes",
        )

    def verify_attestation(self, ref: str, public_key: Path, predicate_type: str) -> list[dict[str, Any]]:
        """The in-toto statements of ``predicate_type`` attached to ``ref`` and signed by
        ``public_key`` (decoded from their DSSE envelopes). Raises ``SigningError`` when none
        verifies (missing, tampered, or signed by another key)."""
        proc = self._run(
            [
                "verify-attestation", "--key", str(public_key), "--type", predicate_type,
                "--insecure-ignore-tlog=true", *self._registry_args(), ref,
            ],
            f"verify the {predicate_type} attestation of {ref} with {public_key.name}",
            "the attestation is missing, altered or signed by another key: rebuild and re-attest",
        )
        statements = []
        for envelope in _json_lines(proc.stdout):
            statements.append(json.loads(base64.b64decode(envelope["payload"])))
        return statements


def _json_lines(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("{", "[")):
            parsed = json.loads(line)
            out.extend(parsed if isinstance(parsed, list) else [parsed])
    return out


def signing_key(cosign: Cosign, cache_dir: Path, public_key_out: Path, env: Mapping[str, str] | None = None) -> SigningKey:
    """The key to sign with, its public key written to ``public_key_out`` (atomically).

    ``FACTORY_SIGNING_KEY`` in ``env`` names a cosign key file or KMS URI; without it, a pair
    made once in ``<cache_dir>/signing/`` is used. Raises ``SigningError`` when the
    configured key file does not exist or cosign cannot read it.
    """
    env = os.environ if env is None else env
    configured = env.get("FACTORY_SIGNING_KEY", "").strip()
    generated = False
    if configured:
        if not configured.startswith(KMS_SCHEMES) and not Path(configured).is_file():
            raise SigningError(f"FACTORY_SIGNING_KEY names {configured}, which does not exist", "point it at a cosign key file or a KMS URI")
        key = configured
    else:
        directory = cache_dir / "signing"
        if not (directory / "cosign.key").is_file():
            cosign.generate_key_pair(directory)
            generated = True
        key = str(directory / "cosign.key")
    pem = cosign.public_key(key)
    public_key_out.parent.mkdir(parents=True, exist_ok=True)
    staged = public_key_out.with_name(f".{public_key_out.name}.tmp")
    staged.write_bytes(pem)
    os.replace(staged, public_key_out)
    return SigningKey(key, public_key_out, generated)
