"""Hermetic build dependencies: every build backend an sdist may ask for, pinned and pre-fetched.

``resources/constraints/build.txt`` (packaged) is a pip-compile lock (with hashes) of the build backends the
factory supports (setuptools, Cython, meson-python, scikit-build-core, hatchling, …). Before
a build, an sdist's ``build-system.requires`` must be satisfiable from it; then the whole
lock's wheels for the target are laid out in a find-links directory that the builder mounts
read-only, and pip runs with ``PIP_NO_INDEX``, ``PIP_FIND_LINKS`` and ``PIP_CONSTRAINT`` in
a container without network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from ..core import atomic
from ..core.cache import sha256_file
from ..core.errors import BuildDependencyError
from ..core.targets import Target
from ..index.client import Index
from ..index.selection import best_wheel
from ..locks.lockfile import Lock
from .archive import SdistInfo

FIX_ADD = "add it to the .in beside the build-constraints lock and recompile it (`make build-lock` in factory's checkout)"



def check_requires(sdist: SdistInfo, build_lock: Lock, target: Target, python: str) -> None:
    """Raise ``BuildDependencyError`` naming the first of ``sdist.requires`` (PEP 508 strings)
    that ``build_lock`` does not pin, or pins at a version outside its specifier.

    Requirements whose marker is false on ``target`` are ignored.
    """
    env = target.marker_environment(python)
    for text in sdist.requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            raise BuildDependencyError(f"{sdist.path.name}: build requirement {text!r} is not PEP 508", "report it upstream; the sdist cannot be built as is") from None
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        pin = build_lock.pin(req.name)
        if pin is None:
            raise BuildDependencyError(f"{sdist.path.name} needs build dependency {text!r}, which {build_lock.path.name} does not pin", FIX_ADD)
        if not req.specifier.contains(pin.version, prereleases=True):
            raise BuildDependencyError(
                f"{sdist.path.name} needs build dependency {text!r}, but {build_lock.path.name} pins {pin.name}=={pin.version}",
                "pin a version that satisfies it in the .in beside the build-constraints lock and recompile it, "
                "or give this package its own lock in [tool.factory.build-overrides]",
            )


def builddeps_dir(cache_dir: Path, build_lock: Lock, target: Target, python: str, index: Index) -> Path:
    """A find-links directory with a wheel of every ``build_lock`` pin for ``target``.

    ``<cache>/builddeps/<target>/<lock sha256[:16]>/`` holds the wheels (hash-verified on
    download and re-verified here on every reuse, against ``files.json``) and
    ``constraints.txt`` (``name==version`` lines, for ``PIP_CONSTRAINT``). Built in a temporary
    sibling and renamed (``atomic.replace_dir``). Raises ``BuildDependencyError`` when a pin
    has no wheel for the target, plus the index's download errors and ``OutputError``.
    """
    root = cache_dir / "builddeps" / target.name / build_lock.sha256[:16]
    recorded = root / "files.json"
    if recorded.is_file():
        files = json.loads(recorded.read_text())
        if all((root / f).is_file() and sha256_file(root / f) == sha for f, sha in files.items()):
            return root
        shutil.rmtree(root, ignore_errors=True)  # a corrupt entry: evict and fetch again
    pins = [p for p in build_lock.pins if p.applies_to(target, python)]
    chosen = []
    for pin in pins:
        choice = best_wheel(pin, target, python, index.files(pin.name, pin.version))
        if choice is None:
            raise BuildDependencyError(
                f"build dependency {pin.name}=={pin.version} has no wheel for {target.name} on {index.url}",
                "pin a version with a wheel for that target in the .in beside the build-constraints lock and recompile it",
            )
        chosen.append(choice)

    def fill(tmp: Path) -> None:
        files: dict[str, str] = {}
        for choice in chosen:
            path = index.fetch(choice.package, choice.sha256)
            atomic.link_or_copy(path, tmp / choice.package.filename)
            files[choice.package.filename] = choice.sha256
        (tmp / "constraints.txt").write_text("".join(f"{p.name}=={p.version}\n" for p in pins))
        (tmp / "files.json").write_text(json.dumps(files, indent=1, sort_keys=True))

    atomic.replace_dir(root, fill)
    return root


def sweep(cache_dir: Path) -> list[Path]:
    """Remove the half-filled find-links directories a killed run left (run lock held)."""
    root = cache_dir / "builddeps"
    return [p for target in (sorted(root.iterdir()) if root.is_dir() else []) for p in atomic.sweep_dir(target)]
