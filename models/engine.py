"""The stateful core: cases in, counter deltas out (still pure: no I/O, no wall clock).

Each case keeps the set of its facts. `add` files a fact under its case and marks the case
dirty; `settle` re-evaluates every dirty case once and returns the difference between the
new and the previous contributions (−old, +new), so every counter downstream stays exact
when events arrive late or out of order. Batching `add`s before a `settle` evaluates a case
once per batch instead of once per event.

Memory is what bounds the embedded runner (every case of the log stays in memory), so a case
keeps only what is costly to recompute: its facts and, for cases of two facts or more, its
clock views. Contributions are not kept: `settle` recomputes a case's previous ones from its
facts as they were at the last settle (evaluation is a pure function of the facts), which
costs one more evaluation only for cases that span two settles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from models.casestate import CaseState, Delta, Facts, as_tuple, pack
from models.clocks import ClockView, Fact, Outcome, Rules, evaluate, lone_views
from models.measures import Key

__all__ = ["Delta", "Engine", "counts_of"]

_FLUSH = 1 << 16  # keys gathered before they are folded into the running difference


def _as_list(facts: Facts | None) -> list[Fact]:
    return list(as_tuple(facts))


@dataclass
class Engine:
    """Clock state of many cases."""

    rules: Rules = field(default_factory=Rules)
    # days a case whose clocks have all ended stays after its newest event (None: forever)
    grace_days: int | None = None
    cases: dict[str, CaseState] = field(default_factory=dict)
    newest_us: int | None = None
    duplicates: int = 0
    # keep the clock views of settled cases (the worklist and the clocks table read them);
    # a one-pass report has no use for them, and they cost memory per case
    keep_clocks: bool = True
    # cases that fitted no clock somewhere (reason, fact), as of the last settle
    anomalies: dict[str, list[tuple[int, Fact]]] = field(default_factory=dict, init=False)
    # dirty cases -> their facts at the last settle (None: the case is new since)
    _before: dict[str, Facts | None] = field(default_factory=dict, init=False, repr=False)
    evicted: int = 0  # cases that have left memory (final: see `evict`)
    # date from which a case whose clocks had all ended may leave -> those cases
    _leaving: dict[int, list[str]] = field(default_factory=dict, init=False, repr=False)

    @property
    def dirty(self) -> Iterable[str]:
        """Ids of the cases with facts added since the last settle."""
        return self._before.keys()

    def add(self, case_id: str, fact: Fact) -> bool:
        """File a fact; False if its id was already seen in the case (the first one stands)."""
        case = self.cases.get(case_id)
        if case is None:
            self.cases[case_id] = CaseState(facts=fact)
            self._before.setdefault(case_id, None)
        else:
            facts = case._facts
            if case.has(fact.event_id):
                self.duplicates += 1
                return False
            case.file(fact)
            if case_id not in self._before:
                self._before[case_id] = facts
        if self.newest_us is None or fact.ts > self.newest_us:
            self.newest_us = fact.ts
        return True

    def settle(self) -> list[Delta]:
        """Re-evaluate the dirty cases; the counter deltas since the last settle."""
        return self._settle(None)

    def settle_clocks(self) -> tuple[list[Delta], list[tuple[str, ClockView]]]:
        """`settle`, and the clocks of the cases it re-evaluated (what a store writes)."""
        clocks: list[tuple[str, ClockView]] = []
        return self._settle(clocks), clocks

    def _settle(self, clocks_out: list[tuple[str, ClockView]] | None) -> list[Delta]:
        change: Counter[Key] = Counter()
        old: list[Key] = []
        new: list[Key] = []
        rules = self.rules
        want_views = self.keep_clocks or clocks_out is not None
        for case_id, before in self._before.items():
            case = self.cases[case_id]
            if before is not None:  # a case cut in two by a batch boundary: evaluated twice
                old += _evaluate(before, rules).keys
            if isinstance(case._facts, Fact):
                outcome = evaluate((case._facts,), rules, views=clocks_out is not None)
            else:
                outcome = evaluate(case.sorted(), rules, views=want_views)
                if self.keep_clocks:
                    case.keep(outcome.clocks)
            new += outcome.keys
            if self.grace_days is not None:
                self._note_if_closed(case_id, case, outcome.clocks)
            if clocks_out is not None:
                clocks_out.extend((case_id, v) for v in outcome.clocks)
            if outcome.anomalies:
                self.anomalies[case_id] = outcome.anomalies
            elif before is not None:
                self.anomalies.pop(case_id, None)
            if len(new) + len(old) > _FLUSH:  # bounded lists: a whole log may settle at once
                change.update(new)
                change.subtract(old)
                new.clear()
                old.clear()
        change.update(new)
        change.subtract(old)
        self._before = {}
        return [(k, n) for k, n in change.items() if n]

    def apply(self, case_id: str, fact: Fact) -> list[Delta]:
        """One event in, its deltas out (the streaming path)."""
        return self.settle() if self.add(case_id, fact) else []

    # ------------------------------------------------------------ bounded memory

    def _note_if_closed(self, case_id: str, case: CaseState, views: list[ClockView]) -> None:
        leave = case.leaves_on(views, self.grace_days or 0)
        if leave is not None:
            self._leaving.setdefault(leave, []).append(case_id)

    def evict(self, today: int) -> list[str]:
        """Let final cases leave memory: every clock ended, and `today` (the watermark's
        date) past the newest event's date by the grace period. Their counters stay; a
        later event for one is handled by `readmit` with the facts read back."""
        gone: list[str] = []
        for day in [d for d in self._leaving if d <= today]:
            for case_id in self._leaving.pop(day):
                case = self.cases.get(case_id)
                if case is None or case_id in self._before:
                    continue  # gone already, or facts came since (noted again at settle)
                leave = case.leaves_on(self.clocks_of(case_id), self.grace_days or 0)
                if leave is None or leave > today:
                    continue  # reopened, or a newer event (noted again under its date)
                del self.cases[case_id]
                self.anomalies.pop(case_id, None)
                gone.append(case_id)
        self.evicted += len(gone)
        return gone

    def fresh(self) -> list[str]:
        """Cases first seen since the last settle (an evicted case comes back as one)."""
        return [c for c, before in self._before.items() if before is None]

    def readmit(self, case_id: str, stored: Iterable[Fact]) -> list[Fact]:
        """Give a case that came back its stored facts, as at the last settle before it
        left, so the next settle emits the exact difference. The new facts that repeat a
        stored event id (the first one stands)."""
        old = tuple(sorted(stored))
        case = self.cases[case_id]
        known = {f.event_id for f in old}
        repeats = [f for f in case.facts if f.event_id in known]
        case._facts = pack(old + tuple(f for f in case.facts if f.event_id not in known))
        self._before[case_id] = pack(old)
        self.duplicates += len(repeats)
        return repeats

    def settled_facts(self, case_id: str) -> list[Fact]:
        """The case's facts as of the last settle, sorted."""
        if case_id in self._before:
            return _as_list(self._before[case_id])
        return self.cases[case_id].facts

    def clocks_of(self, case_id: str) -> list[ClockView]:
        """The case's clocks as of the last settle."""
        case = self.cases[case_id]
        if case_id in self._before:  # facts came since: the settled ones are the old ones
            before = self._before[case_id]
            if before is None:
                return []
            views = None if isinstance(before, Fact) else case._clocks
        else:
            before = case._facts
            views = case._clocks
        if isinstance(before, Fact):
            return lone_views(before, self.rules)
        if views is None:  # not kept: one evaluation rebuilds them
            return evaluate(as_tuple(before), self.rules).clocks
        return [views] if isinstance(views, ClockView) else list(views)

    def clocks(self) -> Iterator[tuple[str, ClockView]]:
        """Every clock as of the last settle (what the worklist is drawn from)."""
        before = self._before
        for case_id, case in self.cases.items():
            views = case._clocks
            if case_id in before or views is None:  # not at hand: rebuilt (lone facts …)
                for view in self.clocks_of(case_id):
                    yield case_id, view
            elif isinstance(views, ClockView):
                yield case_id, views
            else:
                for view in views:
                    yield case_id, view


def _evaluate(facts: Facts, rules: Rules) -> Outcome:
    return evaluate((facts,) if isinstance(facts, Fact) else facts, rules, views=False)


def counts_of(engine: Engine) -> Counter[Key]:
    """All counters from scratch (the sum every stream of deltas must equal)."""
    counts: Counter[Key] = Counter()
    for case_id in engine.cases:
        facts = engine.settled_facts(case_id)
        if facts:
            counts.update(evaluate(facts, engine.rules).keys)
    return counts
