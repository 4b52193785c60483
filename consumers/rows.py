"""The `events` and `clocks` rows of a batch, built from facts and clock views.

Pure (no database): the store builds them for its writers, and the processes of
`replay --jobs` build their own so that the one writing process only writes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from models.calendar import from_micros
from models.clocks import ClockView, Fact
from models.indicators import INDICATORS

TableRow = dict[str, Any]


def event_rows(facts: Iterable[tuple[str, Fact]]) -> list[TableRow]:
    """One `events` row per fact (what a rebuild reads back)."""
    return [
        {"case_id": c, "event_id": f.event_id, "ts_us": f.ts, "rank": f.rank,
         "unit_id": f.unit, "ind": f.ind, "flag": f.flag, "text": f.text}
        for c, f in facts
    ]


def clock_rows(clocks: Iterable[tuple[str, ClockView]]) -> list[TableRow]:
    """One `clocks` row per clock view."""
    return [_clock_row(c, v) for c, v in clocks]


def _clock_row(case_id: str, c: ClockView) -> TableRow:
    return {
        "case_id": case_id,
        "indicator": INDICATORS[c.indicator].id,
        "unit_id": c.unit,
        "state": c.state,
        "started_at": from_micros(c.start),
        "deadline": date.fromordinal(c.deadline),
        "fulfilled_at": from_micros(c.fulfilled) if c.fulfilled is not None else None,
        "within": c.within,
        "external": c.external,
        "patient_ref": c.patient_ref,
    }
