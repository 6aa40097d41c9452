"""Fault injection for the crash-safety tests: ``FACTORY_FAULT=<point>`` makes the process
kill itself with SIGKILL when it reaches that point (no cleanup, no ``finally``), the way a
power cut or the OOM killer would. Unset, ``point`` does nothing.

Points: ``before-rename`` (an output is fully written in its temporary place, not yet
renamed); ``mid-push`` (an image's layers are going up to the registry, by the engine or
through the registry API, and no manifest names them yet).
"""

from __future__ import annotations

import os
import signal


def point(name: str) -> None:
    """SIGKILL this process if ``FACTORY_FAULT`` names ``name``."""
    if os.environ.get("FACTORY_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
