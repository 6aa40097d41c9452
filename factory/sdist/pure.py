"""Pure-Python sdists: one ``python -m build --wheel`` in the native builder, no network,
for every target at once.

cibuildwheel refuses a wheel without compiled code ("a pure Python wheel was generated"),
and a pure wheel serves every target, so an sdist with no compiled sources
(``sdist.SdistInfo.compiled``) is built once here, and whether the wheel is pure is decided
from the built wheel's tags, not from the sdist's metadata: an impure result sends the
cells back to cibuildwheel.
"""

from __future__ import annotations

import time
from pathlib import Path

from packaging.utils import parse_wheel_filename

from ..core.engine import TIMED_OUT, Engine
from .outcome import BuildRun

CONTAINER_PYTHON = "/opt/python/cp314-cp314/bin/python"
TOOL = "python -m build"
LOG_TAIL = 12


def is_pure(wheel: Path) -> bool:
    """True when every tag of ``wheel``'s name has ABI ``none`` and platform ``any``
    (``py3-none-any``, ``py2.py3-none-any``): it runs on every target (PEP 425)."""
    return all(t.abi == "none" and t.platform == "any" for t in parse_wheel_filename(wheel.name)[3])


def command(sdist_name: str, top: str) -> list[str]:
    """The container command: unpack ``/opt/factory/sdist/<sdist_name>`` (its top-level
    directory ``top``) and build its wheel into ``/opt/factory/out``."""
    script = (
        f"set -e; mkdir -p /tmp/src; tar -xf /opt/factory/sdist/{sdist_name} -C /tmp/src; "
        f"{CONTAINER_PYTHON} -m build --wheel --outdir /opt/factory/out /tmp/src/{top}"
    )
    return ["sh", "-c", script]


def run(engine: Engine, builder: str, platform: str, sdist: Path, top: str, deps: Path, work: Path, epoch: int, timeout: float) -> BuildRun:
    """Build the wheel of ``sdist`` in ``builder`` (``platform`` ``linux/<arch>``, the
    host's, so nothing is emulated) with the network off, build dependencies only from
    ``deps`` (``builddeps.builddeps_dir``) and SOURCE_DATE_EPOCH ``epoch``; wheel into
    ``work/out``, log into ``work/build.log``. Killed after ``timeout`` seconds. A failed
    build is a result; ``EngineError`` when no container can start."""
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    volumes = {
        str(sdist): {"bind": f"/opt/factory/sdist/{sdist.name}", "mode": "ro"},
        str(deps): {"bind": "/opt/factory/deps", "mode": "ro"},
        str(out): {"bind": "/opt/factory/out", "mode": "rw"},
    }
    environment = {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "/opt/factory/deps",
        "PIP_CONSTRAINT": "/opt/factory/deps/constraints.txt",
        "SOURCE_DATE_EPOCH": str(epoch),
    }
    started = time.monotonic()
    status, logs = engine.run(
        builder, command(sdist.name, top), volumes=volumes, environment=environment, platform=platform, network=False, timeout=timeout
    )
    seconds = round(time.monotonic() - started, 1)
    log = work / "build.log"
    log.write_text(logs)
    tail = tuple(logs.strip().splitlines()[-LOG_TAIL:])
    return BuildRun(None if status == TIMED_OUT else status, seconds, log, tail, tuple(sorted(out.glob("*.whl"))), TOOL)
