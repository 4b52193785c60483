"""Guarantee clocks of one case, as a pure function of the set of its events (SPEC §3).

`evaluate` walks the case's facts in the canonical order (time, type-table rank, event id)
and returns every clock's contribution to the per-day counters, plus the events that do
not fit the case. Because the result depends only on the *set* of facts, any arrival order,
with any duplicates, gives the same result; the engine turns the difference between two
evaluations into deltas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from models import measures as m
from models.calendar import WorkCalendar, local_day, to_micros
from models.events import DUPLICATE, TYPE_RANK, Event
from models.indicators import (
    INDICATORS,
    LICENSED_PROFESSIONS,
    ORDER,
    DayRule,
    fulfilled_by,
    starts_indicator,
)

__all__ = ["DUPLICATE", "ClockView", "Fact", "Outcome", "Rules", "evaluate", "to_fact"]

R_CONTACT_REQ, R_CONTACT_DONE, R_ASSESS_NEEDED, R_ASSESS_DONE = 0, 1, 2, 3
R_PAUSE, R_RESUME, R_TRANSFER, R_CANCEL, R_EXTERNAL = 9, 10, 11, 12, 13
assert TYPE_RANK["wait.paused"] == R_PAUSE and TYPE_RANK["care.external"] == R_EXTERNAL

# For each type rank: the indicator positions it can fulfil (empty for non-fulfilments).
_FULFILS: tuple[tuple[int, ...], ...] = tuple(
    tuple(ORDER[i.id] for i in fulfilled_by(t)) for t in TYPE_RANK
)
_START_TYPES = frozenset(i.start_type for i in INDICATORS)
_TRE_DAGAR = ORDER["tre_dagar"]
NO_INDICATOR = -1


class Fact(NamedTuple):
    """The part of an event the rules need; tuples sort in the canonical order."""

    ts: int  # occurred_at, µs since the epoch (UTC)
    rank: int  # position of the type in SPEC §2's table: the tie-break
    event_id: str
    unit: str
    ind: int  # start: indicator opened; pause/resume: targeted indicator; else -1
    flag: int  # assessment.completed: 1 if licensed; wait.paused: 1 if patient's choice
    text: str | None  # start: patient_ref; transfer: to_unit_id


def to_fact(event: Event) -> Fact:
    """Reduce a validated event to a Fact (pure; no I/O)."""
    etype = event["type"]
    attrs: dict[str, Any] = dict(event.get("attributes") or {})
    rank = TYPE_RANK[etype]
    ind = NO_INDICATOR
    flag = 0
    text: str | None = None
    opened = starts_indicator(etype, attrs) if etype in _START_TYPES else None
    if opened is not None:
        ind = ORDER[opened.id]
        text = event.get("patient_ref")
    elif rank == R_ASSESS_DONE:
        flag = int(attrs["profession"] in LICENSED_PROFESSIONS)
    elif rank in (R_PAUSE, R_RESUME):
        target = attrs.get("indicator")
        ind = ORDER[target] if target else NO_INDICATOR
        flag = int(rank == R_PAUSE and attrs["reason"] == "patient_choice")
    elif rank == R_TRANSFER:
        text = attrs["to_unit_id"]
    return Fact(
        to_micros(event["occurred_at"]), rank, event["event_id"], event["unit_id"], ind, flag, text
    )


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings that change how clocks are counted."""

    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    mov_excludes: bool = False  # medical pause: pause (default) or exclude like PVV


STATE_NAMES = ("open", "paused", "excluded", "fulfilled", "cancelled")


class ClockView(NamedTuple):
    """A clock as it stands after the case's last event (the clocks table, the worklist)."""

    indicator: int
    unit: str
    state: str  # one of STATE_NAMES
    start: int  # µs; the restart instant after a patient-chosen wait
    deadline: int  # local date ordinal
    fulfilled: int | None  # µs
    within: bool | None
    external: bool
    patient_ref: str | None


@dataclass(slots=True)
class Outcome:
    keys: list[m.Key]  # contributions, each +1
    clocks: list[ClockView]
    anomalies: list[tuple[int, Fact]]  # (m.INCONSISTENT | m.ORPHAN, the fact)


OPEN, PAUSED, EXCLUDED, FULFILLED, CANCELLED = range(5)
_SPAN_MEASURE = {PAUSED: m.PAUSED, EXCLUDED: m.EXCLUDED}


class _Clock:
    __slots__ = (
        "breached", "deadline", "external", "fulfilled", "ind", "pause_day", "paused_days",
        "ref", "seg_from", "start", "state", "unit", "within",
    )

    def __init__(self, ind: int, fact: Fact, rules: Rules) -> None:
        self.ind = ind
        self.unit = fact.unit
        self.ref = fact.text
        self.state = OPEN
        self.seg_from = fact.ts
        self.pause_day = 0
        self.fulfilled: int | None = None
        self.within: bool | None = None
        self.external = False
        self.restart(fact.ts, rules)

    @property
    def ended(self) -> bool:
        return self.state >= FULFILLED

    def view(self) -> ClockView:
        return ClockView(
            self.ind, self.unit, STATE_NAMES[self.state], self.start, self.deadline,
            self.fulfilled, self.within, self.external, self.ref,
        )

    def restart(self, ts: int, rules: Rules) -> None:
        self.start = ts
        self.paused_days = 0
        self.breached = False
        self.deadline = self.base_deadline(rules)

    def base_deadline(self, rules: Rules) -> int:
        ind = INDICATORS[self.ind]
        if ind.day_rule is DayRule.SAME_DAY:
            return rules.calendar.same_day_deadline(self.start) + self.paused_days
        return local_day(self.start) + ind.limit_days + self.paused_days


def _close_segment(c: _Clock, ts: int, keys: list[m.Key]) -> None:
    """End the clock's current segment at `ts`, emitting its counter contributions."""
    a, b = local_day(c.seg_from), local_day(ts)
    if c.state == OPEN:
        _open_span(c, a, b, keys)
    elif c.state in _SPAN_MEASURE:
        keys.append((_SPAN_MEASURE[c.state], c.ind, c.unit, a, b))
    c.seg_from = ts


def _open_span(c: _Clock, a: int, b: int | None, keys: list[m.Key]) -> None:
    """An open stretch over local dates [a, b): waiting, over the limit, breach."""
    if b is not None and a == b:
        return  # never open at the end of a day: no snapshot sees it
    keys.append((m.WAITING, c.ind, c.unit, a, 0))
    if b is not None:
        keys.append((m.WAITING_END, c.ind, c.unit, b, 0))
    over = max(a, c.deadline + 1)
    if b is None or over < b:
        keys.append((m.OVER, c.ind, c.unit, over, 0))
        if b is not None:
            keys.append((m.OVER_END, c.ind, c.unit, b, 0))
    # still open at the end of its deadline day (or of a later day in this stretch):
    # breached, once per clock start, on the day after
    last_ok = max(a, c.deadline)
    if not c.breached and (b is None or b > last_ok):
        c.breached = True
        keys.append((m.BREACH, c.ind, c.unit, last_ok + 1, 0))


def evaluate(facts: list[Fact], rules: Rules) -> Outcome:
    """All clocks of one case. `facts` must be sorted and free of repeated event ids."""
    keys: list[m.Key] = []
    clocks: dict[int, _Clock] = {}
    unmatched: list[Fact] = []  # fulfilments that met no clock (yet)
    for f in facts:
        rank = f.rank
        if f.ind >= 0 and rank < R_PAUSE:  # a start
            if f.ind not in clocks:
                c = clocks[f.ind] = _Clock(f.ind, f, rules)
                keys.append((m.CLOCKS, c.ind, c.unit, local_day(f.ts), 0))
            continue
        fulfils = _FULFILS[rank]
        if fulfils:
            hit = False
            for i in fulfils:
                clock = clocks.get(i)
                if clock is None:
                    continue
                hit = True
                # an assessment by unlicensed staff is recorded but leaves tre_dagar open
                unlicensed = i == _TRE_DAGAR and rank == R_ASSESS_DONE and not f.flag
                if clock.state in (OPEN, PAUSED) and not unlicensed:
                    _fulfil(clock, f, rank == R_EXTERNAL, keys, rules)
            if not hit:
                unmatched.append(f)
        elif rank == R_PAUSE:
            for c in _targets(clocks, f.ind):
                if c.state == OPEN or (c.state == PAUSED and f.flag):
                    _close_segment(c, f.ts, keys)
                    if f.flag or rules.mov_excludes:
                        c.state = EXCLUDED
                    else:
                        c.state = PAUSED
                        c.pause_day = local_day(f.ts)
        elif rank == R_RESUME:
            for c in _targets(clocks, f.ind):
                if c.state == PAUSED:
                    _close_segment(c, f.ts, keys)
                    c.paused_days += local_day(f.ts) - c.pause_day
                    c.deadline = c.base_deadline(rules)
                    c.state = OPEN
                elif c.state == EXCLUDED:
                    _close_segment(c, f.ts, keys)
                    c.restart(f.ts, rules)  # PVV ends: a new start, pauses forgotten
                    c.state = OPEN
        elif rank == R_TRANSFER:
            to_unit = f.text or f.unit
            for c in clocks.values():
                if not c.ended and c.unit != to_unit:
                    _close_segment(c, f.ts, keys)
                    c.unit = to_unit
                    keys.append((m.CLOCKS, c.ind, c.unit, local_day(f.ts), 0))
        elif rank == R_CANCEL:
            for c in clocks.values():
                if not c.ended:
                    _close_segment(c, f.ts, keys)
                    c.state = CANCELLED
                    keys.append((m.CANCELLED, c.ind, c.unit, local_day(f.ts), 0))

    for c in clocks.values():
        if c.state == OPEN:
            _open_span(c, local_day(c.seg_from), None, keys)
        elif c.state in _SPAN_MEASURE:
            keys.append((_SPAN_MEASURE[c.state], c.ind, c.unit, local_day(c.seg_from), 0))
    anomalies: list[tuple[int, Fact]] = []
    for f in unmatched:
        # a start exists but later than this fulfilment: a data error; none at all: orphan
        reason = m.INCONSISTENT if any(i in clocks for i in _FULFILS[f.rank]) else m.ORPHAN
        keys.append((reason, NO_INDICATOR, f.unit, local_day(f.ts), 0))
        anomalies.append((reason, f))
    return Outcome(keys, [c.view() for c in clocks.values()], anomalies)


def _targets(clocks: dict[int, _Clock], ind: int) -> list[_Clock]:
    if ind == NO_INDICATOR:
        return list(clocks.values())
    c = clocks.get(ind)
    return [c] if c is not None else []


def _fulfil(c: _Clock, f: Fact, external: bool, keys: list[m.Key], rules: Rules) -> None:
    _close_segment(c, f.ts, keys)
    day = local_day(f.ts)
    if c.state == PAUSED:  # fulfilment ends the pause at that instant
        c.paused_days += day - c.pause_day
        c.deadline = c.base_deadline(rules)
    c.state = FULFILLED
    c.fulfilled = f.ts
    c.within = day <= c.deadline
    c.external = external
    keys.append((m.COMPLETED, c.ind, c.unit, day, 0))
    if c.within:
        keys.append((m.WITHIN, c.ind, c.unit, day, 0))
    if external:
        keys.append((m.EXTERNAL, c.ind, c.unit, day, 0))

