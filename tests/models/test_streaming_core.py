"""The pure parts of the streaming mode: case state, counter groups, notices, the worklist."""

from __future__ import annotations

import random
from collections import Counter

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import end_of_day_micros
from models.casestate import CaseState
from models.clocks import Fact, Rules, to_fact
from models.countergroup import CounterGroup, group_key, parse_group_key, route_key
from models.engine import Engine, counts_of
from models.events import Rejection, parse_event
from models.indicators import ORDER
from models.live import LiveView
from models.measures import Key
from models.notices import AT_RISK, BREACH, due
from tests.support.events import ev

RULES = Rules()


def referral_case() -> list[Fact]:
    start = ev("referral.issued", "c1", "2024-03-01T09:00:00+01:00", pathway="specialist")
    start["patient_ref"] = "p-1"
    events = [
        start,
        ev("case.transferred", "c1", "2024-03-20T09:00:00+01:00", to_unit_id="u2"),
        ev("visit.completed", "c1", "2024-07-01T09:00:00+02:00", unit="u2"),
    ]
    out = []
    for e in events:
        parsed = parse_event(orjson.dumps(e))
        assert not isinstance(parsed, Rejection), parsed
        out.append(to_fact(parsed))
    return out


def test_case_state_deltas_sum_to_the_engine_and_survive_json() -> None:
    events = referral_case()
    state = CaseState(partition=2)
    total: Counter[Key] = Counter()
    carried = CaseState(partition=2)  # the same facts, its contributions kept between them
    before: list[Key] | None = None
    for e in reversed(events):  # out of order on purpose
        added = state.add(e, RULES)
        assert added is not None
        changes, after = added
        state = CaseState.from_json(state.to_json())  # as if read back from the changelog
        for k, n in changes:
            total[k] += n
        kept = carried.add(e, RULES, before)
        assert kept is not None and kept == (changes, after)
        before = after
    engine = Engine(RULES)
    for e in events:
        engine.add("c1", e)
    engine.settle()
    assert +total == +counts_of(engine)
    assert state.partition == 2 and [c.unit for c in state.clocks] == ["u2"]
    assert state.add(events[0], RULES) is None  # a repeated id changes nothing


def test_group_keys_round_trip_and_route_by_indicator_and_unit() -> None:
    key: Key = (1, 2, "unit|with|bars", 739000, 0)
    assert parse_group_key(group_key(2, 739000, "unit|with|bars")) == (2, 739000,
                                                                      "unit|with|bars")
    assert route_key(key) == route_key((5, 2, "unit|with|bars", 1, 7))
    assert route_key(key) != route_key((1, 3, "unit|with|bars", 739000, 0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 2)), min_size=1, max_size=40),
       st.integers(0, 2**31))
def test_counter_group_applies_each_offset_once_whatever_the_redelivery(
    changes: list[tuple[int, int]], seed: int
) -> None:
    """Deltas re-sent after a crash (any prefix, any re-batching) are applied once."""
    entries = [(offset, measure, 0, change) for offset, (measure, change) in enumerate(changes)]
    once = CounterGroup(0)
    once.apply(source=4, entries=entries)

    rnd = random.Random(seed)
    again = CounterGroup(0)
    done = 0
    while done < len(entries):
        # a batch, then maybe a crash that makes a suffix of what was sent come again
        step = rnd.randint(1, len(entries) - done)
        again.apply(4, entries[done:done + step])
        again = CounterGroup.from_json(again.to_json())
        done += step
        if rnd.random() < 0.5:
            back = rnd.randint(0, done)
            again.apply(4, entries[back:done])
    assert again.counts == once.counts
    # another source partition's offsets are independent
    again.apply(5, entries[:1])
    assert again.counts[(entries[0][1], 0)] == once.counts[(entries[0][1], 0)] + entries[0][3]


def test_notices_breach_and_at_risk_once_per_clock_start() -> None:
    state = CaseState(0)
    state.add(referral_case()[0], RULES)
    clock = state.clocks[0]
    deadline = clock.deadline
    assert due("c1", state.clocks, [], deadline - 3) == []
    risk = due("c1", state.clocks, [], deadline - 2)
    assert [n.kind for n in risk] == [AT_RISK] and risk[0].days_left == 2
    assert due("c1", state.clocks, [risk[0].notice_id], deadline) == []
    breach = due("c1", state.clocks, [risk[0].notice_id], deadline + 1)
    assert [n.kind for n in breach] == [BREACH] and breach[0].days_left == -1
    assert breach[0].patient_ref == "p-1" and breach[0].unit_id == "u1"
    assert due("c1", state.clocks, [risk[0].notice_id, breach[0].notice_id], deadline + 9) == []


def test_worklist_lists_clocks_within_the_horizon_and_over_it() -> None:
    state = CaseState(0)
    state.add(referral_case()[0], RULES)
    deadline = state.clocks[0].deadline
    view = LiveView()
    view.set_clocks("c1", state.clocks)
    view.advance(end_of_day_micros(deadline - 5))
    assert view.worklist() == []
    view.advance(end_of_day_micros(deadline - 1))
    items = view.worklist()
    assert [(i.case_id, i.indicator, i.days_left, i.days_over) for i in items] == [
        ("c1", "besok_90", 1, 0)]
    assert view.worklist(indicator=ORDER["atgard_90"]) == []
    view.advance(end_of_day_micros(deadline + 3))
    assert [(i.days_left, i.days_over) for i in view.worklist()] == [(-3, 3)]
