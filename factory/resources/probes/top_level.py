"""Shared by the probes that import an image's modules (mounted beside them, imported as
``top_level``): which top-level modules an installed distribution provides.

Runs inside the image under its own interpreter (standard library only).
"""

import importlib.metadata as md
import os
import sys


def top_level(dist: md.Distribution) -> list[str]:
    """The top-level module names of ``dist``: its ``top_level.txt``, else the ``.py``/``.so``
    files and packages its RECORD lists (not ``*.dist-info``, ``*.data``, ``__pycache__``)."""
    text = dist.read_text("top_level.txt")
    if text:
        return sorted({m.strip() for m in text.split() if m.strip()})
    mods = set()
    for f in dist.files or ():
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1:
            if parts[0].endswith(".py"):
                mods.add(parts[0][:-3])
            elif parts[0].endswith(".so"):
                mods.add(parts[0].split(".")[0])
        elif parts[-1].endswith((".py", ".so")):
            mods.add(parts[0])
    return sorted(m for m in mods if m.isidentifier())


def detach() -> None:
    """Take the probes' directory off ``sys.path`` and this module off ``sys.modules``, so
    that no probe file shadows an installed module of the same name when a probe imports
    the image's modules."""
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if not p or os.path.realpath(p) != here]
    sys.modules.pop(__name__, None)
