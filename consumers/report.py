"""`vardgaranti report`: the measures computed straight from event logs, in one pass.

Every case is collected, then evaluated once by the same pure rules the streaming and
replay runtimes use; nothing is stored.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from consumers.deadletter import DeadLetter, DeadLetterFile
from consumers.logs import read_lines, source_name
from models.calendar import local_day
from models.clocks import Rules
from models.engine import Engine
from models.events import DUPLICATE
from models.ingest import Ingested, ingest
from models.measures import ANOMALY_REASONS, INCONSISTENT, ORPHAN, Period, Row, rows_for

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


def ingested(paths: Iterable[Path]) -> Iterator[Ingested | DeadLetter]:
    """Every line of the logs through the one ingest step."""
    for path in paths:
        name = source_name(path)
        for lineno, raw in read_lines(path):
            yield ingest(raw, f"{name}:{lineno}")


def build_report(
    paths: Iterable[Path],
    period: Period,
    *,
    unit: str | None = None,
    rules: Rules | None = None,
    dead: DeadLetterFile | None = None,
    progress: ProgressFn | None = None,
    phase: Callable[[str], None] | None = None,
) -> Report:
    """`progress(lines)` is called while reading; `phase(what)` when the work turns to
    something without a count (evaluating the cases)."""
    dead = dead or DeadLetterFile(None)
    stats = ReportStats()
    engine = Engine(rules or Rules(), keep_clocks=False)  # the report reads counters only
    for got in ingested(paths):
        stats.lines += 1
        if stats.lines % PROGRESS_EVERY == 0:
            # what was read so far lives until the end: keep the collector off it
            gc.freeze()
            if progress is not None:
                progress(stats.lines)
        if isinstance(got, DeadLetter):
            stats.rejected[got.reason] += 1
            dead.add(got)
            continue
        stats.events += 1
        stats.by_type[got.type] += 1
        engine.add(got.case_id, got.fact)
    if progress is not None:
        progress(stats.lines)
    if phase is not None:
        phase("evaluating cases")
    counts = engine.settle()  # from nothing: the deltas are the counters
    if engine.newest_us is not None:
        stats.newest_day = local_day(engine.newest_us)
    if engine.duplicates:
        stats.ignored[DUPLICATE] = engine.duplicates
    for case_id, anomalies in engine.anomalies.items():
        for reason, fact in anomalies:
            if local_day(fact.ts) > period.as_of:
                continue  # after the snapshot: not taken into account
            name = ANOMALY_REASONS[reason]
            stats.ignored[name] += 1
            dead.add(DeadLetter(
                f"case {case_id}", name,
                f"event '{fact.event_id}' fits no clock of its case ({_WHY[reason]})", "",
            ))
    return Report(period, rows_for(counts, period, unit), stats)


_WHY = {INCONSISTENT: "before the clock's start", ORPHAN: "no start"}
