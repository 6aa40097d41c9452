"""Build locks generated for sdists whose ``build-system.requires`` conflict with the shared
``build-constraints`` (build-backend drift: ``msgpack==1.0.8`` wants ``Cython~=3.0.8`` where
the shared lock pins ``cython==3.3.1``).

pip's build isolation would just install what the sdist asks for; here every build
dependency is pinned and hashed, so the sdist gets a lock of its own: its requirements,
resolved by pip-compile under the configured CPython (``lock.compile_lock``, in the amd64
base) with hashes, preferring the versions the shared lock already pins (it seeds the
output, and pip-compile keeps every seeded pin that still fits). The result is
``<build-overrides-dir>/<project>.txt`` beside the ``.in`` it came from, for the user to
review and commit; a lock the user names in ``[tool.factory.build-overrides]`` always wins.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.atomic import write_text
from ..core.config import Config
from ..core.engine import Engine
from ..index.client import Index
from ..locks.lockfile import Lock, Pin
from ..tools.pipcompile import compile_lock
from .archive import SdistInfo


def command(pin: Pin) -> str:
    """What the generated lock's header names as its origin."""
    return f"factory wheelhouse (build lock generated for {pin.name}=={pin.version}: its build-system.requires conflict with build-constraints)"


def generate(cfg: Config, engine: Engine, index: Index, base_ref: str, pin: Pin, info: SdistInfo, shared: Lock, out: Path) -> Lock:
    """Write ``out`` (``<project>.txt``) and its source ``<project>.in`` (the sdist's
    ``requires``), compiled in ``base_ref``; returns the new lock. Raises
    ``LockCompileError`` (pip-compile's last lines) or ``LockError``; a failed first
    generation leaves neither file."""
    source = out.with_suffix(".in")
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = not out.exists()
    write_text(source, f"# {pin.name}=={pin.version}'s build-system.requires ({info.backend})\n" + "".join(f"{r}\n" for r in info.requires))
    if fresh:
        shutil.copyfile(shared.path, out)  # the seed: pip-compile keeps each pin of it that still fits
    try:
        return compile_lock(cfg, engine, index, base_ref, source, out, command(pin))
    except BaseException:
        if fresh:
            out.unlink(missing_ok=True)
            source.unlink(missing_ok=True)
        raise
