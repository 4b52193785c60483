"""Embedded replay: event logs through the core into the store, in transactional batches.

The clock state is rebuilt from the store's facts first, so a second log continues the
first, an interrupted replay resumes, and replaying a log again changes nothing.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from consumers.deadletter import DeadLetter
from consumers.logs import position, read_lines
from consumers.store import Store
from models import measures
from models.calendar import local_day
from models.clocks import ClockView, Fact, Rules, to_fact
from models.engine import Engine
from models.events import Rejection, parse_event
from models.measures import Key

BATCH = 50_000  # lines per transaction; larger batches cut cases evaluated twice


@dataclass
class Pipeline:
    """The embedded pipeline's live state: what /metrics and the API are served from."""

    engine: Engine
    counts: Counter[Key] = field(default_factory=Counter)
    processed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    last_event_wall: float | None = None

    def today(self) -> date | None:
        """The watermark's local date: "today" for windows and the worklist."""
        wm = self.engine.watermark_us
        return date.fromordinal(local_day(wm)) if wm is not None else None

    @property
    def ignored(self) -> dict[str, int]:
        """Valid events that changed no clock: repeated ids, and those fitting no clock."""
        return measures.ignored(self.counts.items(), self.engine.duplicates)

    @classmethod
    def restore(cls, store: Store, rules: Rules, lateness_us: int = 0) -> Pipeline:
        engine = Engine(rules, lateness_us)
        for case_id, fact in store.facts():
            engine.add(case_id, fact)
        pipeline = cls(engine)
        for key, n in engine.settle():
            pipeline.counts[key] += n
        pipeline.rejected.update(store.dead_letter_counts())
        return pipeline

    def settle(self) -> tuple[list[tuple[str, ClockView]], dict[Key, int]]:
        """Apply pending facts: the clocks of touched cases and the counters that moved."""
        moved: dict[Key, int] = {}
        deltas, clocks = self.engine.settle_clocks()
        for key, n in deltas:
            self.counts[key] += n
            moved[key] = self.counts[key]
        return clocks, moved


@dataclass
class ReplayStats:
    lines: int = 0
    new_events: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def replay(
    paths: Iterable[Path],
    store: Store,
    pipeline: Pipeline,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
) -> ReplayStats:
    stats = ReplayStats()
    started = time.perf_counter()
    facts: list[tuple[str, Fact]] = []
    dead: list[DeadLetter] = []
    engine = pipeline.engine
    dups_before = engine.duplicates

    def flush() -> None:
        clocks, moved = pipeline.settle()
        store.write_batch(facts, clocks, moved, dead)
        facts.clear()
        dead.clear()
        # the cases live on to the end: keep the cycle collector from walking them all again
        # at every full collection (that made a long replay ~1.5x slower)
        gc.freeze()
        if progress is not None:
            progress(stats.lines)

    for path in paths:
        for lineno, raw in read_lines(path):
            stats.lines += 1
            event = parse_event(raw)
            if isinstance(event, Rejection):
                stats.rejected[event.reason] += 1
                pipeline.rejected[event.reason] += 1
                dead.append(DeadLetter.of(position(path, lineno), event.reason, event.message, raw))
            else:
                fact = to_fact(event)
                if engine.add(event["case_id"], fact):
                    facts.append((event["case_id"], fact))
                    pipeline.processed[event["type"]] += 1
                    stats.new_events += 1
            if len(facts) + len(dead) >= batch:
                flush()
    flush()
    pipeline.last_event_wall = time.time()
    stats.duplicates = engine.duplicates - dups_before
    stats.seconds = time.perf_counter() - started
    return stats
