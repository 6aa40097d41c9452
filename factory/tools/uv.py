"""The pinned uv, and ``uv pip compile`` run with it (the resolver of ``factory upgrade``).

uv is pinned by ``resources/constraints/uv.txt`` (version and wheel sha256s). The binary is
the development venv's own ``uv`` when it is that version (``constraints/host.txt`` pins the
same), else the pinned wheel's ``uv`` script for this host, from the index, hash-checked and
unpacked once into ``<cache>/uv/<wheel sha256>/uv``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import sys_tags

from ..core import atomic, resources
from ..core.config import Config
from ..core.errors import LockError, ResolutionError
from ..core.targets import Target
from ..index.client import Index
from ..locks.lockfile import Lock, read_lock
from .toolchain import tool_wheel

UV_LOCK = "constraints/uv.txt"
TIMEOUT = 900  # seconds for one uv pip compile (a 200-pin lock takes a few seconds warm)


def uv_lock() -> Lock:
    """The lock pinning uv (``resources/constraints/uv.txt``)."""
    return read_lock(resources.path(UV_LOCK))


def pinned_version() -> str:
    """The uv version factory resolves with (``"0.13.9"``)."""
    pin = uv_lock().pin("uv")
    if pin is None:  # a packaging bug, not a user error
        raise LockError(f"{resources.path(UV_LOCK)} does not pin uv", "reinstall factory")
    return pin.version


def _version_of(binary: Path) -> str | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError:
        return None
    m = re.match(r"uv (\S+)", out)
    return m.group(1) if m else None


def uv_binary(cfg: Config, index: Index) -> Path:
    """The path of the pinned uv (module docstring): the venv's ``uv`` beside
    ``sys.executable`` when ``uv --version`` is the pinned one, else the pinned wheel's,
    unpacked into the cache. Raises ``LockError``/``HashMismatchError``/
    ``IndexUnreachableError`` when the wheel has to be fetched and cannot be."""
    version = pinned_version()
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and _version_of(beside) == version:
        return beside
    wheel = tool_wheel(cfg, index, "uv", rank={t: i for i, t in enumerate(sys_tags())}, lock=uv_lock())
    root = cfg.cache_dir / "uv" / wheel.parent.name
    if (root / "uv").is_file():
        return root / "uv"

    def unpack(tmp: Path) -> None:
        with zipfile.ZipFile(wheel) as z:
            member = next((m for m in z.namelist() if re.fullmatch(r"uv-[^/]+\.data/scripts/uv", m)), None)
            if member is None:
                raise LockError(f"{wheel.name} holds no uv binary", "pin a uv release with binary wheels in uv.txt")
            (tmp / "uv").write_bytes(z.read(member))
        os.chmod(tmp / "uv", 0o755)

    atomic.replace_dir(root, unpack)
    return root / "uv"


def uv_platform(target: Target) -> str:
    """uv's ``--python-platform`` for a wheel target: ``x86_64-manylinux_2_28`` for
    ``manylinux_2_28_x86_64``, ``aarch64-unknown-linux-musl`` for ``musllinux_1_2_aarch64``."""
    if target.libc == "manylinux":
        return f"{target.arch}-manylinux_{target.floor[0]}_{target.floor[1]}"
    return f"{target.arch}-unknown-linux-musl"


@dataclass(frozen=True)
class Compiler:
    """``uv pip compile`` with the binary ``uv``, against the index ``index_url`` (TLS checked
    with ``ca_bundle``), caching under ``cache_dir``; no user or project uv configuration and
    no Python downloads."""

    uv: Path
    index_url: str
    cache_dir: Path
    ca_bundle: Path | None = None

    def compile(
        self, requirements: str, python: str, platform: str | None, *, hashes: bool = False, fmt: str = "requirements.txt", lowest_direct: bool = False
    ) -> str:
        """The resolution of ``requirements`` (requirements.in text) for CPython ``python``
        (``"3.14.8"``) on uv platform ``platform`` (``uv_platform``; None: ``--universal``),
        as uv writes it in ``fmt`` (``requirements.txt`` or ``pylock.toml``), with every
        file's sha256 when ``hashes``. ``lowest_direct`` takes the lowest version each
        requirement allows (uv ``--resolution lowest-direct``). Pre-releases are taken only
        where a requirement names one (``--prerelease explicit``): lowest-direct would
        otherwise pick ``2.12.0a1`` over ``2.12.0``.

        Raises ``ResolutionError`` whose problem is uv's own explanation (``stderr``, the
        "No solution found" derivation) when there is no resolution, or the index fails.
        """
        with tempfile.TemporaryDirectory(prefix="factory-uv-") as tmp:
            src, out = Path(tmp) / "requirements.in", Path(tmp) / ("pylock.toml" if fmt == "pylock.toml" else "requirements.txt")
            src.write_text(requirements)
            argv = [
                str(self.uv), "pip", "compile", "--quiet", "--no-config", "--no-python-downloads", "--no-header",
                "--python-version", python, "--index-url", self.index_url, "--cache-dir", str(self.cache_dir),
                "--format", fmt, "--prerelease", "explicit", "-o", str(out), str(src),
            ]  # fmt: skip
            argv += ["--universal"] if platform is None else ["--python-platform", platform]
            argv += ["--generate-hashes"] if hashes else []
            argv += ["--resolution", "lowest-direct"] if lowest_direct else []
            env = {**os.environ, "UV_NO_PROGRESS": "1", "NO_COLOR": "1"}
            if self.ca_bundle is not None:
                env["SSL_CERT_FILE"] = str(self.ca_bundle)
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
            except subprocess.TimeoutExpired:
                raise ResolutionError(f"uv pip compile took over {TIMEOUT} s for CPython {python} on {platform or 'every platform'}", "check the index") from None
            if done.returncode != 0:
                raise ResolutionError(uv_error(done.stderr), "see uv's explanation above")
            return out.read_text()


def uv_error(stderr: str) -> str:
    """uv's error output as one line: its ``error:`` and ``cause:`` lines joined, warnings
    (e.g. "the requested Python version is not available") left out."""
    lines = [ln.strip() for ln in stderr.splitlines()]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("error:")), 0)
    kept = [ln.removeprefix("error:").removeprefix("cause:").strip() for ln in lines[start:] if ln and not ln.startswith("warning:")]
    return " ".join(kept) or "uv pip compile failed without a message"
