"""Performance gates between image generations (the migration playbooks' "perf baselines").

For each freshly built image: its size (bytes), the cold start of ``python3 -c pass`` in a
new container and the import time of every top-level module of the installed
distributions (the ``import_time.py`` probe; seconds, median of ``RUNS``). ``gate``
compares them with the previous ``images.lock``: size +5 %, cold start +10 %, import time
+10 % are regressions.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from ..bases.imagelock import ArchImage, ImagesLock, Perf
from ..core.engine import Engine
from ..core.errors import ProbeError
from . import probes

RUNS = 3
LIMITS = {"size": 0.05, "cold_start_s": 0.10, "import_s": 0.10}
PROBE = "import_time.py"

__all__ = ["LIMITS", "RUNS", "Perf", "gate", "measure"]


def import_seconds(ref: str, arch: str, code: int, output: str) -> float:
    """``import_s`` from one run of the import probe in image ``ref`` of ``arch`` (exit
    ``code``, combined ``output``). ``ProbeError`` naming the image and the probe's last
    output line if the run failed or printed no ``{"import_s": <seconds>}``."""
    found = probes.result(PROBE, ref, arch, code, output)
    seconds = found.get("import_s") if isinstance(found, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ProbeError(
            f"probe {PROBE} printed no import_s in image {ref} ({arch}): {probes.last_line(output)!r}",
            f"check factory/resources/probes/{PROBE}",
        )
    return float(seconds)


def measure(engine: Engine, ref: str, arch: str) -> Perf:
    """Measure ``ref`` (arm64 through QEMU): ``RUNS`` fresh containers for each figure.

    Raises ``ProbeError`` (one line: the image, the probe, its last output line) when
    ``python3 -c pass`` or the import probe fails, ``EngineError`` when no container starts.
    """
    platform = f"linux/{arch}"
    engine = engine.for_arch(arch)
    cold, imports = [], []
    for _ in range(RUNS):
        start = time.monotonic()
        code, out = engine.run(ref, ["python3", "-c", "pass"], platform=platform, network=False)
        cold.append(time.monotonic() - start)
        if code != 0:
            raise ProbeError(
                f"python3 -c pass failed in image {ref} ({arch}): exit {code}, last output {probes.last_line(out)!r}",
                "run the image by hand to see the whole output; rebuild it if it is broken",
            )
        code, out = engine.run(ref, probes.command(PROBE), volumes=probes.volumes(), platform=platform, network=False)
        imports.append(import_seconds(ref, arch, code, out))
    return Perf(cold_start_s=round(statistics.median(cold), 4), import_s=round(statistics.median(imports), 4))


def gate(previous: ImagesLock | None, current: Sequence[ArchImage]) -> list[str]:
    """One message per regression of the ``current`` images against the ``previous``
    images.lock (None: nothing to compare with).

    ``current`` is a sequence of entries, not an ``ImagesLock``: the gate runs before the
    index is pushed (so that ``--strict`` moves no tag), when no images.lock exists yet.
    Compares images of the same arch on ``size`` (bytes), ``perf.cold_start_s`` and
    ``perf.import_s`` (seconds); a figure missing on either side is not compared.
    """
    if previous is None:
        return []
    messages = []
    for image in current:
        old = previous.image(image.arch)
        if old is None:
            continue
        pairs: dict[str, tuple[float | None, float | None]] = {
            "size": (old.size, image.size),
            "cold_start_s": (old.perf.cold_start_s if old.perf else None, image.perf.cold_start_s if image.perf else None),
            "import_s": (old.perf.import_s if old.perf else None, image.perf.import_s if image.perf else None),
        }
        for key, (a, b) in pairs.items():
            if a and b and b > a * (1 + LIMITS[key]):
                messages.append(
                    f"{image.arch} {key} {a} -> {b} (+{(b / a - 1) * 100:.0f} %, limit +{LIMITS[key] * 100:.0f} %)"
                )
    return messages
