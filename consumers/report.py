"""`vardgaranti report`: the measures computed straight from event logs, in one pass.

Every case is collected, then evaluated once by the same pure rules the streaming and
replay runtimes use; nothing is stored. Cases are independent, so with `jobs` > 1 worker
processes each read the logs and take the cases of their part (`models.ingest.shard_of`);
their counters add up to one process's (docs/performance.md).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from consumers.deadletter import DeadLetter, DeadLetterFile
from consumers.logs import STDIN, read_lines, source_name
from models.calendar import local_day
from models.clocks import Fact, Rules
from models.collect import CaseFacts
from models.decode import decode_fact
from models.events import DUPLICATE
from models.ingest import by_schema, shard_of
from models.measures import ANOMALY_REASONS, INCONSISTENT, ORPHAN, Key, Period, Row, rows_for

ProgressFn = Callable[[int], None]
PROGRESS_EVERY = 50_000


@dataclass
class ReportStats:
    lines: int = 0
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)  # duplicate, inconsistent, orphan
    newest_day: int | None = None  # local date of the newest event


@dataclass
class Report:
    period: Period
    rows: list[Row]
    stats: ReportStats


# Below this many bytes of logs one process is done before workers would have started.
SMALL_LOGS = 8 << 20


def default_jobs(paths: Iterable[Path]) -> int:
    """Worker processes for `report` unless told: one per core this process may use, or
    one for small logs."""
    if sum(p.stat().st_size for p in paths if p != STDIN and p.is_file()) < SMALL_LOGS:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


@dataclass
class Part:
    """What one process found in its part of the cases (all of them with one process)."""

    stats: ReportStats
    counts: list[tuple[Key, int]]
    newest_us: int | None
    anomalies: list[tuple[str, int, Fact]]  # case, reason, the event that fits no clock
    dead: list[tuple[int, int, DeadLetter]]  # (log, line, letter), when not written at once


def read_part(
    paths: list[Path], rules: Rules, shard: int, shards: int,
    add_dead: Callable[[DeadLetter], None] | None, progress: ProgressFn | None,
    read_all: Callable[[], None],
) -> Part:
    """Read the logs, keep this part's cases, evaluate each once. Rejected lines go to
    `add_dead`, or, without it, into the part (to be merged in line order); `read_all()`
    is called when the evaluation begins."""
    stats = ReportStats()
    dead: list[tuple[int, int, DeadLetter]] = []
    cases = CaseFacts()
    add = cases.add
    by_type = stats.by_type
    lines = 0
    for log, path in enumerate(paths):
        name = source_name(path)
        for lineno, raw in read_lines(path):
            lines += 1
            if lines % PROGRESS_EVERY == 0:
                # what was read so far lives until the end: keep the collector off it
                gc.freeze()
                if progress is not None:
                    progress(lines)
            if shards > 1 and shard_of(raw, shards) != shard:
                continue
            # no clock views in a report: the facts need no patient reference; the typed
            # decoder straight (what `ingest` tries first), the full schema for the rest
            got: tuple[str, str, Fact] | DeadLetter | None = decode_fact(raw, False)
            if got is None:
                got = by_schema(raw, name, lineno)
            if isinstance(got, DeadLetter):
                stats.rejected[got.reason] += 1
                if add_dead is not None:
                    add_dead(got)
                else:
                    dead.append((log, lineno, got))
                continue
            case_id, etype, fact = got
            by_type[etype] += 1
            add(case_id, fact)
    stats.lines = lines
    stats.events = by_type.total()
    if progress is not None:
        progress(lines)
    read_all()
    counted = cases.evaluate(rules)
    if counted.duplicates:
        stats.ignored[DUPLICATE] = counted.duplicates
    counts = [(k, n) for k, n in counted.counts.items() if n]
    return Part(stats, counts, counted.newest_us, counted.anomalies, dead)


# Set in each worker process by `_start_worker`: per part, the lines it has read, and 1
# once it has read them all.
_READ: list[Synchronized[int]] = []
_DONE: list[Synchronized[int]] = []


def _start_worker(read: list[Synchronized[int]], done: list[Synchronized[int]]) -> None:
    _READ[:] = read
    _DONE[:] = done


def _worker(paths: list[Path], rules: Rules, shard: int, shards: int) -> Part:
    def progress(lines: int) -> None:
        _READ[shard].value = lines

    def read_all() -> None:
        _DONE[shard].value = 1

    return read_part(paths, rules, shard, shards, None, progress, read_all)


def _in_parallel(
    paths: list[Path], rules: Rules, jobs: int, progress: ProgressFn | None,
    phase: Callable[[str], None] | None,
) -> list[Part]:
    """Every part in a worker process of its own ("spawn": a fresh interpreter, nothing of
    this process's threads); the caller's progress follows the slowest reader."""
    ctx = multiprocessing.get_context("spawn")
    read = [ctx.Value("q", 0) for _ in range(jobs)]
    done = [ctx.Value("b", 0) for _ in range(jobs)]
    with ctx.Pool(jobs, _start_worker, (read, done)) as pool:
        result = pool.starmap_async(_worker, [(paths, rules, k, jobs) for k in range(jobs)])
        reading = True
        while True:
            result.wait(0.2)
            finished = result.ready()  # then what the workers said last is read below
            if progress is not None:
                progress(min(r.value for r in read))
            if reading and all(d.value for d in done):
                reading = False
                if phase is not None:
                    phase("evaluating cases")
            if finished:
                return result.get()


def build_report(
    paths: Iterable[Path],
    period: Period,
    *,
    unit: str | None = None,
    rules: Rules | None = None,
    dead: DeadLetterFile | None = None,
    progress: ProgressFn | None = None,
    phase: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> Report:
    """`progress(lines)` is called while reading; `phase(what)` when the work turns to
    something without a count (evaluating the cases). `jobs` worker processes share the
    cases (standard input is read by one process)."""
    dead = dead or DeadLetterFile(None)
    rules = rules or Rules()
    paths = list(paths)
    if jobs > 1 and STDIN not in paths:
        parts = _in_parallel(paths, rules, jobs, progress, phase)
    else:
        def read_all() -> None:
            if phase is not None:
                phase("evaluating cases")

        parts = [read_part(paths, rules, 0, 1, dead.add, progress, read_all)]
    return merged(parts, period, unit, dead)


def merged(parts: list[Part], period: Period, unit: str | None, dead: DeadLetterFile) -> Report:
    """One report of the parts: counters and counts summed, dead letters in line order,
    then the events that fit no clock by case id (the same whatever the parts)."""
    for _, _, letter in sorted((d for p in parts for d in p.dead), key=lambda d: (d[0], d[1])):
        dead.add(letter)
    stats = ReportStats(lines=parts[0].stats.lines)  # every part reads every line
    for part in parts:
        stats.events += part.stats.events
        stats.by_type.update(part.stats.by_type)
        stats.rejected.update(part.stats.rejected)
        stats.ignored.update(part.stats.ignored)
    newest = [p.newest_us for p in parts if p.newest_us is not None]
    if newest:
        stats.newest_day = local_day(max(newest))
    for case_id, reason, fact in sorted(
        (a for p in parts for a in p.anomalies), key=lambda a: a[0]
    ):
        if local_day(fact.ts) > period.as_of:
            continue  # after the snapshot: not taken into account
        name = ANOMALY_REASONS[reason]
        stats.ignored[name] += 1
        dead.add(DeadLetter(
            f"case {case_id}", name,
            f"event '{fact.event_id}' fits no clock of its case ({_WHY[reason]})", "",
        ))
    counts = [c for p in parts for c in p.counts]
    return Report(period, rows_for(counts, period, unit), stats)


_WHY = {INCONSISTENT: "before the clock's start", ORPHAN: "no start"}
