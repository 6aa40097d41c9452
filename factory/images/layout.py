"""The images as an OCI image layout on disk, for teams without a registry.

Format: the OCI image layout (image spec v1.1 ``image-layout.md``): ``oci-layout``,
``index.json`` and ``blobs/sha256/``. skopeo, the owning tool, copies the multi-arch index
and every image it lists out of the registry (``skopeo copy --all``), digests unchanged. The
directory is made beside its destination and renamed into place (``atomic.replace_dir``), so
a failed copy leaves nothing half-written. ``skopeo``, ``oras`` and ``docker load`` (of a
``docker-archive`` made from it by ``skopeo copy``) read it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ..bases.imagelock import ImagesLock
from ..core import atomic
from ..core.children import die_with_parent
from ..core.errors import ImageBuildError

SKOPEO_FIX = "apt-get install skopeo (or `make deps`)"


def write_layout(images: ImagesLock, dest: Path, auth: tuple[str, str] | None = None, insecure: bool = True) -> Path:
    """Copy ``images``' index and its images from the registry into the OCI image layout
    ``dest`` (replaced whole), the index tagged with its first tag's name in ``index.json``
    (``org.opencontainers.image.ref.name``). Returns ``dest``. ``ImageBuildError`` when skopeo
    is missing or the copy fails (with skopeo's last line); ``OutputError`` when ``dest``
    cannot be written."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise ImageBuildError("skopeo is not installed (it writes the OCI image layout)", SKOPEO_FIX)
    ref_name = images.tags[0].rsplit(":", 1)[-1] if images.tags else "latest"

    def fill(tmp: Path) -> None:
        command = [skopeo, "copy", "--all", "--preserve-digests", f"--src-tls-verify={'false' if insecure else 'true'}"]
        if auth is not None:
            command.append(f"--src-creds={auth[0]}:{auth[1]}")
        command += [f"docker://{images.index}", f"oci:{tmp}:{ref_name}"]
        proc = subprocess.run(command, capture_output=True, text=True, preexec_fn=die_with_parent)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ImageBuildError(f"skopeo could not copy {images.index} into an OCI layout: {last[:300]}", "check that the registry serves the index")
        index = json.loads((tmp / "index.json").read_text())
        digests = {m.get("digest") for m in index.get("manifests", [])}
        if images.index.partition("@")[2] not in digests:
            raise ImageBuildError(f"the OCI layout skopeo wrote does not hold the index {images.index}", "check the skopeo version (1.9 or later)")

    atomic.replace_dir(dest, fill)
    return dest
