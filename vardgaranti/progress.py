"""Progress display for long work: a rich spinner with a running count and rate.

Shown only on a terminal, so pipes and CI logs stay clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class Ticker:
    """`tick(done)` shows the count so far; `tick.phase(what)` names a next phase that has
    no count of its own (the count so far stays, as what was read)."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None,
                 unit: str = "lines") -> None:
        self._progress, self._task, self._unit = progress, task, unit
        self._started = time.monotonic()
        self._done = 0

    def __call__(self, done: int) -> None:
        self._done = done
        if self._progress is None or self._task is None:
            return
        rate = done / max(time.monotonic() - self._started, 1e-6)
        self._progress.update(self._task, count=f": {done:,} {self._unit}",
                              rate=f"({rate:,.0f}/s)")

    def phase(self, what: str) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.update(self._task, description=what,
                              count=f" ({self._done:,} {self._unit} read)", rate="")


@contextmanager
def line_progress(what: str, unit: str = "lines") -> Iterator[Ticker]:
    """Yields a Ticker; renders `what: N lines (R/s)` on stderr when it is a TTY."""
    if not sys.stderr.isatty():
        yield Ticker(unit=unit)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}{task.fields[count]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(what, total=None, count=f": 0 {unit}", rate="")
        yield Ticker(progress, task, unit)
