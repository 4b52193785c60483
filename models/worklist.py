"""The one horizon rule (docs/rules.md#vattenstampel) and the worklist rows it selects
(docs/operations.md).

An open clock is *breached* once the watermark's local date is past its deadline day, and
*at risk* while its deadline is within its indicator's `at_risk_days`. The worklist, the
at-risk gauge and the breach/at-risk notices all ask `urgency`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from models.calendar import end_of_day_micros, from_micros
from models.clocks import ClockView, Fact, Rules, evaluate
from models.indicators import INDICATORS

BREACH, AT_RISK = "breach", "at_risk"
# per indicator position: days before the deadline from which an open clock is at risk
HORIZON: tuple[int, ...] = tuple(i.at_risk_days for i in INDICATORS)


def urgency(indicator: int, deadline: int, today: int) -> str | None:
    """BREACH, AT_RISK or None for an open clock due on `deadline` (date ordinals)."""
    left = deadline - today
    if left < 0:
        return BREACH
    return AT_RISK if left <= HORIZON[indicator] else None


@dataclass(frozen=True, slots=True)
class AtRisk:
    case_id: str
    indicator: str
    unit_id: str
    started_at: str
    deadline: str
    days_left: int  # negative once the deadline has passed
    patient_ref: str | None  # pseudonymous reference only, never identity
    days_over: int = 0  # days past the deadline (0 while still within it)

    def as_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "indicator": self.indicator, "unit_id": self.unit_id,
                "started_at": self.started_at, "deadline": self.deadline,
                "days_left": self.days_left, "patient_ref": self.patient_ref,
                "days_over": self.days_over}


def dates_of(c: ClockView) -> tuple[str, str]:
    """A clock's start and deadline as the worklist shows them."""
    return from_micros(c.start).isoformat(), date.fromordinal(c.deadline).isoformat()


def at_risk_row(case_id: str, c: ClockView, today: int,
                dates: tuple[str, str] | None = None) -> AtRisk:
    started, deadline = dates or dates_of(c)
    left = c.deadline - today
    return AtRisk(case_id, INDICATORS[c.indicator].id, c.unit, started, deadline, left,
                  c.patient_ref, max(0, -left))


def worklist_at(cases: Iterable[tuple[str, Sequence[Fact]]], rules: Rules, day: int,
                indicator: int | None = None, unit: str | None = None,
                limit: int = 1000) -> list[AtRisk]:
    """The worklist at the end of a past `day` from the cases' facts: each case evaluated on
    the facts it had by then (event time, as a report's snapshot), its open clocks put to
    `urgency`, most urgent first as the live worklist (deadline, indicator, unit, case)."""
    end = end_of_day_micros(day)
    due: list[tuple[int, str, str, str, ClockView]] = []
    for case_id, facts in cases:
        then = sorted(f for f in facts if f.ts <= end)
        if not then:
            continue
        for c in evaluate(then, rules).clocks:
            if (c.state == "open" and urgency(c.indicator, c.deadline, day) is not None
                    and indicator in (None, c.indicator) and unit in (None, c.unit)):
                due.append((c.deadline, INDICATORS[c.indicator].id, c.unit, case_id, c))
    due.sort(key=lambda d: d[:4])
    return [at_risk_row(case_id, c, day) for _, _, _, case_id, c in due[:limit]]
