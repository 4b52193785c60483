"""Guarantee clocks of one case, as a pure function of the set of its events (docs/rules.md).

`evaluate` walks the case's facts in the canonical order (time, type-table rank, event id)
and returns every clock's contribution to the per-day counters, plus the events that do
not fit the case. Because the result depends only on the *set* of facts, any arrival order,
with any duplicates, gives the same result; the engine turns the difference between two
evaluations into deltas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any, NamedTuple

from models import measures as m
from models.calendar import WorkCalendar, intern_day, local_day, to_micros
from models.events import DUPLICATE, TYPE_RANK, Event
from models.indicators import (
    INDICATORS,
    LICENSED_PROFESSIONS,
    ORDER,
    DayRule,
    fulfilled_by,
    starts_indicator,
)

__all__ = [
    "AT_REST", "DUPLICATE", "ENDED", "ClockView", "Fact", "Outcome", "Rules", "evaluate",
    "fact_of", "is_start", "lone_views", "to_fact",
]

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
    rank: int  # position of the type in the event table (docs/events.md): the tie-break
    event_id: str
    unit: str
    ind: int  # start: indicator opened; pause/resume: targeted indicator; else -1
    flag: int  # assessment.completed: 1 if licensed; wait.paused: 1 if patient's choice
    text: str | None  # start: patient_ref; transfer: to_unit_id


def _start_table() -> dict[str, tuple[tuple[str, ...], dict[tuple[object, ...], int]]]:
    """Per start type: the attribute names its indicators match on, and for every
    combination of their values (None = absent) the indicator it opens (-1: none)."""
    table: dict[str, tuple[tuple[str, ...], dict[tuple[object, ...], int]]] = {}
    for etype in _START_TYPES:
        inds = [i for i in INDICATORS if i.start_type == etype]
        names = tuple(sorted({k for i in inds for k, _ in i.start_match}))
        choices = [sorted({v for i in inds for k, v in i.start_match if k == n}) for n in names]
        opens: dict[tuple[object, ...], int] = {}
        for values in product(*([None, *c] for c in choices)):
            attrs: dict[str, object] = {
                n: v for n, v in zip(names, values, strict=True) if v is not None
            }
            found = starts_indicator(etype, attrs)
            opens[values] = ORDER[found.id] if found is not None else NO_INDICATOR
        table[etype] = (names, opens)
    return table


_STARTS = _start_table()
START_TABLE = _STARTS  # for the typed decoder (models.decode)
_NO_ATTRS: dict[str, Any] = {}
_new_fact = tuple.__new__


def to_fact(event: Event) -> Fact:
    """Reduce a validated event to a Fact (pure; no I/O)."""
    return fact_of(
        event["type"], to_micros(event["occurred_at"]), event["event_id"], event["unit_id"],
        event.get("patient_ref"), event.get("attributes") or _NO_ATTRS,
    )


def fact_of(etype: str, ts: int, event_id: str, unit: str, patient_ref: str | None,
            attrs: Mapping[str, Any]) -> Fact:
    """The Fact of a validated event given by its fields (`ts` in µs since the epoch), for
    `to_fact`. The typed decoder (models.decode) makes the same facts its own way, per
    decoded type; tests/models/test_decode.py holds the two to the same result."""
    rank = TYPE_RANK[etype]
    ind = NO_INDICATOR
    flag = 0
    text: str | None = None
    start = _STARTS.get(etype)
    if start is not None:
        names, opens = start
        # a value outside the table (none passes validation) is looked up the slow way
        opened = opens.get(tuple([attrs.get(n) for n in names]))
        if opened is None:
            found = starts_indicator(etype, dict(attrs))
            opened = ORDER[found.id] if found is not None else NO_INDICATOR
        if opened >= 0:
            ind = opened
            text = patient_ref
    elif rank == R_ASSESS_DONE:
        flag = int(attrs["profession"] in LICENSED_PROFESSIONS)
    elif rank in (R_PAUSE, R_RESUME):
        target = attrs.get("indicator")
        ind = ORDER[target] if target else NO_INDICATOR
        flag = int(rank == R_PAUSE and attrs["reason"] == "patient_choice")
    elif rank == R_TRANSFER:
        text = attrs["to_unit_id"]
    # tuple.__new__ skips the generated NamedTuple constructor: this runs once per event
    return _new_fact(Fact, (ts, rank, event_id, unit, ind, flag, text))


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
# per indicator position, so a deadline costs two tuple lookups
_SAME_DAY = tuple(i.day_rule is DayRule.SAME_DAY for i in INDICATORS)
_LIMIT = tuple(i.limit_days for i in INDICATORS)
# measure codes as module constants: evaluate runs once per case and batch
_CLOCKS, _WAITING, _WAITING_END, _OVER, _OVER_END = (
    m.CLOCKS, m.WAITING, m.WAITING_END, m.OVER, m.OVER_END
)
_COMPLETED, _WITHIN, _EXTERNAL, _BREACH, _CANCELLED = (
    m.COMPLETED, m.WITHIN, m.EXTERNAL, m.BREACH, m.CANCELLED
)
_new_view = tuple.__new__


class _Clock:
    __slots__ = (
        "breached", "deadline", "external", "fulfilled", "ind", "pause_day", "paused_days",
        "ref", "seg_from", "start", "state", "unit", "within",
    )

    def __init__(self, ind: int, fact: Fact, rules: Rules) -> None:
        ts = fact.ts
        self.ind = ind
        self.unit = fact.unit
        self.ref = fact.text
        self.state = OPEN
        self.seg_from = ts
        self.pause_day = 0
        self.fulfilled: int | None = None
        self.within: bool | None = None
        self.external = False
        self.start = ts
        self.paused_days = 0
        self.breached = False
        self.deadline = (
            rules.calendar.same_day_deadline(ts) if _SAME_DAY[ind] else local_day(ts) + _LIMIT[ind]
        )

    @property
    def ended(self) -> bool:
        return self.state >= FULFILLED

    def view(self) -> ClockView:
        return _new_view(ClockView, (
            self.ind, self.unit, STATE_NAMES[self.state], self.start, intern_day(self.deadline),
            self.fulfilled, self.within, self.external, self.ref,
        ))

    def restart(self, ts: int, rules: Rules) -> None:
        self.start = ts
        self.paused_days = 0
        self.breached = False
        self.deadline = self.base_deadline(rules)

    def base_deadline(self, rules: Rules) -> int:
        if _SAME_DAY[self.ind]:
            return rules.calendar.same_day_deadline(self.start) + self.paused_days
        return local_day(self.start) + _LIMIT[self.ind] + self.paused_days


def _close_segment(c: _Clock, ts: int, keys: list[m.Key]) -> None:
    """End the clock's current segment at `ts`, emitting its counter contributions."""
    state = c.state
    if state == OPEN:
        _open_span(c, local_day(c.seg_from), local_day(ts), keys)
    elif state in _SPAN_MEASURE:
        keys.append((_SPAN_MEASURE[state], c.ind, c.unit, local_day(c.seg_from), local_day(ts)))
    c.seg_from = ts


def _open_span(c: _Clock, a: int, b: int | None, keys: list[m.Key]) -> None:
    """An open stretch over local dates [a, b): waiting, over the limit, breach."""
    if a == b:
        return  # never open at the end of a day: no snapshot sees it
    ind, unit, deadline = c.ind, c.unit, c.deadline
    keys.append((_WAITING, ind, unit, a, 0))
    if b is not None:
        keys.append((_WAITING_END, ind, unit, b, 0))
    over = a if a > deadline else deadline + 1
    if b is None or over < b:
        keys.append((_OVER, ind, unit, over, 0))
        if b is not None:
            keys.append((_OVER_END, ind, unit, b, 0))
    # still open at the end of its deadline day (or of a later day in this stretch):
    # breached, once per clock start, on the day after
    last_ok = a if a > deadline else deadline
    if not c.breached and (b is None or b > last_ok):
        c.breached = True
        keys.append((_BREACH, ind, unit, last_ok + 1, 0))


def evaluate(facts: Sequence[Fact], rules: Rules, *, views: bool = True) -> Outcome:
    """All clocks of one case. `facts` must be sorted and free of repeated event ids.
    `views=False` leaves `Outcome.clocks` empty, for callers that only count."""
    keys: list[m.Key] = []
    clocks: dict[int, _Clock] = {}
    unmatched: list[Fact] = []  # fulfilments that met no clock (yet)
    for f in facts:
        rank = f.rank
        ind = f.ind
        if ind >= 0 and rank < R_PAUSE:  # a start
            if ind not in clocks:
                clocks[ind] = _Clock(ind, f, rules)
                keys.append((_CLOCKS, ind, f.unit, local_day(f.ts), 0))
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
                if clock.state <= PAUSED and not (
                    i == _TRE_DAGAR and rank == R_ASSESS_DONE and not f.flag
                ):
                    _fulfil(clock, f, rank == R_EXTERNAL, keys, rules)
            if not hit:
                unmatched.append(f)
        elif rank == R_PAUSE:
            for c in _targets(clocks, ind):
                if c.state == OPEN or (c.state == PAUSED and f.flag):
                    _close_segment(c, f.ts, keys)
                    if f.flag or rules.mov_excludes:
                        c.state = EXCLUDED
                    else:
                        c.state = PAUSED
                        c.pause_day = local_day(f.ts)
        elif rank == R_RESUME:
            for c in _targets(clocks, ind):
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
                    keys.append((_CLOCKS, c.ind, c.unit, local_day(f.ts), 0))
        elif rank == R_CANCEL:
            for c in clocks.values():
                if not c.ended:
                    _close_segment(c, f.ts, keys)
                    c.state = CANCELLED
                    keys.append((_CANCELLED, c.ind, c.unit, local_day(f.ts), 0))

    out: list[ClockView] = []
    for c in clocks.values():
        if c.state == OPEN:
            _open_span(c, local_day(c.seg_from), None, keys)
        elif c.state in _SPAN_MEASURE:
            keys.append((_SPAN_MEASURE[c.state], c.ind, c.unit, local_day(c.seg_from), 0))
        if views:
            out.append(c.view())
    anomalies: list[tuple[int, Fact]] = []
    for f in unmatched:
        # a start exists but later than this fulfilment: a data error; none at all: orphan
        reason = m.INCONSISTENT if any(i in clocks for i in _FULFILS[f.rank]) else m.ORPHAN
        keys.append((reason, NO_INDICATOR, f.unit, local_day(f.ts), 0))
        anomalies.append((reason, f))
    return Outcome(keys, out, anomalies)


# states a clock never leaves
ENDED = frozenset({STATE_NAMES[FULFILLED], STATE_NAMES[CANCELLED]})
# states that no passing day changes, only a new event of the case: ended, or excluded (PVV
# ends with a `wait.resumed` or a `case.cancelled`, whenever that comes). A case whose clocks
# are all at rest needs no watching, so it may leave memory; a later event reads it back.
AT_REST = ENDED | {STATE_NAMES[EXCLUDED]}


def is_start(fact: Fact) -> bool:
    """The fact opens a clock (a start event that matched an indicator)."""
    return fact.ind >= 0 and fact.rank < R_PAUSE


def lone_views(fact: Fact, rules: Rules) -> list[ClockView]:
    """`evaluate([fact], rules).clocks` without the counters: a lone start is one open
    clock, any other lone fact none (the engine keeps no views for one-fact cases)."""
    if is_start(fact):
        return [_Clock(fact.ind, fact, rules).view()]
    return []


def _targets(clocks: dict[int, _Clock], ind: int) -> list[_Clock]:
    if ind == NO_INDICATOR:
        return list(clocks.values())
    c = clocks.get(ind)
    return [c] if c is not None else []


def _fulfil(c: _Clock, f: Fact, external: bool, keys: list[m.Key], rules: Rules) -> None:
    ts = f.ts
    day = local_day(ts)
    if c.state == OPEN:  # the common case: _close_segment inlined
        _open_span(c, local_day(c.seg_from), day, keys)
        c.seg_from = ts
    else:
        _close_segment(c, ts, keys)
    if c.state == PAUSED:  # fulfilment ends the pause at that instant
        c.paused_days += day - c.pause_day
        c.deadline = c.base_deadline(rules)
    c.state = FULFILLED
    c.fulfilled = ts
    within = c.within = day <= c.deadline
    c.external = external
    ind, unit = c.ind, c.unit
    keys.append((_COMPLETED, ind, unit, day, 0))
    if within:
        keys.append((_WITHIN, ind, unit, day, 0))
    if external:
        keys.append((_EXTERNAL, ind, unit, day, 0))
