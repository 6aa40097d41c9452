"""Performance gates between image generations (the migration playbooks' "perf baselines").

For each freshly built image: its size (bytes), the cold start of ``python3 -c pass`` in a
new container and the import time of every top-level module of the installed
distributions (seconds, median of ``RUNS``). ``gate`` compares them with the previous
``images.lock``: size +5 %, cold start +10 %, import time +10 % are regressions.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass

from .engine import Engine
from .smoke import TOP_LEVEL

RUNS = 3
LIMITS = {"size": 0.05, "cold_start_s": 0.10, "import_s": 0.10}
_IMPORTS = TOP_LEVEL + r"""
mods = sorted({m for d in md.distributions() for m in top_level(d)})
start = time.perf_counter()
for m in mods:
    try:
        importlib.import_module(m)
    except Exception:
        pass
print(json.dumps({"import_s": time.perf_counter() - start, "modules": len(mods)}))
"""



@dataclass(frozen=True)
class Perf:
    """Median cold start and import time of one image, in seconds."""

    cold_start_s: float
    import_s: float


def measure(engine: Engine, ref: str, arch: str) -> Perf:
    """Measure ``ref`` (arm64 through QEMU): ``RUNS`` fresh containers for each figure."""
    platform = f"linux/{arch}"
    cold, imports = [], []
    for _ in range(RUNS):
        start = time.monotonic()
        engine.run(ref, ["python3", "-c", "pass"], platform=platform, network=False)
        cold.append(time.monotonic() - start)
        _, out = engine.run(ref, ["python3", "-c", _IMPORTS], platform=platform, network=False)
        imports.append(json.loads(out.strip().splitlines()[-1])["import_s"])
    return Perf(cold_start_s=round(statistics.median(cold), 4), import_s=round(statistics.median(imports), 4))


def gate(previous: dict | None, current: dict) -> list[str]:
    """One message per regression of ``current`` against ``previous`` (both images.lock dicts).

    Compares images of the same arch on ``size``, ``perf.cold_start_s`` and ``perf.import_s``.
    """
    if not previous:
        return []
    before = {i["arch"]: i for i in previous.get("images", [])}
    messages = []
    for image in current["images"]:
        old = before.get(image["arch"])
        if not old:
            continue
        pairs = {"size": (old.get("size"), image.get("size"))}
        for key in ("cold_start_s", "import_s"):
            pairs[key] = ((old.get("perf") or {}).get(key), (image.get("perf") or {}).get(key))
        for key, (a, b) in pairs.items():
            if a and b and b > a * (1 + LIMITS[key]):
                messages.append(
                    f"{image['arch']} {key} {a} -> {b} (+{(b / a - 1) * 100:.0f} %, limit +{LIMITS[key] * 100:.0f} %)"
                )
    return messages
