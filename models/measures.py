"""Per-day counters and the measures (docs/rules.md#matten) computed from them.

A counter key is `(measure, indicator, unit, day, until)`: days are local date ordinals,
`until` is 0 unless the key is a span. Every measure is a sum of counters, so months and
rolling windows are sums over days, ratios are computed at the edge, and a late event only
moves a few counters (−old, +new).

- WAITING / WAITING_END: +1 on the day a clock became open at a unit, +1 on the day it
  stopped; waiting at a snapshot day D = Σ WAITING(day ≤ D) − Σ WAITING_END(day ≤ D).
  OVER / OVER_END the same for "open and past the deadline".
- COMPLETED / WITHIN / EXTERNAL: on the local date of the fulfilment.
- PAUSED / EXCLUDED / CANCELLED: spans [day, until) of a clock in that state at a unit,
  `day` being its last change of state (a transfer counts as a change); until 0 = still.
- CLOCKS: the day a unit got a clock (start or transfer in): a unit has a row once it has one.
- BREACH: the day after the deadline day at whose end the clock was still open.
- INCONSISTENT / ORPHAN: events that fit no clock, on their local date (indicator -1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from models.indicators import BY_ID, INDICATORS, REGION_UNIT

Key = tuple[int, int, str, int, int]

(
    CLOCKS, WAITING, WAITING_END, OVER, OVER_END, COMPLETED, WITHIN, EXTERNAL,
    PAUSED, EXCLUDED, CANCELLED, BREACH, INCONSISTENT, ORPHAN,
) = range(14)
MEASURE_NAMES: tuple[str, ...] = (
    "clocks", "waiting", "waiting_end", "over", "over_end", "completed", "within", "external",
    "paused", "excluded", "cancelled", "breach", "inconsistent", "orphan",
)
MEASURE_CODES: dict[str, int] = {name: n for n, name in enumerate(MEASURE_NAMES)}
ANOMALY_REASONS: dict[int, str] = {INCONSISTENT: "inconsistent", ORPHAN: "orphan"}
SPANS = (PAUSED, EXCLUDED, CANCELLED)  # measures kept as spans [day, until)
# Snapshot counters kept as +1 on the day a clock enters, +1 on the day it leaves: the
# field they move and the sign, for every loop that sums them.
_SNAPSHOT: dict[int, tuple[str, int]] = {
    WAITING: ("waiting", 1), WAITING_END: ("waiting", -1),
    OVER: ("waiting_over_limit", 1), OVER_END: ("waiting_over_limit", -1),
}


def ratio(num: int, den: int) -> float | None:
    """A share rounded to 4 decimals; None (JSON null) when there is nothing to divide."""
    return round(num / den, 4) if den else None


@dataclass(slots=True)
class Row:
    """One indicator × unit at a snapshot over a period: the JSON row of `report`
    (docs/commands.md)."""

    indicator: str
    unit_id: str
    completed: int = 0
    completed_within: int = 0
    waiting: int = 0
    waiting_over_limit: int = 0
    paused: int = 0
    excluded: int = 0
    cancelled: int = 0
    clocks: int = 0

    def add(self, other: Row) -> None:
        self.completed += other.completed
        self.completed_within += other.completed_within
        self.waiting += other.waiting
        self.waiting_over_limit += other.waiting_over_limit
        self.paused += other.paused
        self.excluded += other.excluded
        self.cancelled += other.cancelled
        self.clocks += other.clocks

    def as_dict(self) -> dict[str, Any]:
        return {
            "indicator": self.indicator,
            "unit_id": self.unit_id,
            "completed": self.completed,
            "completed_within": self.completed_within,
            "completed_ratio": ratio(self.completed_within, self.completed),
            "waiting": self.waiting,
            "waiting_over_limit": self.waiting_over_limit,
            "waiting_ratio": ratio(self.waiting - self.waiting_over_limit, self.waiting),
            "paused": self.paused,
            "excluded": self.excluded,
            "cancelled": self.cancelled,
            "target": BY_ID[self.indicator].target,
        }


@dataclass(frozen=True, slots=True)
class Period:
    """Local dates [first, last] and the snapshot at the end of local day `as_of`."""

    first: int
    last: int
    as_of: int

    @classmethod
    def of(cls, first: date, last: date, as_of: date) -> Period:
        if first > last:
            raise ValueError(f"period: from {first} is after to {last}")
        if last > as_of:
            raise ValueError(f"period: to {last} is after the snapshot date {as_of}")
        return cls(first.toordinal(), last.toordinal(), as_of.toordinal())


def accumulate(counts: Iterable[tuple[Key, int]], period: Period) -> dict[tuple[int, str], Row]:
    """Per (indicator position, unit) rows of one period, from counter items."""
    rows: dict[tuple[int, str], Row] = {}
    first, last, snap = period.first, period.last, period.as_of
    for (measure, ind, unit, day, until), n in counts:
        if day > snap or ind < 0 or not n:
            continue
        row = rows.get((ind, unit))
        if row is None:
            row = rows[(ind, unit)] = Row(INDICATORS[ind].id, unit)
        moved = _SNAPSHOT.get(measure)
        if moved is not None:
            setattr(row, moved[0], getattr(row, moved[0]) + moved[1] * n)
        elif measure == CLOCKS:
            row.clocks += n
        elif first <= day <= last:
            if measure == COMPLETED:
                row.completed += n
            elif measure == WITHIN:
                row.completed_within += n
            elif measure in SPANS and (until == 0 or until > snap):
                if measure == PAUSED:
                    row.paused += n
                elif measure == EXCLUDED:
                    row.excluded += n
                else:
                    row.cancelled += n
    return rows


def rows_for(
    counts: Iterable[tuple[Key, int]], period: Period, unit: str | None = None
) -> list[Row]:
    """Report rows: per indicator the region-wide `ALL` row first, then units by id."""
    return arrange(accumulate(counts, period), unit)


def arrange(per_unit: dict[tuple[int, str], Row], unit: str | None = None) -> list[Row]:
    """Units with a clock get a row; `ALL` sums them; `unit` keeps one unit (or `ALL`)."""
    region: dict[int, Row] = {}
    units: dict[int, list[Row]] = {}
    for (ind, u), row in sorted(per_unit.items()):  # once: indicator, then unit id
        if row.clocks > 0:
            total = region.get(ind)
            if total is None:
                total = region[ind] = Row(INDICATORS[ind].id, REGION_UNIT)
                units[ind] = []
            total.add(row)
            if unit is None or u == unit:
                units[ind].append(row)
    out: list[Row] = []
    for ind in sorted(region):
        if unit in (None, REGION_UNIT):
            out.append(region[ind])
        if unit != REGION_UNIT:
            out.extend(units[ind])
    return out


# Rolling windows (docs/rules.md#perioder): the N local dates ending with the watermark's
# date, and the calendar month to date.
WINDOWS: tuple[str, ...] = ("month", "7d", "30d", "90d", "365d")


def window_first(window: str, as_of: date) -> date:
    if window == "month":
        return as_of.replace(day=1)
    if window.endswith("d") and window[:-1].isdigit():
        return date.fromordinal(as_of.toordinal() - int(window[:-1]) + 1)
    raise ValueError(f"window: '{window}' is not one of {', '.join(WINDOWS)}")
