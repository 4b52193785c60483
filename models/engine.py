"""The stateful core: cases in, counter deltas out (still pure: no I/O, no wall clock).

Each case keeps the set of its facts. `add` files a fact under its case and marks the case
dirty; `settle` re-evaluates every dirty case once and returns the difference between the
new and the previous contributions (−old, +new), so every counter downstream stays exact
when events arrive late or out of order. Batching `add`s before a `settle` evaluates a case
once per batch instead of once per event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from models.clocks import ClockView, Fact, Rules, evaluate
from models.indicators import INDICATORS
from models.measures import Key

AT_RISK_DAYS = tuple(i.at_risk_days for i in INDICATORS)

Delta = tuple[Key, int]


@dataclass(slots=True)
class Case:
    facts: list[Fact] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    clocks: list[ClockView] = field(default_factory=list)
    anomalies: list[tuple[int, Fact]] = field(default_factory=list)


def diff(old: Iterable[Key], new: Iterable[Key]) -> list[Delta]:
    """The counter changes that turn the `old` contributions into the `new` ones."""
    change: Counter[Key] = Counter(new)
    change.subtract(old)
    return [(k, n) for k, n in change.items() if n]


@dataclass
class Engine:
    """Clock state of many cases."""

    rules: Rules = field(default_factory=Rules)
    allowed_lateness_us: int = 0
    cases: dict[str, Case] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    newest_us: int | None = None
    duplicates: int = 0

    def add(self, case_id: str, fact: Fact) -> bool:
        """File a fact; False if its id was already seen in the case (the first one stands)."""
        case = self.cases.get(case_id)
        if case is None:
            case = self.cases[case_id] = Case()
        else:
            eid = fact.event_id
            for f in case.facts:
                if f.event_id == eid:
                    self.duplicates += 1
                    return False
        case.facts.append(fact)
        self.dirty.add(case_id)
        if self.newest_us is None or fact.ts > self.newest_us:
            self.newest_us = fact.ts
        return True

    def settle(self) -> list[Delta]:
        """Re-evaluate the dirty cases; the counter deltas since the last settle."""
        old: list[Key] = []
        new: list[Key] = []
        for case_id in self.dirty:
            case = self.cases[case_id]
            case.facts.sort()
            outcome = evaluate(case.facts, self.rules)
            old.extend(case.keys)
            new.extend(outcome.keys)
            case.keys = outcome.keys
            case.clocks = outcome.clocks
            case.anomalies = outcome.anomalies
        self.dirty.clear()
        return diff(old, new)

    def apply(self, case_id: str, fact: Fact) -> list[Delta]:
        """One event in, its deltas out (the streaming path)."""
        return self.settle() if self.add(case_id, fact) else []

    @property
    def watermark_us(self) -> int | None:
        """Event-time "now": the newest event time minus the allowed lateness."""
        if self.newest_us is None:
            return None
        return self.newest_us - self.allowed_lateness_us

    def clocks(self) -> Iterator[tuple[str, ClockView]]:
        for case_id, case in self.cases.items():
            for clock in case.clocks:
                yield case_id, clock


def at_risk_counts(clocks: Iterable[ClockView], today: int) -> Counter[tuple[int, str]]:
    """Open clocks due within their indicator's at-risk horizon, per (indicator, unit)."""
    out: Counter[tuple[int, str]] = Counter()
    for c in clocks:
        if c.state == "open" and 0 <= c.deadline - today <= AT_RISK_DAYS[c.indicator]:
            out[(c.indicator, c.unit)] += 1
    return out


def counts_of(engine: Engine) -> Counter[Key]:
    """All counters from scratch (the sum every stream of deltas must equal)."""
    counts: Counter[Key] = Counter()
    for case in engine.cases.values():
        counts.update(case.keys)
    return counts
