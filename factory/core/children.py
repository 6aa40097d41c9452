"""Child processes that must not outlive the factory (mmdebstrap, cibuildwheel).

``die_with_parent`` is a ``preexec_fn``: Linux's ``PR_SET_PDEATHSIG`` (prctl(2)) sends the
child SIGKILL when the factory dies, even by SIGKILL, so a killed run leaves no build
writing into a temporary file the next run sweeps away.

``Children`` (one per run of builds) ends the long children of a run told to stop: the
worker threads that wait on them are freed at once instead of after their builds. Each
child starts a session of its own, so a terminal's Ctrl-C (SIGINT to the whole foreground
process group) reaches only the factory, which then stops its children in order; the
children cannot end first and read as failed builds.
``sigterm_interrupts`` turns SIGTERM into ``Interrupted`` where such a stop exists (the sdist
lane, images, smoke: ``results_or_stop``); elsewhere SIGTERM keeps its default (the process
ends, its children with it).
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from .errors import Interrupted

T = TypeVar("T")

PR_SET_PDEATHSIG = 1
# What a terminated child gets to exit on its own (cibuildwheel removes its container then).
GRACE_SECONDS = 10.0


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Children:
    """The child processes this process is waiting on, so that ``stop`` can end them all."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.stopping = False

    def run(self, cmd: Sequence[str], timeout: float | None = None, **popen: Any) -> int | None:
        """Run ``cmd`` (``subprocess.Popen`` keywords; in a session of its own; it dies with
        this process) to its end.

        Returns its exit status, or None when it was killed after ``timeout`` seconds.
        ``Interrupted`` instead of starting it once ``stop`` was called, and instead of its
        status when ``stop`` ended it. ``OSError`` if it cannot be started. A
        ``KeyboardInterrupt`` while waiting (run on the main thread) ends the child as
        ``stop`` does before it is raised.
        """
        with self._guard:
            if self.stopping:
                raise Interrupted
            proc = subprocess.Popen(cmd, preexec_fn=die_with_parent, start_new_session=True, **popen)
            self._running.add(proc)
        try:
            try:
                rc: int | None = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = None
            except KeyboardInterrupt:
                proc.terminate()
                _reap(proc, GRACE_SECONDS)
                raise
        finally:
            with self._guard:
                self._running.discard(proc)
        if self.stopping:
            raise Interrupted
        return rc

    def stop(self, grace: float = GRACE_SECONDS) -> int:
        """Start no more children and end the running ones: SIGTERM, then SIGKILL for any
        still running after ``grace`` seconds. Returns how many were running."""
        with self._guard:
            self.stopping = True
            running = list(self._running)
        for proc in running:
            proc.terminate()
        for proc in running:
            _reap(proc, grace)
        return len(running)


def _reap(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Wait ``grace`` seconds for a terminated ``proc`` to exit, then SIGKILL it."""
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While open, SIGTERM raises ``Interrupted(SIGTERM)`` in the main thread, as SIGINT
    raises ``KeyboardInterrupt``, so the caller can stop its children and containers before
    the process ends. Off the main thread (where Python cannot take signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def results_or_stop(futures: Iterable[Future[T]], stop: Callable[[], object]) -> list[T]:
    """The results of ``futures`` in order (what a future raises is raised). On
    ``KeyboardInterrupt`` (SIGINT; SIGTERM under ``sigterm_interrupts``) ``stop`` is called
    first, to end what the worker threads wait on (containers, children), so that the
    executor's exit does not wait for their work to finish; then it is raised."""
    try:
        return [future.result() for future in futures]
    except KeyboardInterrupt:
        stop()
        raise
