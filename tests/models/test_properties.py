"""Invariants of the core (docs/design.md), by hypothesis.

- any permutation of the log, with any duplicate deliveries, gives the same counters (and so
  the same report) as the clean sorted log;
- the sum of the deltas the engine emits, event by event, equals a recompute from scratch.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from models.clocks import Rules, to_fact
from models.engine import Engine, counts_of
from models.events import Rejection, parse_event
from models.indicators import INDICATOR_IDS
from models.measures import Key
from tests.support.events import facts_by_case

BASE = datetime(2024, 3, 25, 6, tzinfo=UTC)  # spans the DST switch of 31 March

_ATTRS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "contact.requested": st.fixed_dictionaries({"channel": st.sampled_from(["phone", "visit"])}),
    "contact.completed": st.just({}),
    "assessment.needed": st.just({}),
    "assessment.completed": st.fixed_dictionaries(
        {"profession": st.sampled_from(["lakare", "underskoterska", "kurator"])}
    ),
    "referral.issued": st.fixed_dictionaries({"pathway": st.sampled_from(["specialist", "bup"])}),
    "visit.completed": st.just({}),
    "decision.made": st.sampled_from([
        {"pathway": "specialist", "kind": "treatment"},
        {"pathway": "bup", "kind": "treatment"},
        {"pathway": "bup", "kind": "investigation"},
    ]),
    "treatment.started": st.just({}),
    "investigation.started": st.just({}),
    "wait.paused": st.fixed_dictionaries(
        {"reason": st.sampled_from(["patient_choice", "medical"])},
        optional={"indicator": st.sampled_from(INDICATOR_IDS)},
    ),
    "wait.resumed": st.fixed_dictionaries(
        {}, optional={"indicator": st.sampled_from(INDICATOR_IDS)}
    ),
    "case.transferred": st.fixed_dictionaries({"to_unit_id": st.sampled_from(["u1", "u2"])}),
    "case.cancelled": st.just({}),
    "care.external": st.just({}),
}


@st.composite
def event(draw: st.DrawFn, n: int) -> dict[str, Any]:
    etype = draw(st.sampled_from(sorted(_ATTRS)))
    # coarse times so that ties (same instant) happen and exercise the tie-break
    minutes = draw(st.integers(0, 200)) * 337
    ts = BASE + timedelta(minutes=minutes)
    offset = draw(st.sampled_from(["+00:00", "+01:00", "+05:30"]))
    sign, hh, mm = offset[0], int(offset[1:3]), int(offset[4:])
    local = ts + (1 if sign == "+" else -1) * timedelta(hours=hh, minutes=mm)
    return {
        "event_id": f"e{n}",
        "type": etype,
        "case_id": draw(st.sampled_from(["c1", "c2", "c3"])),
        "occurred_at": local.strftime("%Y-%m-%dT%H:%M:%S") + offset,
        "unit_id": draw(st.sampled_from(["u1", "u2", "u3"])),
        "attributes": draw(_ATTRS[etype]),
    }


@st.composite
def log(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(1, 14))
    return [draw(event(n)) for n in range(size)]


def _sorted_counts(events: list[dict[str, Any]]) -> Counter[Key]:
    engine = Engine(Rules())
    for case_id, facts in facts_by_case(events).items():
        for fact in facts:
            engine.add(case_id, fact)
    engine.settle()
    return +counts_of(engine)  # drop zero entries


def _engine_counts(events: list[dict[str, Any]]) -> Counter[Key]:
    engine = Engine()
    counts: Counter[Key] = Counter()
    for raw in events:
        import orjson

        parsed = parse_event(orjson.dumps(raw))
        assert not isinstance(parsed, Rejection)
        for key, n in engine.apply(parsed["case_id"], to_fact(parsed)):
            counts[key] += n
    assert all(n >= 0 for n in counts.values()), "a counter went negative"
    return +counts


@settings(max_examples=300, deadline=None)
@given(log(), st.randoms(use_true_random=False), st.lists(st.integers(0, 13), max_size=6))
def test_any_order_with_duplicates_equals_the_sorted_log(
    events: list[dict[str, Any]], rnd: Any, dup_positions: list[int]
) -> None:
    expected = _sorted_counts(events)
    delivered = list(events) + [events[i % len(events)] for i in dup_positions]
    rnd.shuffle(delivered)
    assert _engine_counts(delivered) == expected


@settings(max_examples=200, deadline=None)
@given(log())
def test_sum_of_deltas_equals_recompute_in_log_order(events: list[dict[str, Any]]) -> None:
    assert _engine_counts(events) == _sorted_counts(events)
    assert _engine_counts(list(reversed(events))) == _sorted_counts(events)
