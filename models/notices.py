"""Breach and at-risk notices (docs/rules.md#vattenstampel): open clocks the watermark made due.

Which open clocks are breached or at risk is `models.worklist.urgency`. Each notice
has a stable id (case, indicator, clock start), so it is emitted once per clock start and a
consumer can de-duplicate after a crash. Pure: the caller passes "today".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from models.calendar import from_micros
from models.clocks import ClockView
from models.indicators import INDICATORS
from models.worklist import AT_RISK, BREACH, urgency

__all__ = ["AT_RISK", "BREACH", "Notice", "due"]


@dataclass(frozen=True, slots=True)
class Notice:
    notice_id: str
    kind: str  # breach | at_risk
    case_id: str
    indicator: str
    unit_id: str
    started_at: str
    deadline: str
    days_left: int  # negative once breached
    as_of: str  # the watermark's local date that made it due
    patient_ref: str | None  # pseudonymous reference only, never identity

    def as_dict(self) -> dict[str, Any]:
        # flat fields: `dataclasses.asdict` would deep-copy each value, per notice sent
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(Notice))


def due(case_id: str, clocks: Iterable[ClockView], sent: Iterable[str], today: int) -> list[Notice]:
    """Notices that `today` (the watermark's local date ordinal) makes due and not yet sent."""
    done = set(sent)
    out: list[Notice] = []
    for c in clocks:
        if c.state != "open":
            continue
        kind = urgency(c.indicator, c.deadline, today)
        if kind is None:
            continue
        left = c.deadline - today
        ind = INDICATORS[c.indicator].id
        notice_id = f"{kind}:{case_id}:{ind}:{c.start}"
        if notice_id in done:
            continue
        out.append(Notice(
            notice_id, kind, case_id, ind, c.unit, from_micros(c.start).isoformat(),
            date.fromordinal(c.deadline).isoformat(), left, date.fromordinal(today).isoformat(),
            c.patient_ref,
        ))
    return out
