"""What the pages read, built only from the API's `Source.per_unit` calls.

A month of the annual chart is `per_unit(first of month .. last of month, snapshot at its
end)`; a year's chart is twelve of them. Answers are kept a short while so a page view does
not repeat a dozen aggregate queries; late events show up once an entry expires.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from models.indicators import INDICATORS
from models.measures import Period, Row, arrange, ratio

if TYPE_CHECKING:
    from web.api import Source

PerUnit = dict[tuple[int, str], Row]


class Figures:
    def __init__(
        self, source: Source, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[Period, tuple[float, PerUnit]] = {}
        self._lock = threading.Lock()

    def per_unit(self, period: Period) -> PerUnit:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(period)
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = self.source.per_unit(period)
        with self._lock:
            if len(self._cache) > 256:  # forget the expired ones
                self._cache = {p: e for p, e in self._cache.items() if e[0] > now}
            self._cache[period] = (now + self.ttl, rows)
        return rows

    def between(self, first: date, last: date) -> PerUnit:
        """The period first..last, waiting counted at the end of `last`."""
        return self.per_unit(Period.of(first, last, last))

    def months(self, year: int, today: date) -> list[PerUnit | None]:
        """Per month of `year`: its rows, None for months after `today`.

        A year without a completed clock costs one query, not twelve.
        """
        if date(year, 1, 1) > today:
            return [None] * 12
        if not any(r.completed for r in self.between(date(year, 1, 1),
                                                     min(date(year, 12, 31), today)).values()):
            return [None] * 12
        out: list[PerUnit | None] = []
        for month in range(1, 13):
            first = date(year, month, 1)
            if first > today:
                out.append(None)
                continue
            last = date(year, month, calendar.monthrange(year, month)[1])
            out.append(self.between(first, min(last, today)))
        return out


def full_year(months: list[PerUnit | None]) -> bool:
    """Every month has completed clocks: a year to compare with, not the run-in of a log
    that starts late in it."""
    return all(m is not None and any(r.completed for r in m.values()) for m in months)


def rows_of(per_unit: PerUnit, unit: str) -> dict[str, Row]:
    """Per indicator id: the unit's row, or the region-wide sum for `ALL`."""
    return {r.indicator: r for r in arrange(per_unit, unit) if r.unit_id == unit}


def share_within(row: Row | None) -> float | None:
    return None if row is None else ratio(row.completed_within, row.completed)


def monthly_shares(months: list[PerUnit | None], unit: str) -> dict[str, list[float | None]]:
    """Per indicator id: the share within the limit of each month (None: nothing completed)."""
    per_month = [rows_of(m, unit) if m is not None else {} for m in months]
    return {
        ind.id: [share_within(rows.get(ind.id)) for rows in per_month] for ind in INDICATORS
    }

