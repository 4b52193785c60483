"""Window reads by running sums: per_unit and the window_counts view equal the pure
arithmetic (models.measures) under any sequence of counter moves, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text

from consumers.sqlviews import VIEW
from consumers.store import COUNTS, GROUPS, Store
from models import measures as m
from models.indicators import INDICATORS
from models.measures import WINDOWS, Key, Period, accumulate, arrange, window_first
from models.tables import SPAN_MEASURES

DAY0 = date(2024, 1, 25).toordinal()  # the window over a month's turn
DAYS = 20
SPANS = tuple(m.MEASURE_CODES[name] for name in SPAN_MEASURES)


@st.composite
def keys(draw: st.DrawFn) -> Key:
    measure = draw(st.sampled_from(range(len(m.MEASURE_NAMES))))
    day = DAY0 + draw(st.integers(0, DAYS - 1))
    until = 0
    if measure in SPANS and draw(st.booleans()):
        until = day + draw(st.integers(1, 8))
    ind = draw(st.sampled_from([0, 3, -1] if measure in (m.INCONSISTENT, m.ORPHAN) else [0, 3]))
    return (measure, ind, draw(st.sampled_from(["u1", "u2"])), day, until)


# batches of absolute counter values, as the replay and the sink write them; 0 = back at zero
batches = st.lists(st.dictionaries(keys(), st.integers(0, 4), max_size=25), min_size=1,
                   max_size=5)


def _clear(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(COUNTS))
        conn.execute(delete(GROUPS))


def _apply(store: Store, moves: list[dict[Key, int]]) -> dict[Key, int]:
    state: dict[Key, int] = {}
    for batch in moves:
        store.write_batch([], [], batch, [])
        state.update(batch)
    return state


def _expected(state: dict[Key, int], period: Period) -> dict[tuple[int, str], m.Row]:
    return {k: r for k, r in accumulate(state.items(), period).items() if r.clocks > 0}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=batches, a=st.integers(0, DAYS + 2), b=st.integers(0, DAYS + 2),
       c=st.integers(0, DAYS + 2))
def test_per_unit_equals_accumulate(store: Store, moves: list[dict[Key, int]], a: int, b: int,
                                    c: int) -> None:
    _clear(store)
    state = _apply(store, moves)
    first, last, snap = sorted((a, b, c))
    period = Period(DAY0 + first, DAY0 + last, DAY0 + snap)
    assert store.per_unit(period) == _expected(state, period)
    only = {k: r for k, r in _expected(state, period).items() if k[0] == 3}
    assert store.per_unit(period, INDICATORS[3].id) == only


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=batches, day=st.integers(0, DAYS - 1), window=st.sampled_from(WINDOWS))
def test_view_gives_the_rows_of_query(store: Store, moves: list[dict[Key, int]], day: int,
                                      window: str) -> None:
    _clear(store)
    state = _apply(store, moves)
    # the view's calendar ends at the newest day with a counter: no figures past the data
    newest = max((k[3] for k, n in state.items()
                  if n and k[1] >= 0 and k[0] not in (m.OVER, m.BREACH)), default=DAY0)
    as_of = date.fromordinal(min(DAY0 + day, newest))
    period = Period.of(window_first(window, as_of), as_of, as_of)
    want = [r.as_dict() for r in arrange(accumulate(state.items(), period))]
    with store.engine.connect() as conn:
        got = [dict(r) for r in conn.execute(text(
            f"SELECT * FROM {VIEW} WHERE as_of = :d AND window_name = :w "
            "ORDER BY indicator_order, unit_id <> 'ALL', unit_id"),
            {"d": as_of.isoformat(), "w": window}).mappings()]
    assert [_plain(r) for r in got] == [_plain(r) for r in want]
    for r in got:
        assert str(r["from_day"]) == date.fromordinal(period.first).isoformat()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its numbers as Python ints and floats (PostgreSQL gives Decimals)."""
    keep = ("indicator", "unit_id", "completed", "completed_within", "completed_ratio",
            "waiting", "waiting_over_limit", "waiting_ratio", "paused", "excluded",
            "cancelled", "target")
    return {k: row[k] if isinstance(row[k], str | None) else
            float(row[k]) if k.endswith(("ratio", "target")) else int(row[k]) for k in keep}


def test_running_sums_follow_late_moves_and_zeros(store: Store) -> None:
    """A late event moving an old day, and a counter back at zero, shift every later sum."""
    key = (m.COMPLETED, 0, "u1")
    store.write_batch([], [], {(*key, DAY0 + d, 0): 1 for d in (0, 5, 9)}, [])
    store.write_batch([], [], {(*key, DAY0 + 2, 0): 4, (*key, DAY0 + 5, 0): 0}, [])
    with store.engine.connect() as conn:
        rows = conn.execute(select(COUNTS.c.day, COUNTS.c.count, COUNTS.c.running)
                            .where(COUNTS.c.measure == "completed")
                            .order_by(COUNTS.c.day)).all()
    assert [(d.toordinal() - DAY0, n, r) for d, n, r in rows] == [
        (0, 1, 1), (2, 4, 5), (9, 1, 6)]


def _stored_counts(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(COUNTS)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=batches)
def test_a_bulk_load_keeps_the_running_sums_it_would_read_back(
        store: Store, moves: list[dict[Key, int]]) -> None:
    """In a bulk load the sums of the suffixes it wrote come from memory (running.Tails),
    not from reading the store: the same rows, whatever the order of the moves."""
    _clear(store)
    _apply(store, moves)
    read_back = _stored_counts(store)
    _clear(store)
    with store.loading():
        _apply(store, moves)
    assert _stored_counts(store) == read_back


def test_a_failed_batch_of_a_bulk_load_leaves_no_running_sum_behind(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a batch computed for a write that failed is not used by later batches."""
    a, b = (m.COMPLETED, 0, "u1"), (m.COMPLETED, 0, "u2")
    with store.loading():
        store.write_batch([], [], {(*a, DAY0 + 1, 0): 1}, [])
        with monkeypatch.context() as patched:
            def broken(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
                raise RuntimeError("the connection went away")
            patched.setattr("consumers.store._group_rows", broken)
            with pytest.raises(RuntimeError):
                store.write_batch([], [], {(*b, DAY0 + 3, 0): 5}, [])
        store.write_batch([], [], {(*a, DAY0 + 4, 0): 2}, [])
        store.write_batch([], [], {(*b, DAY0 + 4, 0): 2}, [])
    with store.engine.connect() as conn:
        rows = conn.execute(select(COUNTS.c.unit_id, COUNTS.c.day, COUNTS.c.count,
                                   COUNTS.c.running)
                            .where(COUNTS.c.measure == "completed")
                            .order_by(COUNTS.c.unit_id, COUNTS.c.day)).all()
    assert [(u, d.toordinal() - DAY0, n, r) for u, d, n, r in rows] == [
        ("u1", 1, 1, 1), ("u1", 4, 2, 3), ("u2", 4, 2, 2)]


def test_view_ends_at_the_newest_event_not_at_a_future_deadline(store: Store) -> None:
    """An open clock's over-limit and breach counters are dated after its deadline: the
    view shows no figures for those days (as if time had passed with no events)."""
    group = (0, "u1")
    store.write_batch([], [], {
        (m.CLOCKS, *group, DAY0, 0): 1, (m.WAITING, *group, DAY0, 0): 1,
        (m.OVER, *group, DAY0 + 91, 0): 1, (m.BREACH, *group, DAY0 + 92, 0): 1}, [])
    with store.engine.connect() as conn:
        last = conn.execute(text(f"SELECT MAX(as_of) FROM {VIEW}")).scalar_one()
    assert str(last) == date.fromordinal(DAY0).isoformat()


@pytest.mark.parametrize("window", WINDOWS)
def test_view_is_empty_before_any_counter(store: Store, window: str) -> None:
    with store.engine.connect() as conn:
        n = conn.execute(text(f"SELECT COUNT(*) FROM {VIEW} WHERE window_name = :w"),
                         {"w": window}).scalar_one()
    assert n == 0


def test_docs_name_every_measure_and_view_column(store: Store) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "sql.md").read_text(encoding="utf-8")
    with store.engine.connect() as conn:
        columns = list(conn.execute(text(f"SELECT * FROM {VIEW} LIMIT 0")).keys())
    assert len(columns) == 17
    for name in (*m.MEASURE_NAMES, *columns, *WINDOWS):
        assert f"`{name}`" in doc, name


def test_a_store_from_before_running_sums_is_migrated_on_open(store: Store) -> None:
    moves = {(m.CLOCKS, 0, "u1", DAY0, 0): 3, (m.WAITING, 0, "u1", DAY0, 0): 3,
             (m.WAITING_END, 0, "u1", DAY0 + 4, 0): 1, (m.COMPLETED, 0, "u1", DAY0 + 4, 0): 1,
             (m.WITHIN, 0, "u1", DAY0 + 4, 0): 1, (m.OVER, 0, "u1", DAY0 + 91, 0): 2}
    store.write_batch([], [], moves, [])
    period = Period(DAY0 + 2, DAY0 + 6, DAY0 + 6)
    before = store.per_unit(period)
    with store.engine.begin() as conn:  # the schema as it was
        conn.execute(text(f"DROP VIEW {VIEW}"))
        conn.execute(text("DROP TABLE count_groups"))
        conn.execute(text("ALTER TABLE daily_counts DROP COLUMN running"))
    again = Store(store.url)
    try:
        assert again.per_unit(period) == before == _expected(moves, period)
        with again.engine.connect() as conn:
            last = conn.execute(text(f"SELECT MAX(as_of) FROM {VIEW}")).scalar_one()
        assert str(last) == date.fromordinal(DAY0 + 4).isoformat()
    finally:
        again.engine.dispose()
