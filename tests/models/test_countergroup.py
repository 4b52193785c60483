"""Folding old days into a checkpoint keeps every figure still answered (pure)."""

from __future__ import annotations

from dataclasses import astuple

from hypothesis import given
from hypothesis import strategies as st

from models import measures as m
from models.countergroup import CounterGroup, checkpoint_key, group_key, is_checkpoint
from models.measures import Period, Row, accumulate

DAY0 = 739_000
MEASURES = (m.CLOCKS, m.WAITING, m.WAITING_END, m.OVER, m.OVER_END, m.COMPLETED, m.WITHIN,
            m.PAUSED, m.EXCLUDED, m.CANCELLED, m.BREACH)

counter = st.tuples(
    st.sampled_from(MEASURES), st.integers(0, 40), st.integers(0, 50), st.integers(-2, 3))


def groups_of(counters: list[tuple[int, int, int, int]]) -> dict[int, CounterGroup]:
    """Per-day groups of one indicator × unit; a span's until is after its day (or 0)."""
    days: dict[int, CounterGroup] = {}
    for offset, (measure, day, span, n) in enumerate(counters):
        until = DAY0 + day + span if measure in m.SPANS and span else 0
        g = days.setdefault(DAY0 + day, CounterGroup(0))
        g.apply(0, [(offset, measure, until, n)])
    return days


def nonzero(rows: dict[tuple[int, str], Row]) -> dict[tuple[int, str], Row]:
    """Rows with a figure other than zero: counters that net to zero may leave no row once
    folded (docs/live-view.md), where the day-by-day sum still had a row of zeros."""
    empty = Row("", "")
    return {k: r for k, r in rows.items()
            if astuple(r)[2:] != astuple(empty)[2:]}


@given(st.lists(counter, max_size=60), st.integers(0, 40), st.integers(1, 30))
def test_periods_after_the_folded_days_sum_the_same(
    counters: list[tuple[int, int, int, int]], through: int, length: int,
) -> None:
    days = groups_of(counters)
    cp = CounterGroup(0)
    kept = []
    for day, g in sorted(days.items()):
        if day <= DAY0 + through:
            cp.fold(g, day)
        else:
            kept.append((group_key(0, day, "u"), g))
    folded = list(cp.items(checkpoint_key(0, "u"))) if cp.through is not None else []
    whole = [kv for day, g in days.items() for kv in g.items(group_key(0, day, "u"))]
    first = DAY0 + through + 1
    for last in (first, first + length):
        period = Period(first, last, last)
        rows = accumulate([*folded, *(kv for k, g in kept for kv in g.items(k))], period)
        assert nonzero(rows) == nonzero(accumulate(whole, period))
    # a repeat of anything folded is skipped; a later offset is not
    if cp.through is not None:
        assert cp.apply(0, [(cp.seen[0], m.WAITING, 0, 1)]) == []
        assert cp.apply(0, [(len(counters), m.WAITING, 0, 1)]) == [(m.WAITING, 0, 1)]


def test_a_checkpoint_travels_as_json_and_is_told_apart_by_its_key() -> None:
    day = CounterGroup(3)
    day.apply(1, [(7, m.PAUSED, DAY0 + 2, 1), (8, m.PAUSED, DAY0 + 9, 1), (9, m.WAITING, 0, 2)])
    cp = CounterGroup(3)
    cp.fold(day, DAY0 + 5)
    assert cp.through == DAY0 + 5
    # the span that ended by the folded day nets to zero everywhere and is gone
    assert cp.counts == {(m.PAUSED, DAY0 + 9): 1, (m.WAITING, 0): 2}
    assert cp.seen == {1: 9}
    assert CounterGroup.from_json(cp.to_json()) == cp
    assert is_checkpoint(checkpoint_key(2, "a|b")) and not is_checkpoint(group_key(2, 5, "a|b"))
    assert {k[3] for k, _ in cp.items(checkpoint_key(2, "u"))} == {DAY0 + 5}
