"""The processes of `replay --jobs N`: each reads the logs and keeps its part of the cases
(`models.ingest.shard_of`), in one of two roles.

- Into a store without events (a first load), a part also evaluates its cases with an
  engine of its own and hands the writer what a batch of it stores: the new facts, the
  clocks of the cases it touched and the counter deltas (`Batch`). Cases are independent,
  so the deltas of the parts add up to one engine's; the writer only sums and writes.
- Into a store that holds events (a second log, a resumed load), the engine that knows
  the stored cases is the writer's: a part only reads and validates, and hands over the
  ingested lines.

A case's lines keep their order in both (one part, one queue, read in order), which is all
the engine needs: a case's first event id still stands.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from consumers.logs import LogError, ingested
from consumers.rows import TableRow, clock_rows, event_rows
from models.clocks import Fact, Rules
from models.deadletter import DeadLetter
from models.engine import Delta, Engine
from models.ingest import Ingested

CHUNK = 5_000  # ingested lines a validating part hands over at once


@dataclass(slots=True)
class Batch:
    """What an evaluating part found since its last batch: one transaction of the writer."""

    lines: int = 0
    events: list[TableRow] = field(default_factory=list)  # the new facts' rows
    clocks: list[TableRow] = field(default_factory=list)
    deltas: list[Delta] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    processed: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0


def evaluate_part(shard: int, shards: int, out: Any, paths: list[Path], rules: Rules,
                  batch: int) -> None:
    """An evaluating part: its lines ingested and filed, its cases settled every `batch`
    lines, each settle to the writer as a `Batch`; then None (or the error that stopped
    it). Its engine keeps every case of the part (no eviction: a case that left memory
    would be read back from the store, which the writer may not have written yet)."""
    try:
        engine = Engine(rules, keep_clocks=False)  # the clocks go to the store, not kept
        add = engine.add
        got = Batch()
        facts: list[tuple[str, Fact]] = []  # the new ones since the last batch
        sent_dups = 0

        def settled() -> Batch:
            nonlocal sent_dups
            got.deltas, clocks = engine.settle_clocks()
            # rows, not facts and views: far cheaper to hand over than named tuples
            got.events, got.clocks = event_rows(facts), clock_rows(clocks)
            facts.clear()
            got.duplicates, sent_dups = engine.duplicates - sent_dups, engine.duplicates
            # the cases live on to the end: keep the cycle collector from walking them again
            gc.freeze()
            return got

        for line in ingested(paths, shard, shards):
            got.lines += 1
            if isinstance(line, DeadLetter):
                got.dead.append(line)
            elif add(line.case_id, line.fact):
                facts.append((line.case_id, line.fact))
                got.processed[line.type] += 1
            if len(facts) + len(got.dead) >= batch:
                out.put(settled())
                got = Batch()
        out.put(settled())
        out.put(None)
    except Exception as exc:  # any error is the writer's to raise
        out.put(exc)


def validate_part(shard: int, shards: int, out: Any, paths: list[Path]) -> None:
    """A validating part: the lines of its cases, ingested, to the writer in chunks, then
    None (or the error that stopped it)."""
    try:
        chunk: list[Ingested | DeadLetter] = []
        for line in ingested(paths, shard, shards):
            chunk.append(line)
            if len(chunk) >= CHUNK:
                out.put(chunk)
                chunk = []
        out.put(chunk)
        out.put(None)
    except Exception as exc:
        out.put(exc)


def in_parallel(target: Callable[..., None], args: tuple[Any, ...], jobs: int
                ) -> Iterator[list[Any]]:
    """`target(shard, jobs, queue, *args)` in `jobs` spawned processes; what they put, in
    rounds (the next thing from each process that has not yet put None). An error one
    of them put, or its death, is raised here; the processes are ended when the caller
    stops early."""
    ctx = multiprocessing.get_context("spawn")
    queues = [ctx.Queue(maxsize=4) for _ in range(jobs)]
    parts = [ctx.Process(target=target, args=(k, jobs, queues[k], *args), daemon=True)
             for k in range(jobs)]
    for part in parts:
        part.start()
    try:
        live = list(range(jobs))
        while live:
            round_ = []
            for k in list(live):
                got = _next(queues[k], parts[k])
                if got is None:
                    live.remove(k)
                elif isinstance(got, Exception):
                    raise got
                else:
                    round_.append(got)
            if round_:
                yield round_
    finally:
        for part in parts:
            if part.is_alive():
                part.kill()
            part.join()


def _next(queue: Any, part: Any) -> Any:
    """The part's next message; an error if it died without saying why (killed, or it
    could not start)."""
    while True:
        try:
            return queue.get(timeout=1.0)
        except Empty:
            if not part.is_alive() and queue.empty():
                return LogError(f"a reader process stopped (exit code {part.exitcode})")
