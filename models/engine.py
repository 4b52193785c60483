"""The stateful core: cases in, counter deltas out (still pure: no I/O, no wall clock).

Each case keeps the set of its facts. A new fact re-evaluates the case and the engine emits
the difference between the new and the previous contributions (−old, +new), so every
counter downstream stays exact when events arrive late or out of order.
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from models.clocks import Fact, OpenClock, Rules, evaluate
from models.measures import Key

Delta = tuple[Key, int]


@dataclass(slots=True)
class _Case:
    facts: list[Fact]
    keys: list[Key]
    open_clocks: list[OpenClock]


def diff(old: Iterable[Key], new: Iterable[Key]) -> list[Delta]:
    """The counter changes that turn the `old` contributions into the `new` ones."""
    change: Counter[Key] = Counter(new)
    change.subtract(old)
    return [(k, n) for k, n in change.items() if n]


@dataclass
class Engine:
    """Clock state of many cases; `apply` returns the deltas of one event."""

    rules: Rules = field(default_factory=Rules)
    allowed_lateness_us: int = 0
    cases: dict[str, _Case] = field(default_factory=dict)
    newest_us: int | None = None
    duplicates: int = 0

    def apply(self, case_id: str, fact: Fact) -> list[Delta]:
        if self.newest_us is None or fact.ts > self.newest_us:
            self.newest_us = fact.ts
        case = self.cases.get(case_id)
        if case is None:
            case = self.cases[case_id] = _Case([], [], [])
        elif any(f.event_id == fact.event_id for f in case.facts):
            self.duplicates += 1  # producers must not reuse ids: the first one stands
            return []
        if not case.facts or fact > case.facts[-1]:
            case.facts.append(fact)
        else:
            insort(case.facts, fact)
        outcome = evaluate(case.facts, self.rules)
        deltas = diff(case.keys, outcome.keys)
        case.keys = outcome.keys
        case.open_clocks = outcome.open_clocks
        return deltas

    @property
    def watermark_us(self) -> int | None:
        """Event-time "now": the newest event time minus the allowed lateness."""
        if self.newest_us is None:
            return None
        return self.newest_us - self.allowed_lateness_us

    def open_clocks(self) -> Iterator[tuple[str, OpenClock]]:
        for case_id, case in self.cases.items():
            for clock in case.open_clocks:
                yield case_id, clock


def batch_counts(cases: Iterable[list[Fact]], rules: Rules) -> Counter[Key]:
    """Counters from scratch: every case evaluated once (facts sorted, ids unique)."""
    counts: Counter[Key] = Counter()
    for facts in cases:
        counts.update(evaluate(facts, rules).keys)
    return counts
