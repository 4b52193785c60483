"""One case: the set of its facts and the clocks they give. The one case type of the core.

The embedded engine keeps one per case in memory; the streaming worker keeps its JSON form
in a changelogged table (the record the SQL sink reads too). A case's counter
contributions and clocks are a function of its facts (models.clocks.evaluate).

Memory bounds the embedded runner, so a case keeps only what is costly to recompute: a
lone fact bare (most open clocks), else a sorted tuple, and the clock views of the last
evaluation (None when not kept: one evaluation rebuilds them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.calendar import local_day
from models.clocks import AT_REST, ClockView, Fact, Rules, evaluate, is_start
from models.measures import Key

Delta = tuple[Key, int]
Facts = Fact | tuple[Fact, ...]


def diff(old: Iterable[Key], new: Iterable[Key]) -> list[Delta]:
    """The counter changes that turn the `old` contributions into the `new` ones (a plain
    dict: a Counter's update and subtract cost three times as much, once per event)."""
    change: dict[Key, int] = {}
    get = change.get
    for k in new:
        change[k] = get(k, 0) + 1
    for k in old:
        change[k] = get(k, 0) - 1
    return [(k, n) for k, n in change.items() if n]


def as_tuple(facts: Facts | None) -> tuple[Fact, ...]:
    if facts is None:
        return ()
    return (facts,) if isinstance(facts, Fact) else facts


def pack(facts: tuple[Fact, ...]) -> Facts | None:
    """The kept form: a lone fact bare."""
    if not facts:
        return None
    return facts[0] if len(facts) == 1 else facts


class CaseState:
    __slots__ = ("_clocks", "_facts", "partition", "sent")

    def __init__(self, partition: int = 0, facts: Facts | None = None,
                 clocks: ClockView | tuple[ClockView, ...] | None = None,
                 sent: list[str] | None = None) -> None:
        self.partition = partition  # streaming: the events partition (its changelog's)
        self._facts = facts
        self._clocks = clocks
        self.sent = sent  # ids of the notices already emitted (streaming)

    def mark_sent(self, notice_ids: Iterable[str]) -> None:
        """Note notices as emitted, each once, in the order they were first noted."""
        have = self.sent or []
        self.sent = have + [n for n in notice_ids if n not in have]

    @property
    def facts(self) -> list[Fact]:
        return list(as_tuple(self._facts))

    @property
    def clocks(self) -> list[ClockView]:
        """The clock views of the last evaluation, when kept."""
        views = self._clocks
        if views is None:
            return []
        return [views] if isinstance(views, ClockView) else list(views)

    def keep(self, views: list[ClockView]) -> None:
        self._clocks = views[0] if len(views) == 1 else tuple(views)

    def has(self, event_id: str) -> bool:
        return any(f.event_id == event_id for f in as_tuple(self._facts))

    def file(self, fact: Fact) -> None:
        """Add a fact whose id is new to the case (kept unsorted until evaluated)."""
        facts = self._facts
        if facts is None:
            self._facts = fact
        elif isinstance(facts, Fact):
            self._facts = (facts, fact)
        else:
            self._facts = (*facts, fact)

    def add(self, fact: Fact, rules: Rules, before: list[Key] | None = None
            ) -> tuple[list[Delta], list[Key]] | None:
        """Apply one fact now: the counter deltas (−old, +new) and the case's contributions
        after it, or None for a repeated id. (The streaming path: each delta is attributed
        to the event that caused it.) `before`: the contributions as they stand, when the
        caller kept them from the case's previous fact, so they are not evaluated again."""
        if self.has(fact.event_id):
            return None
        if before is None:
            before = evaluate(self.sorted(), rules, views=False).keys if self._facts else []
        self.file(fact)
        outcome = evaluate(self.sorted(), rules)
        self.keep(outcome.clocks)
        return diff(before, outcome.keys), outcome.keys

    def sorted(self) -> tuple[Fact, ...]:
        """The facts in canonical order (sorted in place once)."""
        facts = self._facts
        if facts is None or isinstance(facts, Fact):
            return as_tuple(facts)
        facts = self._facts = tuple(sorted(facts))
        return facts

    def leaves_on(self, views: list[ClockView], grace_days: int) -> int | None:
        """The date from which the case may leave memory: once every clock is at rest (ended
        or excluded), the day after its newest event's date plus the grace period (None: a
        clock is open or paused, and the passing days still move it)."""
        facts = self._facts
        if facts is None:
            return None
        if isinstance(facts, Fact) and not views:
            if is_start(facts):
                return None  # a lone start is an open clock (its views are not kept)
        elif not all(v.state in AT_REST for v in views):
            return None
        return local_day(self.newest_us) + grace_days + 1

    @property
    def newest_us(self) -> int:
        facts = self.sorted()
        return facts[-1].ts if facts else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.partition,
            "f": list(map(list, self.sorted())),
            "c": list(map(list, self.clocks)),
            "n": self.sent or [],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CaseState:
        state = cls(int(d["p"]), pack(tuple(Fact(*f) for f in d["f"])), sent=list(d["n"]))
        state.keep([ClockView(*c) for c in d["c"]])
        return state
