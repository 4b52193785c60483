"""The engine's compact case state (models/engine.py), batch by batch, by hypothesis.

A case keeps only its facts (and the clock views of cases of two facts or more); earlier
contributions are recomputed, or taken from the last batch. Whatever the batches, the
deltas must add up to a recompute, and the clocks must be what a fresh evaluation gives.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from models.clocks import Fact, Rules, evaluate, to_fact
from models.engine import Engine, counts_of
from models.events import Rejection, parse_event
from models.measures import Key
from tests.models.test_properties import log


def _facts(events: list[dict[str, Any]]) -> list[tuple[str, Fact]]:
    out = []
    for raw in events:
        parsed = parse_event(orjson.dumps(raw))
        assert not isinstance(parsed, Rejection)
        out.append((parsed["case_id"], to_fact(parsed)))
    return out


def _fresh(engine: Engine, case_id: str) -> Any:
    facts = sorted({f.event_id: f for f in reversed(engine.settled_facts(case_id))}.values())
    return evaluate(facts, engine.rules)


@settings(max_examples=300, deadline=None)
@given(log(), st.lists(st.integers(1, 5), min_size=1, max_size=8), st.booleans())
def test_batches_add_up_and_clocks_are_fresh(
    events: list[dict[str, Any]], sizes: list[int], keep_clocks: bool
) -> None:
    facts = _facts(events + events[:2])  # with repeated deliveries
    engine = Engine(Rules(), keep_clocks=keep_clocks)
    counts: Counter[Key] = Counter()
    at, batch = 0, 0
    while at < len(facts):
        size = sizes[batch % len(sizes)]
        for case_id, fact in facts[at:at + size]:
            engine.add(case_id, fact)
        at, batch = at + size, batch + 1
        dirty = set(engine.dirty)
        deltas, clocks = engine.settle_clocks()
        for key, n in deltas:
            counts[key] += n
        assert +counts == +counts_of(engine)
        assert {c for c, _ in clocks} <= dirty
        for case_id in dirty:
            expected = _fresh(engine, case_id).clocks
            assert [v for c, v in clocks if c == case_id] == expected
    for case_id in engine.cases:
        assert engine.clocks_of(case_id) == _fresh(engine, case_id).clocks
    assert sorted(engine.clocks()) == sorted(
        (c, v) for c in engine.cases for v in _fresh(engine, c).clocks
    )


@settings(max_examples=100, deadline=None)
@given(log())
def test_unsettled_facts_do_not_show(events: list[dict[str, Any]]) -> None:
    """Between add and settle, clocks and counts are those of the last settle."""
    facts = _facts(events)
    engine = Engine(Rules())
    half = len(facts) // 2
    for case_id, fact in facts[:half]:
        engine.add(case_id, fact)
    engine.settle()
    before_counts = +counts_of(engine)
    before_clocks = sorted(engine.clocks())
    for case_id, fact in facts[half:]:
        engine.add(case_id, fact)
    assert +counts_of(engine) == before_counts
    assert sorted(engine.clocks()) == before_clocks
