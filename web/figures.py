"""What the pages read, built only from the API's `Source.per_unit` calls.

A month of the annual chart is `per_unit(first of month .. last of month, snapshot at its
end)`; a year's chart is twelve of them. Answers are kept a while so that a page view does
not repeat a dozen aggregate queries; late events show up once an entry expires.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING

from models.indicators import INDICATORS
from models.measures import Period, Row, arrange, ratio
from web.reads import NotKept

if TYPE_CHECKING:
    from web.api import Source

PerUnit = dict[tuple[int, str], Row]


class Figures:
    """`ttl` seconds for periods that reach into the last `RECENT_DAYS`, `ttl_closed` for
    older ones: late events rarely reach that far back, and the monthly charts of past
    months are then not read again every minute."""

    RECENT_DAYS = 7

    def __init__(
        self, source: Source, today: Callable[[], date | None], ttl: float = 60.0,
        ttl_closed: float = 600.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.today = today
        self.ttl = ttl
        self.ttl_closed = ttl_closed
        self.clock = clock
        self._cache: dict[Period, tuple[float, PerUnit]] = {}
        self._lock = threading.Lock()

    def per_unit(self, period: Period) -> PerUnit:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(period)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            rows = self.source.per_unit(period)
        except NotKept:  # days the worker folded, without a store: shown as no figures
            rows = {}
        today = self.today()
        recent = today is None or period.last > today.toordinal() - self.RECENT_DAYS
        with self._lock:
            if len(self._cache) > 256:  # forget the expired ones
                self._cache = {p: e for p, e in self._cache.items() if e[0] > now}
            self._cache[period] = (now + (self.ttl if recent else self.ttl_closed), rows)
        return rows

    def between(self, first: date, last: date) -> PerUnit:
        """The period first..last, waiting counted at the end of `last`."""
        return self.per_unit(Period.of(first, last, last))

    def months(self, year: int, today: date) -> list[PerUnit | None]:
        """Per month of `year`: its rows, None for months after `today`.

        A year without a completed clock costs one query, not twelve.
        """
        if date(year, 1, 1) > today or not _completed(
            self.between(date(year, 1, 1), min(date(year, 12, 31), today))
        ):
            return [None] * 12
        return [self._month(year, month, today) for month in range(1, 13)]

    def whole_year(self, year: int, today: date) -> list[PerUnit] | None:
        """The months of a past year when each has completed clocks: a year to compare
        with, not the run-in of a log that starts late in it. Stops at the first gap."""
        out = []
        for month in range(1, 13):
            rows = self._month(year, month, today)
            if rows is None or not _completed(rows):
                return None
            out.append(rows)
        return out

    def _month(self, year: int, month: int, today: date) -> PerUnit | None:
        first = date(year, month, 1)
        if first > today:
            return None
        last = date(year, month, calendar.monthrange(year, month)[1])
        return self.between(first, min(last, today))


def _completed(per_unit: PerUnit) -> bool:
    return any(r.completed for r in per_unit.values())


def rows_of(per_unit: PerUnit, unit: str) -> dict[str, Row]:
    """Per indicator id: the unit's row, or the region-wide sum for `ALL`."""
    return {r.indicator: r for r in arrange(per_unit, unit) if r.unit_id == unit}


def share_within(row: Row | None) -> float | None:
    return None if row is None else ratio(row.completed_within, row.completed)


def monthly_shares(months: Sequence[PerUnit | None], unit: str) -> dict[str, list[float | None]]:
    """Per indicator id: the share within the limit of each month (None: nothing completed)."""
    per_month = [rows_of(m, unit) if m is not None else {} for m in months]
    return {
        ind.id: [share_within(rows.get(ind.id)) for rows in per_month] for ind in INDICATORS
    }

