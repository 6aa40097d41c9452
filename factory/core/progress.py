"""Progress bars for the long steps, drawn with ``rich`` on stderr."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _RichProgress
from rich.text import Text

console = Console(stderr=True, soft_wrap=True)


class _CountColumn(ProgressColumn):
    """``12/75`` for item bars, ``40.1/160.2 MB`` for the bytes bar, nothing for steps."""

    def render(self, task: Task) -> Text:
        kind = task.fields.get("kind")
        if kind == "bytes":
            return Text(f"{decimal(int(task.completed))}/{decimal(int(task.total or 0))}")
        if kind == "items":
            return Text(f"{int(task.completed)}/{int(task.total or 0)}")
        return Text("")


class _BytesTracker:
    """A pypi-simple ``ProgressTracker`` feeding the shared bytes bar."""

    def __init__(self, progress: Progress, size: int | None) -> None:
        self._p = progress
        if size:
            self._p.add_bytes_total(size)

    def __enter__(self) -> _BytesTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, increment: int) -> None:
        self._p.add_bytes_done(increment)


class Progress:
    """A rich progress display: item bars, one shared bytes bar, spinners for steps.

    Thread-safe; use as a context manager.
    """

    def __init__(self) -> None:
        self._rich = _RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            _CountColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._bytes: TaskID | None = None
        self._bytes_total = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        self._rich.__enter__()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if e is not None:  # on failure the bars vanish, leaving the one-line error alone
            self._rich.live.transient = True
        self._rich.__exit__(t, e, tb)

    def files_task(self, what: str, total: int) -> TaskID:
        """A bar counting ``total`` items of ``what``."""
        return self._rich.add_task(what, total=total, kind="items")

    def step(self, description: str) -> TaskID:
        """A spinner for one step of unknown length; finish it with ``done``."""
        return self._rich.add_task(description, total=None, kind="step")

    def done(self, task: TaskID, message: str | None = None) -> None:
        """Mark a ``step`` finished; print ``message`` (full width) below the bars."""
        self._rich.update(task, total=1, completed=1)
        if message:
            self._rich.console.print(message, soft_wrap=True)

    def advance(self, task: TaskID, n: int = 1) -> None:
        """Advance an item bar by ``n``."""
        self._rich.advance(task, n)

    def bytes_tracker(self) -> Callable[[int | None], _BytesTracker]:
        """A pypi-simple progress factory feeding the shared bytes bar."""
        with self._lock:
            if self._bytes is None:
                self._bytes = self._rich.add_task("bytes", total=0, kind="bytes")
        return lambda size: _BytesTracker(self, size)

    def add_bytes_total(self, n: int) -> None:
        with self._lock:
            assert self._bytes is not None
            self._bytes_total += n
            self._rich.update(self._bytes, total=self._bytes_total)

    def add_bytes_done(self, n: int) -> None:
        assert self._bytes is not None
        self._rich.advance(self._bytes, n)
