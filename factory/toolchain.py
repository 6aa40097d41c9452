"""The pinned toolchain (``constraints/toolchain.txt``): pip, setuptools, wheel, build,
pip-tools, cibuildwheel and auditwheel with their dependencies, each with hashes.

Every pip install the factory performs goes through it: the host venv is constrained to
it (``constraints/host.txt``) and containers install it with ``--require-hashes``.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config
from .errors import LockError
from .index import Index
from .lockfile import Lock, read_lock
from .wheelhouse import best_wheel


def toolchain_lock(cfg: Config) -> Lock:
    """The validated toolchain lock (``LockError`` as for any lock)."""
    return read_lock(cfg.toolchain)


def tool_wheel(cfg: Config, index: Index, name: str) -> Path:
    """The toolchain's wheel of ``name`` (e.g. ``pip``) in the cache, hash-verified.

    A cached file whose sha256 the toolchain allows is used without reading the index.

    Raises ``LockError`` if the toolchain does not pin ``name`` or the index has no wheel
    for it, ``HashMismatchError``/``IndexUnreachableError`` from the download.
    """
    lock = toolchain_lock(cfg)
    pin = lock.pin(name)
    if pin is None:
        raise LockError(f"{cfg.toolchain} does not pin {name}", "add it to constraints/toolchain.in and recompile")
    for sha in sorted(pin.hashes):  # a cached, hash-checked copy needs no index
        cached = index.cache.find(sha)
        if cached is not None and cached.name.endswith(".whl"):
            return cached
    choice = best_wheel(pin, cfg.targets[0], cfg.python, index.files(name))
    if choice is None:
        raise LockError(f"no wheel of {name}=={pin.version} on {index.url}", f"pin a {name} version the index serves")
    return index.fetch(choice.package, choice.sha256)
