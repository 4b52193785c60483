"""The at-risk worklist (SPEC §5.3): open clocks due within their indicator's horizon."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from models.calendar import from_micros
from models.clocks import ClockView
from models.indicators import BY_ID, INDICATORS


@dataclass(frozen=True, slots=True)
class AtRisk:
    case_id: str
    indicator: str
    unit_id: str
    started_at: str
    deadline: str
    days_left: int
    patient_ref: str | None  # pseudonymous reference only, never identity


def worklist(
    clocks: Iterable[tuple[str, ClockView]], today: date, indicator: str | None = None,
    unit: str | None = None, limit: int = 1000,
) -> list[AtRisk]:
    """Soonest deadline first, as the store's query orders them."""
    day = today.toordinal()
    want = BY_ID[indicator] if indicator is not None else None
    hits = sorted(
        (c.deadline, INDICATORS[c.indicator].id, c.unit, case_id, c)
        for case_id, c in clocks
        if c.state == "open" and 0 <= c.deadline - day <= INDICATORS[c.indicator].at_risk_days
        and (want is None or INDICATORS[c.indicator] is want) and (unit is None or c.unit == unit)
    )
    return [
        AtRisk(case_id, ind, u, from_micros(c.start).isoformat(),
               date.fromordinal(deadline).isoformat(), deadline - day, c.patient_ref)
        for deadline, ind, u, case_id, c in hits[:limit]
    ]
