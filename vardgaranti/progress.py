"""Progress display for long work: a rich spinner with a running count and rate.

Shown only on a terminal, so pipes and CI logs stay clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def line_progress(what: str, unit: str = "lines") -> Iterator[Callable[[int], None]]:
    """Yields `tick(done)`; renders `what: N lines (R/s)` on stderr when it is a TTY."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}: {task.completed:,.0f} " + unit),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(what, total=None, rate="")
        started = time.monotonic()

        def tick(done: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            progress.update(task, completed=done, rate=f"({rate:,.0f}/s)")

        yield tick
