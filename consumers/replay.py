"""Embedded replay: event logs through the core into the store, in transactional batches.

The clock state is rebuilt from the store's facts first, so a second log continues the
first, an interrupted replay resumes, and replaying a log again changes nothing.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from queue import Empty
from typing import Any

from consumers.logs import STDIN, LogError, ingested, read_lines, source_name
from consumers.store import Store
from models.calendar import end_of_day_micros, local_day
from models.clocks import ClockView, Fact, Rules
from models.countergroup import fold_through
from models.deadletter import DeadLetter
from models.engine import Delta, Engine
from models.events import EVENT_TYPES
from models.ingest import Ingested, ingest, shard_of
from models.live import LiveView
from models.measures import Key

BATCH = 50_000  # lines per transaction; larger batches cut cases evaluated twice
CHUNK = 5_000  # ingested lines a `--jobs` reader hands over at once


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
        moved: dict[Key, int] = {}
        deltas, clocks = self.engine.settle_clocks()
        if self.store is not None:  # restored in part: counters not at hand are stored
            missing = [k for k, _ in deltas if k not in self.counts]
            if missing:
                self.counts.update(self.store.counters_of(missing))
        for key, n in deltas:
            self.counts[key] += n
            moved[key] = self.counts[key]
        feed(self.view, deltas, clocks, self.engine.newest_us)
        if self.engine.grace_days is not None and self.view.today is not None:
            self.engine.evict(self.view.today)
        return clocks, moved

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


def _read_part(paths: list[Path], shard: int, shards: int, out: Any) -> None:
    """A reader process of `replay --jobs`: the lines of its part of the cases, ingested,
    to the writer in chunks, then None (or the error that stopped it)."""
    try:
        chunk: list[Ingested | DeadLetter] = []
        for path in paths:
            name = source_name(path)
            for lineno, raw in read_lines(path):
                if shard_of(raw, shards) == shard:
                    chunk.append(ingest(raw, name, lineno))
                    if len(chunk) >= CHUNK:
                        out.put(chunk)
                        chunk = []
        out.put(chunk)
        out.put(None)
    except Exception as exc:  # any error is the writer's to raise
        out.put(exc)


def _ingested_in_parallel(paths: list[Path], jobs: int) -> Iterator[Ingested | DeadLetter]:
    """What `ingested` gives, read and validated by `jobs` processes, each for its part of
    the cases (`shard_of`). A case's lines keep their order (one reader, one queue, read in
    order), which is all the engine needs: a case's first event id still stands."""
    ctx = multiprocessing.get_context("spawn")
    queues = [ctx.Queue(maxsize=8) for _ in range(jobs)]
    readers = [ctx.Process(target=_read_part, args=(paths, k, jobs, queues[k]), daemon=True)
               for k in range(jobs)]
    for reader in readers:
        reader.start()
    try:
        live = list(range(jobs))
        while live:
            for k in list(live):
                got = _next_chunk(queues[k], readers[k])
                if got is None:
                    live.remove(k)
                elif isinstance(got, Exception):
                    raise got
                else:
                    yield from got
    finally:
        for reader in readers:
            if reader.is_alive():
                reader.kill()
            reader.join()


def _next_chunk(queue: Any, reader: Any) -> list[Ingested | DeadLetter] | Exception | None:
    """The reader's next chunk; an error if it died without saying why (killed, or it
    could not start)."""
    while True:
        try:
            got: list[Ingested | DeadLetter] | Exception | None = queue.get(timeout=1.0)
            return got
        except Empty:
            if not reader.is_alive() and queue.empty():
                return LogError(f"a reader process stopped (exit code {reader.exitcode})")


def replay(
    paths: Iterable[Path],
    store: Store,
    pipeline: Pipeline,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
    jobs: int = 1,
) -> ReplayStats:
    """The logs into the store and the pipeline. With `jobs` > 1, as many processes read
    and validate the lines (each for its part of the cases) while this one evaluates and
    writes: the store has one writer, and the result is that of one process."""
    stats = ReplayStats()
    started = time.perf_counter()
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

    paths = list(paths)
    lines = (ingested(paths) if jobs <= 1 or STDIN in paths
             else _ingested_in_parallel(paths, jobs))
    with store.loading():  # into an empty store: its secondary indexes built at the end
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
    pipeline.last_event_wall = time.time()
    stats.duplicates = engine.duplicates - dups_before
    stats.seconds = time.perf_counter() - started
    return stats
