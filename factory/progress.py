"""Progress bars for the long steps, drawn with ``rich`` on stderr."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as _RichProgress

console = Console(stderr=True)


class _BytesTracker:
    """pypi-simple ``ProgressTracker``: forwards chunk sizes to the shared bytes bar."""

    def __init__(self, progress: "Progress", size: int | None) -> None:
        self._p = progress
        if size:
            self._p.add_bytes_total(size)

    def __enter__(self) -> "_BytesTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, increment: int) -> None:
        self._p.add_bytes_done(increment)


class Progress:
    """A rich progress display with a files bar and a shared bytes bar (thread-safe)."""

    def __init__(self) -> None:
        self._rich = _RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._bytes: TaskID | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "Progress":
        self._rich.__enter__()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._rich.__exit__(t, e, tb)

    def files_task(self, what: str, total: int) -> TaskID:
        """A bar counting ``total`` items of ``what``."""
        return self._rich.add_task(what, total=total)

    def step(self, description: str) -> TaskID:
        """A spinner for one step of unknown length; finish it with ``done``."""
        return self._rich.add_task(description, total=None)

    def done(self, task: TaskID, description: str | None = None) -> None:
        """Mark a ``step`` finished, optionally renaming it."""
        self._rich.update(task, total=1, completed=1, description=description or self._rich.tasks[task].description)

    def advance(self, task: TaskID, n: int = 1) -> None:
        self._rich.advance(task, n)

    def bytes_tracker(self):  # -> Callable[[int | None], _BytesTracker]
        """A pypi-simple progress factory feeding the shared ``bytes`` bar."""
        with self._lock:
            if self._bytes is None:
                self._bytes = self._rich.add_task("bytes", total=0)
        return lambda size: _BytesTracker(self, size)

    def add_bytes_total(self, n: int) -> None:
        with self._lock:
            assert self._bytes is not None
            total = self._rich.tasks[self._bytes].total or 0
            self._rich.update(self._bytes, total=total + n)

    def add_bytes_done(self, n: int) -> None:
        self._rich.advance(self._bytes, n)  # type: ignore[arg-type]
