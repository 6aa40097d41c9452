"""Smoke probe, run inside an image as its own user: the interpreter version, the machine,
the uid, and whether every top-level module of every installed distribution imports.

Prints one JSON object on its last line:
``{"version": "3.14.8", "machine": "x86_64", "uid": 10001,
"dists": {"<name>": {"<module>": null | "<ExceptionType>: <message>"}}, "raised": {"<module>": "…"}}``.
A module fails when importing it raises ImportError, OSError or SystemError (a broken
extension, a missing library or dependency). One that loads and then raises something else
from its own code (a Django app reading settings only the service configures) imports: it is
listed under ``raised``.
"""

import importlib
import importlib.metadata as md
import json
import os
import platform

from top_level import detach, top_level  # type: ignore[import-not-found]  # mounted beside this file

detach()


def main() -> None:
    dists: dict[str, dict[str, str | None]] = {}
    raised: dict[str, str] = {}
    for dist in md.distributions():
        results: dict[str, str | None] = {}
        for mod in top_level(dist):
            try:
                importlib.import_module(mod)
                results[mod] = None
            except (ImportError, OSError, SystemError) as e:
                results[mod] = f"{type(e).__name__}: {e}"[:300]
            except Exception as e:  # loaded, then its own code wants the service's configuration
                results[mod] = None
                raised[mod] = f"{type(e).__name__}: {e}"[:300]
            except BaseException as e:
                results[mod] = f"{type(e).__name__}: {e}"[:300]
        dists[dist.metadata["Name"]] = results
    out = {"version": platform.python_version(), "machine": platform.machine(), "uid": os.getuid(), "dists": dists, "raised": raised}
    print(json.dumps(out))


main()
