"""The wheelhouse SBOM: a CycloneDX JSON document (spec 1.6) of every wheel file (domain).

One component per distinct wheel file (``bom-ref`` = its file name), with its sha256, a
``pkg:pypi/<name>@<version>?file_name=<file>`` purl (purl spec), one ``factory:target``
property per target it serves and a ``factory:source`` property (``index``/``built``).
The serial number is a UUID5 of the lock's sha256 and the target names, and the subject's
``bom-ref`` is ``wheelhouse@<lock sha256>`` (the library's default is random), so the same
wheelhouse gives the same document apart from its timestamp. Built with ``cyclonedx-python-lib``.
"""

from __future__ import annotations

import uuid

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from .manifest import Manifest, ManifestEntry

# The namespace factory's SBOM serial numbers are derived in (shared with the image SBOMs).
NAMESPACE = uuid.UUID("5d0f3c4e-8f1e-4c55-9d8b-6a3f2f1c0b7a")


def wheelhouse_sbom(manifest: Manifest) -> str:
    """The CycloneDX 1.6 JSON text for the wheelhouse described by ``manifest``."""
    bom = Bom(serial_number=uuid.uuid5(NAMESPACE, manifest.lock_sha256 + "|" + ",".join(sorted(manifest.targets))))
    bom.metadata.component = Component(
        type=ComponentType.APPLICATION, name="wheelhouse", version=manifest.lock_sha256, bom_ref=f"wheelhouse@{manifest.lock_sha256}"
    )
    files: dict[str, tuple[ManifestEntry, list[str]]] = {}
    for target in sorted(manifest.targets):
        for e in manifest.entries(target):
            files.setdefault(e.filename, (e, []))[1].append(target)
    for filename, (e, targets) in sorted(files.items()):
        purl = PackageURL("pypi", None, e.name, e.version, {"file_name": filename})
        bom.components.add(
            Component(
                type=ComponentType.LIBRARY,
                name=e.name,
                version=e.version,
                purl=purl,
                bom_ref=filename,
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=e.sha256)],
                properties=[Property(name="factory:target", value=t) for t in targets] + [Property(name="factory:source", value=e.source)],
            )
        )
    # The subject depends on everything listed: a flat but complete dependency graph.
    bom.register_dependency(bom.metadata.component, list(bom.components))
    return str(JsonV1Dot6(bom).output_as_string(indent=2))
