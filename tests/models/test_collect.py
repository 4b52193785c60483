"""The report's packed case store (models/collect.py) counts what the engine counts.

Whatever the order and the repeated deliveries (a repeated id with other content too: the
first to arrive stands), evaluating the packed cases once gives the engine's counters,
repeats, newest instant and events that fit no clock.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from models.clocks import Rules
from models.collect import CaseFacts
from models.engine import Engine
from tests.models.test_engine_batches import _facts
from tests.models.test_properties import log


@settings(max_examples=300, deadline=None)
@given(log(), st.randoms(use_true_random=False))
def test_packed_cases_count_as_the_engine(events: list[dict[str, Any]], rnd: Any) -> None:
    facts = _facts(events + events[:3])
    # a repeated id whose content differs: a transfer elsewhere, later
    facts += [(c, f._replace(ts=f.ts + 1, text="u-annan")) for c, f in facts[:2]]
    rnd.shuffle(facts)
    engine = Engine(Rules(), keep_clocks=False)
    packed = CaseFacts()
    for case_id, fact in facts:
        engine.add(case_id, fact)
        packed.add(case_id, fact)
    expected = sorted(engine.settle())
    counted = packed.evaluate(Rules())
    assert sorted((k, n) for k, n in counted.counts.items() if n) == expected
    assert counted.duplicates == engine.duplicates
    assert counted.newest_us == engine.newest_us
    # what the report names of an event that fits no clock: its id and its instant
    assert sorted((c, r, f.event_id, f.ts) for c, r, f in counted.anomalies) == sorted(
        (c, r, f.event_id, f.ts) for c, found in engine.anomalies.items() for r, f in found)
    assert not packed.cases  # released as evaluated


def test_a_lone_start_keeps_no_patient_reference_and_units_are_shared() -> None:
    facts = _facts([
        {"event_id": f"e{i}", "type": "referral.issued", "case_id": f"c{i}",
         "occurred_at": "2024-03-04T09:00:00+01:00", "unit_id": "u1", "patient_ref": "p-1",
         "attributes": {"pathway": "specialist"}} for i in range(3)])
    packed = CaseFacts()
    for case_id, fact in facts:
        packed.add(case_id, fact)
    assert all(b"p-1" not in blob for blob in packed.cases.values())
    assert packed.evaluate(Rules()).counts
