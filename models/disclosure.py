"""What a figure may say about itself: final or preliminary, shown or suppressed.

Two rules of the national statistics, as settings (`grace_days`, `min_cases`):

- Late events still change past months, so a month is *final* only once the watermark is
  past its end plus a grace period (SKR publishes a month around the 25th of the next).
  Figures over a period are final when the month of their snapshot is.
- A measure built on fewer than `min_cases` cases is not shown (national default 20): it
  reads "< 20" instead of a number that could point at individual patients.

See docs/rules.md#slutliga-manader-och-sma-tal.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from models.measures import Row

GRACE_DAYS = 25
MIN_CASES = 20

# A measure, named for the count it is built on, and the row fields it hides.
SUPPRESSIBLE: dict[str, tuple[str, ...]] = {
    "completed": ("completed", "completed_within", "completed_ratio"),
    "waiting": ("waiting", "waiting_over_limit", "waiting_ratio"),
}


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True, slots=True)
class Disclosure:
    grace_days: int = GRACE_DAYS
    min_cases: int = MIN_CASES

    def final(self, as_of: date, watermark_day: date | None) -> bool:
        """True once the watermark's local date is past the end of `as_of`'s month plus
        the grace days."""
        if watermark_day is None:
            return False
        return watermark_day > self.final_after(as_of)

    def final_after(self, as_of: date) -> date:
        """The last local date on which `as_of`'s month is still preliminary."""
        return month_end(as_of) + timedelta(days=self.grace_days)

    def suppressed(self, row: Row) -> list[str]:
        """The measures of a row built on 1 .. min_cases-1 cases (none at all is no
        secret, and its ratio is null anyway)."""
        return [name for name in SUPPRESSIBLE if 0 < getattr(row, name) < self.min_cases]

    def listing(self, rows: Iterable[Row]) -> list[dict[str, Any]]:
        """The suppressed cells of some rows, beside them in JSON (the rows themselves keep
        the shape of `report`): indicator, unit_id and the measures to show as "< N"."""
        out: list[dict[str, Any]] = []
        for row in rows:
            hidden = self.suppressed(row)
            if hidden:
                out.append({"indicator": row.indicator, "unit_id": row.unit_id,
                            "measures": hidden})
        return out

    @property
    def label(self) -> str:
        """How a suppressed cell is shown."""
        return f"< {self.min_cases}"
