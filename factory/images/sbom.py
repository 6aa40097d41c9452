"""CycloneDX SBOMs (JSON, spec 1.6) with ``cyclonedx-python-lib``: per image (the
wheelhouse's is built by ``factory.wheelhouse.sbom``):

- the Debian packages from the image's dpkg status records (``status.d`` or ``status``)
  (``pkg:deb/debian/<name>@<version>?arch=<arch>``) and the Python distributions
  installed in ``/opt/venv`` (``pkg:pypi/<name>@<version>``, with the wheel's sha256 from
  the wheelhouse manifest).

The serial number is derived from the subject (image digest, lock hash), so the same
input gives the same document apart from its timestamp.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from debian.deb822 import Deb822
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from ..core.engine import Engine
from ..core.errors import ProbeError
from . import probes

_NAMESPACE = uuid.UUID("5d0f3c4e-8f1e-4c55-9d8b-6a3f2f1c0b7a")


def _dump(bom: Bom) -> str:
    # The subject depends on everything listed: a flat but complete dependency graph.
    subject = bom.metadata.component
    assert subject is not None, "every document here names its subject"
    bom.register_dependency(subject, list(bom.components))
    return JsonV1Dot6(bom).output_as_string(indent=2)


def debian_packages(status: bytes) -> list[tuple[str, str, str]]:
    """(package, version, architecture) of every installed package in a dpkg status file."""
    out = []
    for para in Deb822.iter_paragraphs(status.decode("utf-8", "replace").splitlines()):
        if "installed" in para.get("Status", "").split():
            out.append((para["Package"], para["Version"], para.get("Architecture", "all")))
    return sorted(out)


def dpkg_status(engine: Engine, ref: str) -> bytes:
    """The dpkg status records of image ``ref``: the one-record-per-package files of
    ``/var/lib/dpkg/status.d`` (distroless layout, factory's bootstrapped bases) joined as
    paragraphs, else ``/var/lib/dpkg/status`` (images with dpkg). ``EngineError`` when
    neither can be read."""
    records = engine.read_files(ref, "/var/lib/dpkg/status.d")
    if records:
        return b"\n".join(data.rstrip(b"\n") + b"\n" for name, data in sorted(records.items()) if not name.endswith(".md5sums"))
    return engine.read_file(ref, "/var/lib/dpkg/status")


def installed_dists(engine: Engine, ref: str, arch: str) -> list[tuple[str, str]]:
    """(name, version) of every Python distribution installed in the image ``ref`` of
    ``arch``, listed by the ``dists.py`` probe run on ``engine``. ``ProbeError`` (naming the image and the
    probe's last output line) if the probe fails or prints something else; never an empty
    list in place of a failure."""
    code, output = engine.run(ref, probes.command("dists.py"), volumes=probes.volumes(), platform=f"linux/{arch}", network=False)
    dists = probes.result("dists.py", ref, arch, code, output)
    if not isinstance(dists, list) or not all(
        isinstance(d, list) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in dists
    ):
        raise ProbeError(
            f"probe dists.py printed no [name, version] list in image {ref} ({arch}): {probes.last_line(output)!r}",
            "check factory/resources/probes/dists.py",
        )
    return [(name, version) for name, version in dists]


def image_sbom(engine: Engine, ref: str, arch: str, wheels: list[dict[str, Any]]) -> str:
    """The CycloneDX JSON document for the image ``ref`` (``repo@sha256:…``) of ``arch``.

    ``wheels`` are the wheelhouse manifest entries of the image's target, used for hashes.
    Raises ``EngineError`` if the image cannot be read or run, ``ProbeError`` if the
    distribution list cannot be taken from it (the SBOM would lack every Python component).
    The image is read and run where ``arch``'s containers run (``Engine.for_arch``).
    """
    engine = engine.for_arch(arch)
    status = dpkg_status(engine, ref)
    dists = installed_dists(engine, ref, arch)
    repo, _, digest = ref.partition("@")
    bom = Bom(serial_number=uuid.uuid5(_NAMESPACE, ref))
    bom.metadata.component = Component(
        type=ComponentType.CONTAINER,
        name=repo,
        version=digest,
        bom_ref=ref,
        purl=PackageURL("oci", None, repo.rsplit("/", 1)[-1], digest, {"repository_url": repo, "arch": arch}),
    )
    for name, version, pkg_arch in debian_packages(status):
        purl = PackageURL("deb", "debian", name, version, {"arch": pkg_arch})
        bom.components.add(Component(type=ComponentType.LIBRARY, name=name, version=version, purl=purl, bom_ref=str(purl)))
    by_name = {w["name"]: w for w in wheels}
    for name, version in dists:
        purl = PackageURL("pypi", None, canonicalize_name(name), version)  # purl spec: lowercase, '_' -> '-'
        wheel = by_name.get(canonicalize_name(name))
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=wheel["sha256"])] if wheel else []
        props = [Property(name="factory:wheel", value=wheel["filename"])] if wheel else []
        bom.components.add(
            Component(type=ComponentType.LIBRARY, name=name, version=version, purl=purl, bom_ref=str(purl), hashes=hashes, properties=props)
        )
    return _dump(bom)


def sbom_path(images_lock: Path, arch: str) -> Path:
    """Where the SBOM of the ``arch`` image sits: ``<images.lock>.sbom/image-<arch>.cdx.json``."""
    return images_lock.parent / f"{images_lock.name}.sbom" / f"image-{arch}.cdx.json"
