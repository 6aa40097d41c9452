"""The service's own project: its source tree, built into one pure-Python wheel like a pure sdist.

The tree (``core.tree``: the files a build context of the project's directory holds, less
local build output) is written as a tar with one top-level directory and goes the pure-Python
route (``pure``): ``python -m build --wheel`` in the native builder, network off, the build
backend only from the build constraints (hatchling, setuptools, flit-core, pdm-backend,
poetry-core, uv_build are locked there). Only the project's directory is in the container, so
ignore files above it (a repository's root ``.gitignore``) do not apply to the backend.

The cache key is the tree's content hash (``core.tree.tree_sha256``) with the builder, the
build constraints and the toolchain: a change that leaves the tree's hash alone rebuilds
nothing. The built wheel must be pure (``py3-none-any``): it serves every target. Its
``Requires-Dist`` must be pinned by the lock on every target, or the image would lack a
dependency: a failed outcome names the first one that is not.
"""

from __future__ import annotations

import email.parser
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_wheel_filename

from ..core import tree
from ..core.service import Project
from ..core.targets import Target
from ..locks.lockfile import Lock

# SOURCE_DATE_EPOCH of a project build: a source tree has no release date, and the wheel's
# bytes must not follow the files' mtimes (1980-01-01, the earliest time a zip records).
EPOCH = 315532800
TARGET = "project"


@dataclass(frozen=True)
class ProjectSource:
    """The project and the files of its tree (relative POSIX paths), with their content hash."""

    project: Project
    files: tuple[str, ...]
    tree_sha256: str

    @classmethod
    def of(cls, project: Project) -> ProjectSource:
        """Select and hash ``project.root``'s tree (``ConfigError`` from the selection)."""
        files = [f for f in tree.select(project.root) if not _build_output(f)]
        return cls(project, tuple(files), tree.tree_sha256(project.root, files))

    def write_tar(self, dest: Path) -> str:
        """Write the tree as a tar at ``dest`` with top-level directory ``<name>``; returns that name."""
        tree.write_tar(self.project.root, self.files, dest, self.project.name, EPOCH)
        return self.project.name


def _build_output(rel: str) -> bool:
    head = rel.split("/", 1)[0]
    return "/" in rel and (head in ("dist", "build") or head.endswith(".egg-info"))


def unpinned_requirement(wheel: Path, lock: Lock, targets: tuple[Target, ...], python: str) -> str:
    """The first ``Requires-Dist`` of ``wheel`` (its extras-free requirements, PEP 508 markers
    evaluated on each of ``targets``) that ``lock`` does not pin, or pins at a version outside
    its specifier, as a sentence; "" when the lock satisfies every one."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        metadata = email.parser.BytesParser().parsebytes(z.read(name), headersonly=True)
    for text in metadata.get_all("Requires-Dist") or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return f"its Requires-Dist {text!r} is not PEP 508"
        for target in targets:
            env = {**target.marker_environment(python), "extra": ""}
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            pin = lock.pin(req.name)
            if pin is None:
                return f"it requires {text!r}, which {lock.path.name} does not pin"
            if not req.specifier.contains(pin.version, prereleases=True):
                return f"it requires {text!r}, but {lock.path.name} pins {pin.name}=={pin.version}"
    return ""


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name."""
    return str(parse_wheel_filename(wheel.name)[1])
