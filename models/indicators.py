"""The seven guarantee indicators: the one table every other part reads.

Limits, targets, last year's figures and the start/fulfil mapping live here and nowhere
else; metrics, alert rules, dashboards and the generator are built from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class DayRule(IntEnum):
    """How a clock's deadline is derived from its start."""

    SAME_DAY = 0  # weekday before 16:00 -> that day, else next weekday
    CALENDAR_DAYS = 1  # local start date + limit (+ paused days)


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    name_sv: str
    name_en: str
    limit_days: int
    day_rule: DayRule
    target: float
    result_2022: float
    result_2023: float
    start_type: str
    # attribute values the start event must carry, e.g. pathway/kind
    start_match: tuple[tuple[str, str], ...]
    fulfil_types: tuple[str, ...]
    # days before the deadline from which an open clock is on the at-risk worklist
    at_risk_days: int
    care_level: str  # primärvård | specialiserad vård | BUP


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "samma_dag", "Kontakt samma dag", "Same-day contact", 0, DayRule.SAME_DAY,
        1.00, 0.870, 0.884, "contact.requested", (), ("contact.completed",), 0, "primärvård",
    ),
    Indicator(
        "tre_dagar", "Medicinsk bedömning inom tre dagar", "Medical assessment within 3 days",
        3, DayRule.CALENDAR_DAYS, 0.85, 0.820, 0.806, "assessment.needed", (),
        ("assessment.completed",), 0, "primärvård",
    ),
    Indicator(
        "besok_90", "Första besök specialiserad vård inom 90 dagar",
        "First specialist visit within 90 days", 90, DayRule.CALENDAR_DAYS, 0.95, 0.774, 0.762,
        "referral.issued", (("pathway", "specialist"),), ("visit.completed",), 2,
        "specialiserad vård",
    ),
    Indicator(
        "atgard_90", "Operation/åtgärd inom 90 dagar", "Operation/treatment within 90 days",
        90, DayRule.CALENDAR_DAYS, 0.90, 0.681, 0.686, "decision.made",
        (("pathway", "specialist"), ("kind", "treatment")), ("treatment.started",), 2,
        "specialiserad vård",
    ),
    Indicator(
        "bup_besok_30", "BUP besök inom 30 dagar", "Child psychiatry first visit within 30 days",
        30, DayRule.CALENDAR_DAYS, 0.90, 0.450, 0.475, "referral.issued",
        (("pathway", "bup"),), ("visit.completed",), 2, "BUP",
    ),
    Indicator(
        "bup_utredning_30", "BUP utredning inom 30 dagar",
        "Child psychiatry investigation within 30 days", 30, DayRule.CALENDAR_DAYS, 0.80,
        0.345, 0.196, "decision.made", (("pathway", "bup"), ("kind", "investigation")),
        ("investigation.started",), 2, "BUP",
    ),
    Indicator(
        "bup_behandling_30", "BUP behandling inom 30 dagar",
        "Child psychiatry treatment within 30 days", 30, DayRule.CALENDAR_DAYS, 0.80, 0.522,
        0.429, "decision.made", (("pathway", "bup"), ("kind", "treatment")),
        ("treatment.started",), 2, "BUP",
    ),
)

BY_ID: dict[str, Indicator] = {i.id: i for i in INDICATORS}
INDICATOR_IDS: tuple[str, ...] = tuple(i.id for i in INDICATORS)
# position in the indicator table (docs/rules.md#de-sju-matten), the sort order of every report
ORDER: dict[str, int] = {i.id: n for n, i in enumerate(INDICATORS)}

# assessment.completed fulfils tre_dagar only when given by licensed staff (docs/rules.md#tre-dagar)
LICENSED_PROFESSIONS: frozenset[str] = frozenset({
    "lakare", "sjukskoterska", "distriktsskoterska", "barnmorska", "fysioterapeut",
    "arbetsterapeut", "psykolog", "psykoterapeut", "kurator", "dietist", "logoped",
})

# Unit id reserved for region-wide rows.
REGION_UNIT = "ALL"


def starts_indicator(event_type: str, attributes: dict[str, object]) -> Indicator | None:
    """The indicator a start event opens, or None if it opens none."""
    for ind in INDICATORS:
        if ind.start_type == event_type and all(
            attributes.get(k) == v for k, v in ind.start_match
        ):
            return ind
    return None


def fulfilled_by(event_type: str) -> tuple[Indicator, ...]:
    """The indicators an event type can fulfil (care.external fulfils any)."""
    if event_type == "care.external":
        return INDICATORS
    return tuple(i for i in INDICATORS if event_type in i.fulfil_types)
