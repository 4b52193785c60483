"""Building events and running them through the core, for tests."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date
from typing import Any

import orjson

from models.clocks import Fact, Rules, evaluate, to_fact
from models.events import Rejection, parse_event
from models.measures import Key, Period, rows_for

_ids = itertools.count(1)


def ev(etype: str, case: str, ts: str, unit: str = "u1", **attrs: Any) -> dict[str, Any]:
    """One event as a producer would send it; `ts` with offset, e.g. 2024-03-04T09:00+01:00."""
    event: dict[str, Any] = {
        "event_id": f"t-{next(_ids)}", "type": etype, "case_id": case, "occurred_at": ts,
        "unit_id": unit,
    }
    if attrs:
        event["attributes"] = attrs
    return event


def facts_by_case(events: list[dict[str, Any]]) -> dict[str, list[Fact]]:
    cases: dict[str, dict[str, Fact]] = {}
    for raw in events:
        parsed = parse_event(orjson.dumps(raw))
        assert not isinstance(parsed, Rejection), parsed
        cases.setdefault(parsed["case_id"], {}).setdefault(parsed["event_id"], to_fact(parsed))
    return {c: sorted(f.values()) for c, f in cases.items()}


def counts_of(events: list[dict[str, Any]], rules: Rules | None = None) -> Counter[Key]:
    counts: Counter[Key] = Counter()
    for facts in facts_by_case(events).values():
        counts.update(evaluate(facts, rules or Rules()).keys)
    return counts


def rows(
    events: list[dict[str, Any]], as_of: str, first: str | None = None, last: str | None = None,
    rules: Rules | None = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Report rows keyed by (indicator, unit_id); period defaults to the month of as_of."""
    snap = date.fromisoformat(as_of)
    period = Period.of(
        date.fromisoformat(first) if first else snap.replace(day=1),
        date.fromisoformat(last) if last else snap,
        snap,
    )
    return {
        (r.indicator, r.unit_id): r.as_dict()
        for r in rows_for(counts_of(events, rules).items(), period)
    }
