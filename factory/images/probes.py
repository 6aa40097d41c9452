"""The programs factory runs inside its images to check and measure them.

They are files under ``factory/resources/probes/`` (``smoke_probe.py``, ``hardening.py``,
``import_time.py``, ``dists.py``, and ``top_level.py`` which the importing ones share). The
directory is mounted read-only at ``IN_CONTAINER`` and a probe runs as
``python3 /opt/factory/probes/<name>`` with the image's own interpreter; each prints one
JSON value on its last output line.

They read an image, they do not shape it: they are not among an image's inputs (its
``inputs_sha256``), so editing one never rebuilds an image. What they produce is recorded
with ``digest`` instead (``images.lock``'s ``probes_sha256``), so the SBOM and the perf
figures are redone, without a rebuild, when the probes that made them change.
"""

from __future__ import annotations

import json
from typing import Any

from ..core import resources
from ..core.errors import ProbeError

IN_CONTAINER = "/opt/factory/probes"
# The probes whose output images.lock records (through the SBOM file and ``perf``).
MEASURING = ("dists.py", "import_time.py", "top_level.py")


def host_dir() -> str:
    """The host path of the probes directory (to mount)."""
    return str(resources.path("probes"))


def volumes() -> dict[str, dict[str, str]]:
    """The read-only mount of the probes in ``Engine.run``'s form."""
    return {host_dir(): {"bind": IN_CONTAINER, "mode": "ro"}}


def command(name: str) -> list[str]:
    """The argv that runs probe ``name`` (``"dists.py"``) in a container with ``volumes()``.
    ``FileNotFoundError`` if factory lacks that probe (a packaging bug)."""
    resources.path(f"probes/{name}")
    return ["python3", f"{IN_CONTAINER}/{name}"]


def digest(*names: str) -> str:
    """sha256 hex over the named probe files (``resources.digest``)."""
    return resources.digest(*(f"probes/{n}" for n in names))


def last_line(output: str, limit: int | None = 200) -> str:
    """The last non-blank line of ``output`` ("" if none), cut to ``limit`` characters for a
    message; ``limit=None`` keeps it whole (a probe's JSON result is one long line)."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return last if limit is None else last[:limit]


def result(name: str, ref: str, arch: str, code: int, output: str) -> Any:
    """The JSON value probe ``name`` printed last when it ran in image ``ref`` of ``arch``
    and exited with ``code``. ``ProbeError`` naming the image, the probe and its last
    output line if it exited non-zero or its last line is not JSON."""
    tail = last_line(output)
    whole = last_line(output, limit=None)
    if code != 0:
        raise ProbeError(
            f"probe {name} failed in image {ref} ({arch}): exit {code}, last output {tail!r}",
            "run the image by hand to see the whole output; rebuild it if it is broken",
        )
    try:
        return json.loads(whole)
    except ValueError:
        raise ProbeError(
            f"probe {name} printed no result in image {ref} ({arch}); last output {tail!r}",
            "run the image by hand to see the whole output; rebuild it if it is broken",
        ) from None
