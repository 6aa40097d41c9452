"""QEMU binfmt_misc for aarch64: checking it, and installing forky's QEMU 11.1 handler.

The kernel's binfmt_misc interface is documented in
Documentation/admin-guide/binfmt-misc.rst; the entry is ``:name:M::magic:mask:interpreter:flags``.
Flag ``F`` (fix-binary) makes the handler usable inside containers.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import requests

from .cache import sha256_file
from .errors import BinfmtMissingError

BINFMT = Path("/proc/sys/fs/binfmt_misc")


def _root() -> Path:
    # FACTORY_BINFMT_DIR lets tests point the check at a directory without the entry.
    return Path(os.environ.get("FACTORY_BINFMT_DIR", BINFMT))
ENTRY = "qemu-aarch64"
FIX = "run `make binfmt` (or `.venv/bin/factory binfmt` as root) to register QEMU for aarch64"


@dataclass(frozen=True)
class BinfmtStatus:
    """State of the aarch64 handler: enabled?, interpreter path, flags (e.g. ``PF``)."""

    enabled: bool
    interpreter: str
    flags: str


def status(root: Path | None = None) -> BinfmtStatus | None:
    """Read ``<root>/qemu-aarch64``; None when no such entry is registered."""
    root = root or _root()
    try:
        text = (root / ENTRY).read_text()
    except OSError:
        return None
    fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    return BinfmtStatus(
        enabled=text.startswith("enabled"),
        interpreter=fields.get("interpreter", ""),
        flags=fields.get("flags:", fields.get("flags", "")).strip(),
    )


def require_arm64(root: Path | None = None) -> BinfmtStatus | None:
    """Raise ``BinfmtMissingError`` unless arm64 binaries can run here.

    Native aarch64 hosts need nothing (returns None). On x86_64 the handler must be
    registered, enabled and carry the ``F`` flag, so containers can use it.
    """
    if platform.machine() == "aarch64":
        return None
    st = status(root)
    if st is None or not st.enabled:
        raise BinfmtMissingError("no QEMU binfmt_misc handler for arm64 is registered", FIX)
    if "F" not in st.flags:
        raise BinfmtMissingError(f"the arm64 binfmt handler lacks the F flag (flags {st.flags!r})", FIX)
    return st


def _spec() -> dict[str, Any]:
    return tomllib.loads(resources.files("factory").joinpath("resources/qemu.toml").read_text())


def install(cache_dir: Path) -> str:
    """Download forky's qemu-user .deb (sha256-pinned), extract qemu-aarch64 and register it.

    Needs root. Replaces an existing ``qemu-aarch64`` entry (e.g. bookworm's QEMU 7.2 that
    ``qemu-user-static`` registers) unless it already is this one. Returns the interpreter path.
    Raises ``BinfmtMissingError`` on a hash mismatch or when registration is refused.
    """
    spec = _spec()
    target = Path(spec["install-path"])
    current = status()
    if current is not None and current.enabled and current.interpreter == str(target) and "F" in current.flags:
        return str(target)
    if not target.exists():
        deb = cache_dir / "qemu" / Path(spec["url"]).name
        if not deb.exists() or sha256_file(deb) != spec["sha256"]:
            deb.parent.mkdir(parents=True, exist_ok=True)
            with requests.get(spec["url"], stream=True, timeout=(15, 300)) as r:
                r.raise_for_status()
                with open(str(deb) + ".part", "wb") as f:
                    for chunk in r.iter_content(1 << 20):
                        f.write(chunk)
            os.replace(str(deb) + ".part", deb)
        actual = sha256_file(deb)
        if actual != spec["sha256"]:
            deb.unlink()
            raise BinfmtMissingError(f"{deb.name}: expected sha256 {spec['sha256']}, got {actual}", "check the Debian mirror")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_suffix(".tmp")
            staged.write_bytes((Path(tmp) / spec["member"]).read_bytes())
            staged.chmod(0o755)
            os.replace(staged, target)
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
    if (BINFMT / ENTRY).exists():
        (BINFMT / ENTRY).write_text("-1")
    line = f":{ENTRY}:M::{spec['magic']}:{spec['mask']}:{target}:{spec['flags']}"
    try:
        (BINFMT / "register").write_text(line)
    except OSError as e:
        raise BinfmtMissingError(f"binfmt_misc refused the registration: {e.strerror}", "run as root") from None
    return str(target)
