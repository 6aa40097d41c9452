"""How much runs at once: the sdist lane's cell workers and the cores each compile gets,
and a lock per key for work that concurrent cells share (one builder per arch, one build
dependency directory per lock and platform)."""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

# A cell's compile (gcc/zig, a C++ translation unit, rustc) seldom needs more than this;
# cells beyond what memory allows would swap rather than finish sooner.
GIB_PER_CELL = 2


def cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable in bytes from ``meminfo``, or None when it cannot be read (not Linux)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def auto_build_jobs(ncores: int | None = None, memory: int | None = None) -> int:
    """Cells built at once when ``build-jobs`` is ``auto``: one per core (``ncores``, default
    ``cores()``), at most one per ``GIB_PER_CELL`` GiB of ``memory`` (bytes, default
    ``available_memory()``; unknown memory does not limit), at least 1."""
    ncores = ncores or cores()
    memory = available_memory() if memory is None else memory
    by_memory = ncores if memory is None else memory // (GIB_PER_CELL * 1024**3)
    return max(1, min(ncores, by_memory))


def cores_per_cell(jobs: int, ncores: int | None = None) -> int:
    """The parallel compile jobs one cell gets when ``jobs`` cells share ``ncores`` cores."""
    return max(1, (ncores or cores()) // max(1, jobs))


class KeyedLocks:
    """One ``threading.Lock`` per key, made on first use: ``with locks(key): …`` runs
    one holder of a key at a time and holders of other keys beside it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}

    @contextmanager
    def __call__(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield
