"""Throughput over the generated year: the json.loads yardstick, `report`, embedded `replay`.

Each runs in its own child process (see benchmarks.child); the timed span is the work on
the log only, imports and store set-up excluded.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import statistics
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.suite import Context, Figure, StepResult

if TYPE_CHECKING:  # the yardstick's process imports nothing of the project
    from consumers.replay import Pipeline
    from consumers.report import Report


def _throughput(events: int, seconds: float, cpu_s: float,
                extra: list[Figure] | None = None) -> StepResult:
    """`cpu_s`: user + sys of every process the step ran (its workers too), so that the
    ratios can also be taken in CPU time, which a busy machine distorts far less."""
    return StepResult(
        [Figure("events", events, "events"), Figure("seconds", seconds, "s"),
         Figure("events/s", events / seconds, "events/s"),
         Figure("CPU time, all processes", cpu_s, "s"), *(extra or [])],
        {"events": events, "seconds": seconds, "cpu_s": cpu_s},
    )


def _children_cpu() -> float:
    """The CPU time of this process's finished children (worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def json_pass(ctx: Context) -> StepResult:
    """Decompress and json.loads every line: what any consumer of the file pays at least."""
    started = time.perf_counter()
    cpu = time.process_time()
    n = 0
    with gzip.open(ctx.log, "rb") as fh:
        for line in fh:
            json.loads(line)
            n += 1
    return _throughput(n, time.perf_counter() - started, time.process_time() - cpu)


def year_end_report(log: Path, year: int, jobs: int) -> Report:
    """What `vardgaranti report LOG --as-of <year>-12-31` computes (the month to date): the
    report every step that times `report` runs (this one, the streaming comparison)."""
    from consumers.report import build_report
    from models.measures import Period

    as_of = date(year, 12, 31)
    return build_report([log], Period.of(as_of.replace(day=1), as_of, as_of), jobs=jobs)


def report(ctx: Context) -> StepResult:
    """`year_end_report` with the command's default number of worker processes."""
    from consumers.report import default_jobs

    jobs = default_jobs([ctx.log_path])
    started = time.perf_counter()
    cpu = time.process_time()
    result = year_end_report(ctx.log_path, ctx.year, jobs)
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu + _children_cpu()
    # the workers' memory is not this process's: the largest worker's own figure
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = (children.ru_maxrss if jobs > 1
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
    return _throughput(result.stats.lines, seconds, cpu_s, [
        Figure("worker processes", jobs, "processes"),
        Figure("peak RSS of the largest worker (one process: its own)", peak_mb, "MB",
               "≤ 500 MB", peak_mb <= 500),
    ])


# a region's year replayed in under a minute (issue 17); a smaller log, its share of that
AIM_REPLAY_YEAR_S = 60.0


def replay(ctx: Context) -> StepResult:
    """`vardgaranti replay LOG` into a fresh SQLite store; then /metrics as the demo serves it."""
    db = Path(ctx.work) / "replay.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return _replay_into(ctx, f"sqlite:///{db}", metrics=True)


def replay_pg(ctx: Context) -> StepResult:
    """`vardgaranti replay LOG` into a fresh PostgreSQL store (the bench database)."""
    if ctx.pg_url is None:
        return StepResult(failed="no PostgreSQL (BENCH_PG_URL) answers")
    from sqlmodel import SQLModel

    from consumers.store import Store

    SQLModel.metadata.drop_all(Store(ctx.pg_url).engine)
    return _replay_into(ctx, ctx.pg_url, metrics=False)


def _replay_into(ctx: Context, url: str, *, metrics: bool) -> StepResult:
    """As `vardgaranti replay` runs (its settings and default readers); then, untimed
    (the command has no use for it), the pipeline restored as the demo serves it."""
    from consumers.replay import Pipeline
    from consumers.replay import replay as run_replay
    from consumers.store import Store
    from models.settings import Settings

    settings = Settings()
    store = Store(url)
    jobs = replay_jobs()
    started = time.perf_counter()
    cpu = time.process_time()
    pipeline = Pipeline.restore(store, settings.rules(), settings.allowed_lateness_us,
                                settings.grace_days)
    stats = run_replay([ctx.log_path], store, pipeline, jobs=jobs, serve=False)
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu + _children_cpu()
    aim = AIM_REPLAY_YEAR_S * ctx.scale
    figures = [
        Figure("time (aim: a year in 60 s, this log's share of it)", seconds, "s",
               f"< {aim:g} s", seconds < aim),
        Figure("reader processes", jobs, "processes"),
    ]
    if jobs > 1:  # the readers hold the cases; the step's own RSS is the writer's
        figures.append(Figure("peak RSS of the largest reader process",
                              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                              "MB"))
    if metrics:
        restored = time.perf_counter()
        pipeline.reload(store)
        figures += [
            Figure("then the pipeline restored to serve it (the demo)",
                   time.perf_counter() - restored, "s"),
            Figure("cases in memory", len(pipeline.engine.cases), "cases"),
        ]
        renders = _metrics_of(pipeline)
        figures.append(Figure("/metrics of this pipeline, p50", statistics.median(renders),
                              "ms", "< 100 ms", statistics.median(renders) < 100))
    return _throughput(stats.lines, seconds, cpu_s, figures)


def replay_jobs() -> int:
    """Reader processes for the replay steps: BENCH_REPLAY_JOBS, else 1 (the command's
    default)."""
    return int(os.environ.get("BENCH_REPLAY_JOBS", "1"))


def _metrics_of(pipeline: Pipeline) -> list[float]:
    """Render times (ms) of the demo server's /metrics over the replayed pipeline."""
    from prometheus_client import generate_latest

    from vardgaranti.serve import pipeline_snapshot
    from web.metrics import registry_for

    registry = registry_for(lambda: pipeline_snapshot(pipeline))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        generate_latest(registry)
        times.append((time.perf_counter() - started) * 1000)
    return times
