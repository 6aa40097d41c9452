"""Perf probe, run inside an image: the wall time of importing every top-level module of
every installed distribution, in one interpreter (a module that fails to import counts with
the time it took; smoke reports it).

Prints one JSON object on its last line: ``{"import_s": <seconds>, "modules": <count>}``.
"""

import importlib
import importlib.metadata as md
import json
import time

from top_level import detach, top_level  # type: ignore[import-not-found]  # mounted beside this file

detach()


def main() -> None:
    mods = sorted({m for d in md.distributions() for m in top_level(d)})
    start = time.perf_counter()
    for m in mods:
        try:
            importlib.import_module(m)
        except Exception:
            pass
    print(json.dumps({"import_s": time.perf_counter() - start, "modules": len(mods)}))


main()
