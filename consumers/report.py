"""`vardgaranti report`: the measures computed straight from event logs, in one pass.

Every case is collected, then evaluated once by the same pure rules the streaming and
replay runtimes use; nothing is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from consumers.deadletter import DeadLetter, DeadLetterFile
from consumers.logs import read_lines
from models.calendar import local_day
from models.clocks import Fact, Rules, evaluate, to_fact
from models.events import DUPLICATE, Rejection, parse_event
from models.measures import ANOMALY_REASONS, Key, Period, Row, rows_for

ProgressFn = Callable[[int], None]
PROGRESS_EVERY = 50_000


@dataclass
class ReportStats:
    lines: int = 0
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)  # duplicate, inconsistent, orphan


@dataclass
class Report:
    period: Period
    rows: list[Row]
    stats: ReportStats


def collect(
    paths: Iterable[Path],
    dead: DeadLetterFile,
    stats: ReportStats,
    progress: ProgressFn | None = None,
) -> dict[str, dict[str, Fact]]:
    """Facts per case and event id; the first delivery of an id stands."""
    cases: dict[str, dict[str, Fact]] = {}
    for path in paths:
        for lineno, raw in read_lines(path):
            stats.lines += 1
            if progress is not None and stats.lines % PROGRESS_EVERY == 0:
                progress(stats.lines)
            event = parse_event(raw)
            if isinstance(event, Rejection):
                stats.rejected[event.reason] += 1
                dead.add(DeadLetter.of(f"{path}:{lineno}", event.reason, event.message, raw))
                continue
            stats.events += 1
            stats.by_type[event["type"]] += 1
            facts = cases.get(event["case_id"])
            if facts is None:
                facts = cases[event["case_id"]] = {}
            if event["event_id"] in facts:
                stats.ignored[DUPLICATE] += 1
                continue
            facts[event["event_id"]] = to_fact(event)
    if progress is not None:
        progress(stats.lines)
    return cases


def build_report(
    paths: Iterable[Path],
    period: Period,
    *,
    unit: str | None = None,
    rules: Rules | None = None,
    dead: DeadLetterFile | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    rules = rules or Rules()
    dead = dead or DeadLetterFile(None)
    stats = ReportStats()
    counts: Counter[Key] = Counter()
    for case_id, by_id in collect(paths, dead, stats, progress).items():
        outcome = evaluate(sorted(by_id.values()), rules)
        counts.update(outcome.keys)
        for reason, fact in outcome.anomalies:
            if local_day(fact.ts) > period.as_of:
                continue  # after the snapshot: not taken into account
            name = ANOMALY_REASONS[reason]
            stats.ignored[name] += 1
            dead.add(DeadLetter(
                f"case {case_id}", name,
                f"event '{fact.event_id}' fits no clock of its case ({_why(reason)})", "",
            ))
    return Report(period, rows_for(counts.items(), period, unit), stats)


def _why(reason: int) -> str:
    return "before the clock's start" if ANOMALY_REASONS[reason] == "inconsistent" else "no start"
