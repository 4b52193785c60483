"""What the API reads: a live view, and the history for periods it does not keep.

The live view answers every window ending at the watermark's date in O(groups). A period
ending earlier (`from`/`to`/`as_of` in the past) is asked of the history: the store in
embedded mode, the worker's counters when streaming. A date after the watermark is refused
by the API before it gets here: nothing is known about it yet.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from models.indicators import ORDER
from models.live import Group, LiveView
from models.measures import WINDOWS, Period, Row, window_first
from models.worklist import AtRisk

History = Callable[[Period, str | None], dict[Group, Row]]
# the worklist at the end of a past date: (date, indicator, unit, limit) -> rows
PastWorklist = Callable[[date, str | None, str | None, int], list[AtRisk]]


class NotKept(LookupError):
    """A period the source no longer holds (one line saying why: the API answers 422)."""


@dataclass(frozen=True)
class LiveSource:
    view: LiveView
    history: History
    ping: Callable[[], bool]
    past_worklist: PastWorklist | None = None  # None: the clocks are known at the watermark

    def per_unit(self, period: Period, indicator: str | None = None) -> dict[Group, Row]:
        window = self._window(period)
        if window is None:
            return self.history(period, indicator)
        return self.view.rows(window, ORDER[indicator] if indicator is not None else None)

    def _window(self, period: Period) -> str | None:
        """The window `period` is, when it ends at the watermark's date."""
        today = self.view.today_date()
        if today is None or period.as_of != period.last or period.last != today.toordinal():
            return None
        for w in WINDOWS:
            if window_first(w, today).toordinal() == period.first:
                return w
        return None

    def at_risk(self, indicator: str | None = None, unit: str | None = None,
                limit: int = 1000, as_of: date | None = None) -> list[AtRisk]:
        """The worklist at the watermark from the live view; at an earlier date from the
        clocks' facts when the source keeps them (the embedded store)."""
        today = self.view.today_date()
        if as_of is None or as_of == today:
            return self.view.worklist(ORDER[indicator] if indicator is not None else None,
                                      unit, limit)
        if self.past_worklist is None:
            raise NotKept(f"as_of: the worker knows the clocks at the watermark {today} only, "
                          f"not at {as_of} (the store's `vardgaranti serve` answers that)")
        return self.past_worklist(as_of, indicator, unit, limit)

    def units(self) -> set[str]:
        return self.view.units()


def freeze_loaded(collect: bool = True) -> None:
    """Keep what a server has loaded out of the cycle collector, once loaded: the live view
    and the cases are long-lived and hold no cycles, yet every full collection walked them
    all, ~80 ms at the region's 100 units, inside whichever request it fell on. What is
    dropped later is still freed (by its reference count). Both runtimes call it: the
    embedded server before serving, the worker after rebuilding its view.

    Without `collect` what is there is frozen as it is, garbage cycles too (they are then
    never freed). The worker does so after each rebuild of its view: after a restart the
    full collection before the freeze walked every object of the recovered tables (0.4 s
    at scale 0.03, before it was ready) and found ~20 unreachable objects."""
    if collect:
        gc.collect()
    gc.freeze()
