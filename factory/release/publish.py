"""Publishing the wheelhouse to a package index with an upload API (pypiserver, devpi,
Artifactory, a PyPI-compatible server), with twine.

Every wheel of every target in ``<wheelhouse>/manifest.json`` (index and built ones) is
checked against the sha256 the manifest records and then uploaded once (a pure wheel in
several targets is one file), through twine's legacy upload API (``POST`` multipart, the
API PyPI's warehouse and pypiserver implement). Consumers then install with
``pip install --index-url <URL>/simple/ --require-hashes -r install/<target>.lock``.

Credentials: ``FACTORY_INDEX_USER`` / ``FACTORY_INDEX_PASSWORD`` (passed to twine through
its ``TWINE_USERNAME`` / ``TWINE_PASSWORD`` variables, never on the command line). Uploads
skip the files the index already lists with the same sha256 (its PEP 503 page,
``<URL>/simple/<name>/``), so a re-run after an interruption completes the set; a file
listed with another sha256 is an error (indexes refuse to overwrite a release file).

``publish_oci`` offers the same wheelhouse as one OCI artifact (artifact type
``application/vnd.factory.wheelhouse.v1``, OCI image spec v1.1 ``artifactType``) pushed with
Debian's oras (pinned like cosign, ``resources/oras.toml``): one blob per file, each wheel's
blob digest its sha256, titled with its path in the wheelhouse, so ``oras pull`` recreates
``<target>/<wheel>``, ``install/<target>.lock`` and ``manifest.json`` for teams without a
package index.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..core import debs, resources
from ..core.cache import sha256_file
from ..core.errors import HashMismatchError, PublishError
from ..core.registry import is_loopback

ARTIFACT_TYPE = "application/vnd.factory.wheelhouse.v1"
WHEEL_MEDIA_TYPE = "application/vnd.python.wheel"


@dataclass(frozen=True)
class Wheel:
    """A wheel to upload: its path and the sha256 hex the manifest records."""

    path: Path
    sha256: str


def target_wheels(wheelhouse: Path) -> list[Wheel]:
    """Every wheel file of every target of ``wheelhouse`` (``<target>/<filename>``, in that
    order), each checked against ``manifest.json``. Raises ``PublishError`` when the manifest
    is unreadable or a file is missing, ``HashMismatchError`` when a file differs from its
    recorded sha256."""
    try:
        manifest = json.loads((wheelhouse / "manifest.json").read_text())
        targets: dict[str, list[dict[str, str]]] = manifest["targets"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PublishError(f"{wheelhouse} has no readable manifest.json ({type(e).__name__})", "build it with `factory wheelhouse`") from None
    found = []
    for target, entries in sorted(targets.items()):
        for entry in sorted(entries, key=lambda e: e["filename"]):
            path = wheelhouse / target / entry["filename"]
            if not path.is_file():
                raise PublishError(f"{wheelhouse} lacks {target}/{entry['filename']}", "rebuild the wheelhouse with `factory wheelhouse`")
            actual = sha256_file(path)
            if actual != entry["sha256"]:
                raise HashMismatchError(f"{target}/{entry['filename']} has sha256 {actual}, manifest.json says {entry['sha256']}", "rebuild the wheelhouse")
            found.append(Wheel(path, actual))
    return found


def wheels_of(wheelhouse: Path) -> list[Wheel]:
    """``target_wheels`` with each filename once (a pure wheel sits in several targets), in
    filename order: what an index receives. Same errors as ``target_wheels``."""
    found: dict[str, Wheel] = {}
    for wheel in target_wheels(wheelhouse):
        found.setdefault(wheel.path.name, wheel)
    return [found[name] for name in sorted(found)]


def listed(simple_url: str, project: str) -> dict[str, str]:
    """{filename: sha256 hex} the index's PEP 503 page of ``project`` links to (``#sha256=``
    fragments; ``""`` when a link has none); {} when the project is unknown (404)."""
    r = requests.get(f"{simple_url}{canonicalize_name(project)}/", timeout=30)
    if r.status_code == 404:
        return {}
    r.raise_for_status()
    found = {}
    for href in re.findall(r'href="([^"]+)"', r.text):
        url, _, fragment = html.unescape(href).partition("#")
        found[url.rsplit("/", 1)[-1]] = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else ""
    return found


def publish(wheelhouse: Path, url: str, env: Mapping[str, str] | None = None) -> list[Wheel]:
    """Upload every wheel of ``wheelhouse`` to the index whose upload API is ``url``
    (pypiserver: its root, ``http://host:port/``; its PEP 503 pages under ``<url>/simple/``);
    returns every wheel of the wheelhouse (those the server already had are not re-sent). Raises ``PublishError`` when the server does not answer
    or refuses an upload (one line, twine's reason), plus the errors of ``wheels_of``.
    """
    env = os.environ if env is None else env
    wheels = wheels_of(wheelhouse)
    if not wheels:
        raise PublishError(f"{wheelhouse} has no wheels to publish", "build the wheelhouse first")
    simple_url = url.rstrip("/") + "/simple/"
    pending = []
    try:
        pages: dict[str, dict[str, str]] = {}
        for wheel in wheels:
            project = str(parse_wheel_filename(wheel.path.name)[0])
            there = pages.setdefault(project, listed(simple_url, project)).get(wheel.path.name)
            if there is None:
                pending.append(wheel)
            elif there and there != wheel.sha256:
                raise PublishError(f"{url} already has {wheel.path.name} with sha256 {there}, not {wheel.sha256}", "an index never replaces a file: bump the version or remove it on the server")
    except requests.RequestException as e:
        raise PublishError(f"the package index {url} does not answer ({type(e).__name__})", "start it or fix --to") from None
    if not pending:
        return wheels
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    child_env["TWINE_USERNAME"] = env.get("FACTORY_INDEX_USER", "factory")
    child_env["TWINE_PASSWORD"] = env.get("FACTORY_INDEX_PASSWORD", "")
    command = [sys.executable, "-m", "twine", "--no-color", "upload", "--non-interactive", "--disable-progress-bar", "--repository-url", url]
    proc = subprocess.run([*command, *[str(w.path) for w in pending]], capture_output=True, text=True, env=child_env, timeout=1800)
    if proc.returncode != 0:
        text = (proc.stderr + proc.stdout).strip().splitlines()
        start = next((i for i, line in enumerate(text) if "ERROR" in line or "HTTPError" in line), max(len(text) - 1, 0))
        reason = " ".join(text[start:]) or "no output"
        raise PublishError(f"twine could not upload to {url}: {' '.join(reason.split())[:300]}", "check the URL, FACTORY_INDEX_USER/FACTORY_INDEX_PASSWORD and the server's log")
    return wheels


def install_oras(cache_dir: Path) -> Path:
    """The oras binary from the sha256-pinned sid .deb, unpacked into the cache once.
    Raises ``PublishError`` when it cannot be fetched or its sha256 differs."""
    try:
        return debs.install_tool(resources.path("oras.toml"), cache_dir)
    except debs.DebError as e:
        raise PublishError(str(e), "check the Debian mirror, or the pin in factory/resources/oras.toml") from None


def publish_oci(wheelhouse: Path, reference: str, oras: Path, auth: tuple[str, str] | None = None) -> str:
    """Push ``wheelhouse`` (its wheels, install locks and manifest.json) as one OCI artifact
    tagged ``reference`` (``address/name:tag``) with oras; returns the manifest digest.

    Raises ``PublishError`` when oras fails (registry down, refused), plus the errors of
    ``wheels_of`` (files are checked against manifest.json first).
    """
    address, slash, rest = reference.partition("/")
    if not slash or ":" not in rest or "@" in rest:
        raise PublishError(f"{reference!r} is not address/name:tag", "give --to oci://REGISTRY/NAME:TAG")
    wheels = target_wheels(wheelhouse)
    locks = sorted(p.relative_to(wheelhouse).as_posix() for p in (wheelhouse / "install").glob("*.lock"))
    files = [f"{w.path.relative_to(wheelhouse).as_posix()}:{WHEEL_MEDIA_TYPE}" for w in wheels]
    files += [f"{lock}:text/plain" for lock in locks] + ["manifest.json:application/json"]
    command = [str(oras), "push", "--no-tty", "--artifact-type", ARTIFACT_TYPE, "--format", "json"]
    if is_loopback(address):
        command.append("--plain-http")
    stdin = None
    if auth:
        command += ["--username", auth[0], "--password-stdin"]
        stdin = auth[1]
    try:
        proc = subprocess.run([*command, reference, *files], cwd=wheelhouse, input=stdin, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PublishError(f"oras could not push {reference}: {e}", "check the oras install") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        raise PublishError(f"oras could not push {reference}: {lines[-1].removeprefix('Error: ')[:300]}", "check the registry (`factory registry status`) and its credentials")
    try:
        return str(json.loads(proc.stdout)["digest"])
    except (ValueError, KeyError) as e:
        raise PublishError(f"oras pushed {reference} but printed no digest ({type(e).__name__})", "check the oras version") from None
