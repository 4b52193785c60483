"""One case as the streaming worker keeps it in its changelogged table (pure: no I/O).

A case's state is the set of its facts; its counter contributions and clocks are a function
of that set (models.clocks.evaluate). `add` applies one fact and returns the deltas it
causes, so each delta can be attributed to the one source offset that caused it: that is
what lets the counter keeper drop a delta it has already applied after a crash.
The JSON form is the table's value and the changelog record the SQL sink reads.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any

from models.clocks import ClockView, Fact, Rules, evaluate
from models.engine import Delta, diff
from models.measures import Key


@dataclass(slots=True)
class CaseState:
    partition: int  # the events partition the case lives on (its changelog partition)
    facts: list[Fact] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    clocks: list[ClockView] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # ids of the notices already emitted

    def add(self, fact: Fact, rules: Rules) -> list[Delta] | None:
        """Apply a fact: the counter deltas (−old, +new), or None for a repeated event id."""
        eid = fact.event_id
        if any(f.event_id == eid for f in self.facts):
            return None
        insort(self.facts, fact)
        outcome = evaluate(self.facts, rules)
        deltas = diff(self.keys, outcome.keys)
        self.keys = outcome.keys
        self.clocks = outcome.clocks
        return deltas

    @property
    def newest_us(self) -> int:
        return self.facts[-1].ts if self.facts else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.partition,
            "f": [list(f) for f in self.facts],
            "k": [list(k) for k in self.keys],
            "c": [list(c) for c in self.clocks],
            "n": self.sent,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CaseState:
        return cls(
            int(d["p"]),
            [Fact(*f) for f in d["f"]],
            [(k[0], k[1], k[2], k[3], k[4]) for k in d["k"]],
            [ClockView(*c) for c in d["c"]],
            list(d["n"]),
        )
