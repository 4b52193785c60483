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
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from consumers.logs import STDIN, ingested
from consumers.replay_parts import evaluate_part, in_parallel, validate_part
from consumers.store import Store
from models.calendar import end_of_day_micros, local_day
from models.clocks import ClockView, Fact, Rules
from models.countergroup import fold_through
from models.deadletter import DeadLetter
from models.engine import Delta, Engine
from models.events import EVENT_TYPES
from models.ingest import Ingested
from models.live import LiveView
from models.measures import Key

BATCH = 50_000  # lines per transaction; larger batches cut cases evaluated twice


@dataclass
class Pipeline:
    """The embedded runtime: the engine, its counters (what the store is written from) and
    the live view every read is served from."""

    engine: Engine
    view: LiveView = field(default_factory=LiveView)
    counts: Counter[Key] = field(default_factory=Counter)
    processed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    last_event_wall: float | None = None
    # restored in part (only the cases that may change): the store holds the rest
    store: Store | None = None

    def today(self) -> date | None:
        """The watermark's local date: "today" for windows and the worklist."""
        return self.view.today_date()

    @property
    def ignored(self) -> dict[str, int]:
        """Valid events that changed no clock: repeated ids, and those fitting no clock."""
        return self.view.ignored(self.engine.duplicates)

    @classmethod
    def restore(cls, store: Store, rules: Rules, lateness_us: int = 0,
                grace_days: int | None = None) -> Pipeline:
        """The pipeline of what the store holds. With `grace_days`, final cases leave
        memory (docs/live-view.md): only the cases that may still change are loaded (a
        later event for another reads its facts back), the live view takes its counters
        from the store, and the counters a batch moves are read from it when first moved."""
        pipeline = cls(Engine(rules, grace_days), LiveView(lateness_us))
        pipeline.rejected.update(store.dead_letter_counts())
        newest = store.newest_event_us()
        if grace_days is None or newest is None:
            for case_id, fact in store.facts():
                pipeline.engine.add(case_id, fact)
            pipeline.settle()
            return pipeline
        pipeline.store = store
        today = local_day(max(newest - lateness_us, 0))
        pipeline.view.apply(store.live_counters(fold_through(today, grace_days)))
        for case_id, fact in store.changing_facts(end_of_day_micros(today - grace_days - 1) + 1):
            pipeline.engine.add(case_id, fact)
        _, clocks = pipeline.engine.settle_clocks()  # their counters are in the store
        feed(pipeline.view, [], clocks, newest)
        return pipeline

    def settle(self) -> tuple[list[tuple[str, ClockView]], dict[Key, int]]:
        """Apply pending facts: the clocks of touched cases and the counters that moved.
        The live view takes the whole batch in one synchronous step."""
        deltas, clocks = self.engine.settle_clocks()
        moved = self.count(deltas)
        feed(self.view, deltas, clocks, self.engine.newest_us)
        if self.engine.grace_days is not None and self.view.today is not None:
            self.engine.evict(self.view.today)
        return clocks, moved

    def count(self, deltas: list[Delta]) -> dict[Key, int]:
        """Add counter deltas to the counts: the new values of the counters they moved."""
        moved: dict[Key, int] = {}
        if self.store is not None:  # restored in part: counters not at hand are stored
            missing = [k for k, _ in deltas if k not in self.counts]
            if missing:
                self.counts.update(self.store.counters_of(missing))
        for key, n in deltas:
            self.counts[key] += n
            moved[key] = self.counts[key]
        return moved

    def reload(self, store: Store) -> None:
        """This pipeline as `restore` would make it now, with the same settings (after a
        load whose cases were evaluated elsewhere); what it processed is kept."""
        fresh = Pipeline.restore(store, self.engine.rules, self.view.lateness_us,
                                 self.engine.grace_days)
        fresh.view.wall_us = self.view.wall_us
        self.engine, self.view, self.counts = fresh.engine, fresh.view, fresh.counts
        self.rejected, self.store = fresh.rejected, fresh.store

    def readmit(self, store: Store) -> list[Fact]:
        """Before a settle: cases that left memory and have new events get their stored
        facts back. The new facts that repeat a stored event."""
        engine = self.engine
        if not engine.evicted and self.store is None:
            return []
        repeats: list[Fact] = []
        for case_id, facts in store.facts_of(engine.fresh()).items():
            repeats += engine.readmit(case_id, facts)
        for f in repeats:
            self.processed[EVENT_TYPES[f.rank]] -= 1
        return repeats


def feed(view: LiveView, deltas: list[Delta], clocks: list[tuple[str, ClockView]],
         newest_us: int | None) -> set[str]:
    """One batch into a live view: counters, the touched cases' clocks, the watermark."""
    view.apply(deltas)
    for case_id, views in groupby(clocks, key=itemgetter(0)):
        view.set_clocks(case_id, [v for _, v in views])
    return view.advance(newest_us)


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
    jobs: int = 1,
    serve: bool = True,
) -> ReplayStats:
    """The logs into the store and the pipeline; the result is that of one process. With
    `jobs` > 1, as many processes read the lines, each for its part of the cases
    (consumers/replay_parts.py), and this one writes (the store has one writer): into a
    store without events the parts evaluate their cases too and the pipeline is restored
    from the store at the end; otherwise they validate and this process evaluates.
    `serve=False`: nothing reads the pipeline afterwards (the `replay` command), so a load
    the parts evaluated leaves it unrestored: only its `processed` and `rejected` hold."""
    stats = ReplayStats()
    started = time.perf_counter()
    paths = list(paths)
    parallel = jobs > 1 and STDIN not in paths
    evaluate_apart = (parallel and not pipeline.engine.cases
                      and store.newest_event_us() is None)
    with store.loading():  # into an empty store: its secondary indexes built at the end
        if evaluate_apart:
            _write_parts(paths, store, pipeline, stats, progress, batch, jobs)
        else:
            lines = (ingested(paths) if not parallel else
                     (line for round_ in in_parallel(validate_part, (paths,), jobs)
                      for chunk in round_ for line in chunk))
            _evaluate_here(lines, store, pipeline, stats, progress, batch)
    if evaluate_apart and serve:
        pipeline.reload(store)
    pipeline.last_event_wall = time.time()
    stats.seconds = time.perf_counter() - started
    return stats


def _write_parts(paths: list[Path], store: Store, pipeline: Pipeline, stats: ReplayStats,
                 progress: Callable[[int], None] | None, batch: int, jobs: int) -> None:
    """A round of batches the evaluating parts settled (one from each, over about the same
    lines of the logs) in one transaction: their rows, and the counters their deltas
    moved, summed here. One transaction a round, not a batch: each rewrites the running
    sums from the earliest day it moves on."""
    for round_ in in_parallel(evaluate_part, (paths, pipeline.engine.rules, batch), jobs):
        deltas = [d for got in round_ for d in got.deltas]
        store.write_rows([r for got in round_ for r in got.events],
                         [r for got in round_ for r in got.clocks],
                         pipeline.count(deltas), [d for got in round_ for d in got.dead])
        for got in round_:
            stats.lines += got.lines
            stats.new_events += len(got.events)
            stats.duplicates += got.duplicates
            stats.rejected.update(d.reason for d in got.dead)
            pipeline.rejected.update(d.reason for d in got.dead)
            pipeline.processed.update(got.processed)
        if progress is not None:
            progress(stats.lines)


def _evaluate_here(lines: Iterable[Ingested | DeadLetter], store: Store, pipeline: Pipeline,
                   stats: ReplayStats, progress: Callable[[int], None] | None,
                   batch: int) -> None:
    """The ingested lines through this process's engine, a transaction every `batch`."""
    facts: list[tuple[str, Fact]] = []
    dead: list[DeadLetter] = []
    engine = pipeline.engine
    dups_before = engine.duplicates

    def flush() -> None:
        repeats = pipeline.readmit(store)
        stats.new_events -= len(repeats)
        clocks, moved = pipeline.settle()
        store.write_batch(facts, clocks, moved, dead)
        facts.clear()
        dead.clear()
        # the cases live on to the end: keep the cycle collector from walking them all again
        # at every full collection (that made a long replay ~1.5x slower)
        gc.freeze()
        if progress is not None:
            progress(stats.lines)

    for got in lines:
        stats.lines += 1
        if isinstance(got, DeadLetter):
            stats.rejected[got.reason] += 1
            pipeline.rejected[got.reason] += 1
            dead.append(got)
        elif engine.add(got.case_id, got.fact):
            facts.append((got.case_id, got.fact))
            pipeline.processed[got.type] += 1
            stats.new_events += 1
        if len(facts) + len(dead) >= batch:
            flush()
    flush()
    stats.duplicates = engine.duplicates - dups_before
