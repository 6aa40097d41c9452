"""One file out of a sha256-pinned Debian package: download the .deb, check it, unpack it.

The .deb format is documented in deb(5); ``dpkg-deb -x`` unpacks its data member. Used for
tools taken from a newer Debian suite than the host's (cosign from sid), without apt or root.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import tomllib
from pathlib import Path

import requests

from .cache import sha256_file


class DebError(Exception):
    """The .deb cannot be downloaded, has another sha256, or lacks the member (the caller
    turns this into its own ``FactoryError``)."""


def fetch(url: str, sha256: str, directory: Path) -> Path:
    """The .deb at ``url`` in ``directory`` (downloaded unless already there with this
    ``sha256`` hex). Raises ``DebError`` on a network error or a sha256 mismatch."""
    deb = directory / Path(url).name
    if deb.exists() and sha256_file(deb) == sha256:
        return deb
    directory.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(prefix=f".{deb.name}.tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f, requests.get(url, stream=True, timeout=(15, 300)) as r:
            r.raise_for_status()
            for chunk in r.iter_content(1 << 20):
                f.write(chunk)
        actual = sha256_file(Path(staged))
        if actual != sha256:
            raise DebError(f"{deb.name}: expected sha256 {sha256}, got {actual}")
        os.replace(staged, deb)
    except requests.RequestException as e:
        raise DebError(f"cannot download {url}: {str(e).splitlines()[0][:160]}") from None
    finally:
        Path(staged).unlink(missing_ok=True)
    return deb


def extract_member(deb: Path, member: str, target: Path, mode: int = 0o755) -> Path:
    """Unpack ``member`` (``./usr/bin/x``) of ``deb`` to ``target`` atomically (temp + rename).

    Raises ``DebError`` when dpkg-deb fails or the package has no such member.
    """
    with tempfile.TemporaryDirectory(prefix="factory-deb-") as tmp:
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), tmp], capture_output=True, text=True)
        source = Path(tmp) / member
        if proc.returncode != 0 or not source.is_file():
            raise DebError(f"{deb.name} has no {member} ({proc.stderr.strip()[:160] or 'dpkg-deb -x failed'})")
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.tmp")
        staged.write_bytes(source.read_bytes())
        staged.chmod(mode)
        os.replace(staged, target)
    return target


ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}


def install_tool(spec: Path, cache_dir: Path) -> Path:
    """The program a tool spec (a resource TOML: ``version``, ``member`` and per Debian arch
    ``url`` + ``sha256``) describes, unpacked into ``<cache_dir>/tools/<name>-<version>/``
    the first time (the .deb is kept in ``<cache_dir>/debs``). Raises ``DebError`` when the
    host arch has no pin, the download fails or the sha256 differs."""
    data = tomllib.loads(spec.read_text())
    arch = ARCHES.get(platform.machine())
    if arch is None or arch not in data:
        raise DebError(f"{spec.name} has no pin for host arch {platform.machine()}")
    name = Path(data["member"]).name
    home = cache_dir / "tools" / f"{name}-{data['version']}"
    binary, stamp = home / name, home / "deb.sha256"
    if binary.is_file() and stamp.is_file() and stamp.read_text() == data[arch]["sha256"]:
        return binary
    deb = fetch(data[arch]["url"], data[arch]["sha256"], cache_dir / "debs")
    extract_member(deb, data["member"], binary)
    stamp.write_text(data[arch]["sha256"])
    return binary
