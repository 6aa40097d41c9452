"""The OCI registry: starting Debian's ``docker-registry`` on loopback, and the HTTP API.

Requests follow the OCI distribution spec (``/v2/<name>/manifests/<reference>``);
digests are the registry's ``Docker-Content-Digest``. The multi-arch index is a Docker
manifest list (``application/vnd.docker.distribution.manifest.list.v2+json``), the form
``docker manifest push`` writes and every client reads.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

import requests

from .errors import RegistryError

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([MANIFEST_V2, MANIFEST_LIST_V2, OCI_MANIFEST, OCI_INDEX])


@dataclass(frozen=True)
class ManifestInfo:
    """A manifest as the registry stores it: digest, media type, size in bytes, parsed body,
    and the exact bytes served (``raw``; re-tagging must push these, not a re-serialization)."""

    digest: str
    media_type: str
    size: int
    body: dict[str, Any]
    raw: bytes = b""

    def compressed_size(self) -> int:
        """Sum of config and layer blob sizes in bytes (an image manifest only)."""
        blobs = [self.body.get("config", {}), *list(self.body.get("layers", []))]
        return sum(int(b.get("size", 0)) for b in blobs)


def credentials(
    address: str, env: Mapping[str, str] | None = None, docker_login: Callable[[str], tuple[str, str] | None] | None = None
) -> tuple[str, str] | None:
    """(user, password) for the registry at ``address``, or None.

    From ``FACTORY_REGISTRY_USER`` / ``FACTORY_REGISTRY_PASSWORD``, else from
    ``docker_login(address)`` (the pipeline passes ``engine.docker_login_credentials``,
    which reads the Docker config that ``docker login`` writes). The password is never
    logged or put into an error message.
    """
    env = os.environ if env is None else env
    user, password = env.get("FACTORY_REGISTRY_USER"), env.get("FACTORY_REGISTRY_PASSWORD")
    if user and password:
        return user, password
    return docker_login(address) if docker_login is not None else None


def is_loopback(address: str) -> bool:
    """True when the registry ``address`` (``host:port``, ``[v6]:port`` or a bare host) is on
    loopback (127.0.0.0/8, ``::1`` or ``localhost``), where it is spoken to in plain HTTP."""
    host = urllib.parse.urlsplit(f"//{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Registry:
    """HTTP client for the registry at ``address`` (``host:port``), plain HTTP on loopback.

    ``auth`` is (user, password) for HTTP basic auth (distribution's htpasswd).
    """

    def __init__(self, address: str, auth: tuple[str, str] | None = None) -> None:
        self.address = address
        self.auth = auth
        scheme = "http" if is_loopback(address) else "https"
        self.base = f"{scheme}://{address}/v2/"
        self.session = requests.Session()
        if auth:
            self.session.auth = auth

    def _fail(self, what: str, err: object) -> RegistryError:
        return RegistryError(
            f"registry {self.address} {what}: {str(err).splitlines()[0][:200] if str(err) else type(err).__name__}",
            "start it (`factory registry start` for the local one) or fix [tool.factory] registry",
        )

    def ping(self) -> bool:
        """True when ``/v2/`` answers 200 (or 401: up, but wants credentials)."""
        try:
            r = self.session.get(self.base, timeout=3)
        except requests.RequestException:
            return False
        return r.status_code in (200, 401)

    def check(self) -> None:
        """Raise ``RegistryError`` unless the registry answers and accepts our credentials."""
        try:
            r = self.session.get(self.base, timeout=5)
        except requests.RequestException as e:
            raise self._fail("is down", e) from None
        if r.status_code == 401:
            raise RegistryError(
                f"registry {self.address} rejected the credentials",
                "set FACTORY_REGISTRY_USER / FACTORY_REGISTRY_PASSWORD or `docker login`",
            )
        if r.status_code != 200:
            raise self._fail("answered", f"HTTP {r.status_code} on /v2/")

    def manifest(self, repository: str, reference: str) -> ManifestInfo | None:
        """The manifest ``repository:reference`` (tag or digest), or None if unknown."""
        url = f"{self.base}{repository}/manifests/{reference}"
        try:
            r = self.session.get(url, headers={"Accept": ACCEPT}, timeout=30)
        except requests.RequestException as e:
            raise self._fail("is down", e) from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self._fail(f"refused GET {repository}/manifests/{reference}", f"HTTP {r.status_code}")
        return ManifestInfo(
            digest=r.headers.get("Docker-Content-Digest", ""),
            media_type=r.headers.get("Content-Type", "").split(";")[0],
            size=len(r.content),
            body=r.json(),
            raw=r.content,
        )

    def manifest_of_ref(self, ref: str) -> ManifestInfo | None:
        """The manifest a ``<address>/<repository>@sha256:…`` reference names, or None when
        the reference is not pinned in this registry or the registry no longer holds it."""
        prefix = f"{self.address}/"
        repository, sep, digest = ref.removeprefix(prefix).partition("@")
        if not ref.startswith(prefix) or not sep:
            return None
        return self.manifest(repository, digest)

    def blob(self, repository: str, digest: str) -> bytes:
        """The blob ``digest`` of ``repository`` (a config, say), checked against its digest.

        Raises ``RegistryError`` when it is missing or its sha256 differs.
        """
        url = f"{self.base}{repository}/blobs/{digest}"
        try:
            r = self.session.get(url, timeout=60)
        except requests.RequestException as e:
            raise self._fail("is down", e) from None
        if r.status_code != 200:
            raise self._fail(f"refused GET {repository}/blobs/{digest}", f"HTTP {r.status_code}")
        if "sha256:" + hashlib.sha256(r.content).hexdigest() != digest:
            raise self._fail(f"served blob {digest} of {repository} with another sha256", "corrupt storage")
        return r.content

    def put_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` as one blob (monolithic upload: POST then PUT ``?digest=``,
        OCI distribution spec); returns its digest. Raises ``RegistryError`` if refused."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._upload(repository, digest, data)
        return digest

    def put_blob_file(self, repository: str, path: Path, digest: str) -> None:
        """Upload the file ``path`` (streamed, not read into memory) as the blob ``digest``
        (``sha256:…``, which the registry checks), unless ``repository`` already holds it.
        Raises ``RegistryError`` if refused (the file does not hash to ``digest``, say)."""
        if self.has_blob(repository, digest):
            return
        with open(path, "rb") as f:
            self._upload(repository, digest, f)

    def _upload(self, repository: str, digest: str, data: bytes | BinaryIO) -> None:
        try:
            r = self.session.post(f"{self.base}{repository}/blobs/uploads/", timeout=30)
            if r.status_code != 202:
                raise self._fail(f"refused a blob upload to {repository}", f"HTTP {r.status_code} {r.text[:200]}")
            location = urljoin(self.base, r.headers["Location"])
            sep = "&" if "?" in location else "?"
            r = self.session.put(
                f"{location}{sep}digest={digest}",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=600,
            )
        except requests.RequestException as e:
            raise self._fail("is down", e) from None
        if r.status_code != 201:
            raise self._fail(f"refused blob {digest} of {repository}", f"HTTP {r.status_code} {r.text[:200]}")

    def has_blob(self, repository: str, digest: str) -> bool:
        """True when ``repository`` holds the blob ``digest`` (``HEAD`` answers 200).
        Raises ``RegistryError`` when the registry is down."""
        try:
            r = self.session.head(f"{self.base}{repository}/blobs/{digest}", timeout=30)
        except requests.RequestException as e:
            raise self._fail("is down", e) from None
        return r.status_code == 200

    def mount_blob(self, repository: str, digest: str, source: str) -> None:
        """Make the blob ``digest`` of repository ``source`` one of ``repository``'s too:
        a cross-repository mount (``POST …/blobs/uploads/?mount=&from=``, OCI distribution
        spec), no bytes moved; where the registry declines to mount, the blob is copied.
        Raises ``RegistryError`` when ``source`` lacks the blob or a request is refused."""
        if self.has_blob(repository, digest):
            return
        try:
            r = self.session.post(f"{self.base}{repository}/blobs/uploads/", params={"mount": digest, "from": source}, timeout=30)
        except requests.RequestException as e:
            raise self._fail("is down", e) from None
        if r.status_code == 201:
            return
        if r.status_code == 202:  # not mounted: an upload session was opened instead; end it and copy
            self.session.delete(urljoin(self.base, r.headers.get("Location", "")), timeout=30)
            self._upload(repository, digest, self.blob(source, digest))
            return
        raise self._fail(f"refused to mount {source}@{digest} into {repository}", f"HTTP {r.status_code} {r.text[:200]}")

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        """Push the manifest ``body`` (exact bytes) as ``repository:tag``; returns its digest.

        Raises ``RegistryError`` if refused (a blob it names is missing, say).
        """
        url = f"{self.base}{repository}/manifests/{tag}"
        try:
            r = self.session.put(url, data=body, headers={"Content-Type": media_type}, timeout=30)
        except requests.RequestException as e:
            raise self._fail("is down", e) from None
        if r.status_code not in (200, 201):
            raise self._fail(f"refused the manifest {repository}:{tag}", f"HTTP {r.status_code} {r.text[:200]}")
        return r.headers["Docker-Content-Digest"]

    def tag(self, repository: str, digest: str, tag: str) -> str:
        """Point ``repository:tag`` at the manifest ``digest`` (an image or index already in
        ``repository``) by pushing its exact bytes again: no blob moves. Returns the digest.

        Raises ``RegistryError`` when the registry is down, does not hold ``digest``, or the
        pushed bytes come back under another digest.
        """
        found = self.manifest(repository, digest)
        if found is None:
            raise RegistryError(f"registry {self.address} has no manifest {repository}@{digest}", "push the images again (`factory images`)")
        pushed = self.put_manifest(repository, tag, found.raw, found.media_type)
        if pushed != digest:
            raise RegistryError(f"registry {self.address} stored {repository}:{tag} as {pushed}, not {digest}", "check the registry")
        return pushed

    def put_manifest_list(self, repository: str, tag: str, entries: list[tuple[ManifestInfo, str]]) -> str:
        """Push a manifest list tagged ``tag`` over ``entries`` of (image manifest, arch).

        Returns the list's digest (``sha256:…``). Raises ``RegistryError`` if refused.
        """
        body = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_LIST_V2,
            "manifests": [
                {
                    "mediaType": m.media_type,
                    "digest": m.digest,
                    "size": m.size,
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for m, arch in entries
            ],
        }
        return self.put_manifest(repository, tag, json.dumps(body, indent=3).encode(), MANIFEST_LIST_V2)


class LocalRegistry:
    """Debian's ``docker-registry`` (distribution 2.8) serving ``data_dir`` on ``address``,
    with basic auth from a bcrypt ``htpasswd`` file when one is given.

    Started detached, so it outlives the factory process like any daemon; ``stop`` ends it.
    """

    def __init__(self, address: str, state_dir: Path, htpasswd: Path | None = None) -> None:
        self.address = address
        self.state_dir = state_dir
        self.htpasswd = htpasswd
        self.pidfile = state_dir / "registry.pid"

    def config_text(self) -> str:
        """The distribution configuration (YAML, written as JSON which YAML accepts)."""
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.state_dir / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.address},
        }
        if self.htpasswd is not None:
            config["auth"] = {"htpasswd": {"realm": "factory", "path": str(self.htpasswd)}}
        return json.dumps(config, indent=2)

    def start(self, timeout: float = 20.0) -> None:
        """Start the registry unless ``/v2/`` already answers. Raises ``RegistryError``."""
        if Registry(self.address).ping():
            return
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RegistryError(
                "docker-registry is not installed",
                "apt-get install docker-registry (or `make deps`), or set registry-local = false",
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "config.yml"
        config.write_text(self.config_text())
        log = open(self.state_dir / "registry.log", "ab")  # noqa: SIM115 (handed to the detached process)
        proc = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Registry(self.address).ping():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RegistryError(
            f"docker-registry did not come up on {self.address} (see {self.state_dir / 'registry.log'})",
            "free the port or change [tool.factory] registry",
        )

    def stop(self) -> None:
        """Stop a registry this class started (pid file); no-op otherwise."""
        try:
            pid = int(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return
        try:
            os.kill(pid, 15)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
        self.pidfile.unlink(missing_ok=True)
