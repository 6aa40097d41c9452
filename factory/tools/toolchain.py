"""The pinned toolchain (``resources/constraints/toolchain.txt``): pip, setuptools, wheel, build,
pip-tools, cibuildwheel and auditwheel with their dependencies, each with hashes.

Every pip install the factory performs goes through it: the host venv is constrained to
it (``constraints/host.txt``) and containers install it with ``--require-hashes``.
"""

from __future__ import annotations

import os
import platform
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import parse_wheel_filename

from ..core import atomic, resources
from ..core.config import Config
from ..core.errors import LockError
from ..core.targets import Target, parse_target
from ..index.client import Index
from ..index.selection import best_ranked
from ..locks.lockfile import Lock, read_lock


def toolchain_lock(cfg: Config) -> Lock:
    """The validated toolchain lock (``LockError`` as for any lock)."""
    return read_lock(cfg.toolchain)


def tool_wheel(cfg: Config, index: Index, name: str, rank: Mapping[Tag, int] | None = None, lock: Lock | None = None) -> Path:
    """The toolchain's wheel of ``name`` (e.g. ``pip``) in the cache, hash-verified.

    ``rank`` (tag -> preference, 0 best) says which wheels fit; the default is the first
    configured target's (right for the pure-Python tools containers install). ``lock`` is
    the lock that pins ``name`` (default: the toolchain's). A cached file whose sha256 the
    lock allows and whose tags fit is used without reading the index.

    Raises ``LockError`` if the lock does not pin ``name`` or the index has no fitting
    wheel of it, ``HashMismatchError``/``IndexUnreachableError`` from the download.
    """
    lock = toolchain_lock(cfg) if lock is None else lock
    pin = lock.pin(name)
    if pin is None:
        raise LockError(f"{lock.path} does not pin {name}", "add it to the toolchain.in beside that lock and run `factory lock --toolchain`")
    rank = cfg.targets[0].rank(cfg.python) if rank is None else rank
    for sha in sorted(pin.hashes):  # a cached, hash-checked copy needs no index
        cached = index.cache.find(sha)
        if cached is not None and cached.name.endswith(".whl") and any(t in rank for t in parse_wheel_filename(cached.name)[3]):
            return cached
    found = best_ranked(pin, rank, index.files(name, pin.version))
    if found is None:
        raise LockError(f"no fitting wheel of {name}=={pin.version} on {index.url}", f"pin a {name} version the index serves for it")
    return index.fetch(found[0], found[1])


def tool_requirements(cfg: Config, names: tuple[str, ...]) -> str:
    """A ``--require-hashes`` requirements text for ``names``, copied from the toolchain lock.

    Raises ``LockError`` if the toolchain does not pin one of them.
    """
    lock = toolchain_lock(cfg)
    lines = []
    for name in names:
        pin = lock.pin(name)
        if pin is None:
            raise LockError(f"{cfg.toolchain} does not pin {name}", "add it to the toolchain.in beside that lock and run `factory lock --toolchain`")
        hashes = " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes))
        lines.append(f"{pin.name}=={pin.version} {hashes}")
    return "\n".join(lines) + "\n"


ZIG_WRAPPER = "sdist/zig-cc.sh"  # the resource installed as each of WRAPPED_TOOLS in zig_root()
WRAPPED_TOOLS = ("cc", "c++", "ar", "ranlib", "ld")


def zig_target(target: Target) -> str:
    """zig's ``-target`` for a wheel target: its glibc floor (``aarch64-linux-gnu.2.28``) for
    manylinux, ``<arch>-linux-musl`` for musllinux."""
    if target.libc == "manylinux":
        return f"{target.arch}-linux-gnu.{target.floor[0]}.{target.floor[1]}"
    return f"{target.arch}-linux-musl"


def zig_root(cfg: Config, index: Index, machine: str | None = None) -> Path:
    """The toolchain's ziglang wheel for this host (or for a Docker host whose engine runs
    on ``machine``, ``x86_64``/``aarch64``: its build containers run that zig), unpacked once
    into the cache.

    Returns ``<cache>/zig/<wheel sha256>-<wrapper sha256[:16]>/``, holding ``zig/`` (the
    wheel's ``ziglang`` directory: the static ``zig`` binary and its ``lib/``) and ``bin/cc``,
    ``bin/c++``, ``bin/ar``, ``bin/ranlib``, ``bin/ld`` (copies of the ``sdist/zig-cc.sh`` resource), mounted read-only at
    ``/opt/factory/zig`` and ``/opt/factory/bin`` in builders. The directory is named by the
    wheel and the wrapper, so an edited wrapper is written out afresh. Built in a temporary
    sibling and renamed (``atomic.replace_dir``), so a killed run leaves no half tree.

    Raises ``LockError`` if the toolchain does not pin ziglang or the index has no wheel of
    it for this host, plus download errors and ``OutputError``.
    """
    if machine is None or machine == platform.machine():
        rank = {t: i for i, t in enumerate(sys_tags())}
    else:
        rank = parse_target(f"manylinux_2_28_{machine}").rank(cfg.python)
    path = tool_wheel(cfg, index, "ziglang", rank=rank)
    wrapper = resources.path(ZIG_WRAPPER)
    # FileCache keeps each file in a directory named by its sha256, checked by tool_wheel
    root = cfg.cache_dir / "zig" / f"{path.parent.name}-{resources.digest(ZIG_WRAPPER)[:16]}"
    if (root / "zig" / "zig").is_file():
        return root

    def unpack(tmp: Path) -> None:
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if member.startswith("ziglang/") and not member.endswith("/"):
                    z.extract(member, tmp)
        (tmp / "ziglang").rename(tmp / "zig")
        os.chmod(tmp / "zig" / "zig", 0o755)
        (tmp / "bin").mkdir()
        for tool in WRAPPED_TOOLS:
            shutil.copyfile(wrapper, tmp / "bin" / tool)
            os.chmod(tmp / "bin" / tool, 0o755)

    atomic.replace_dir(root, unpack)
    return root


def sweep(cache_dir: Path) -> list[Path]:
    """Remove the half-unpacked zig trees a killed run left (call with the cache's run lock)."""
    return atomic.sweep_dir(cache_dir / "zig")
