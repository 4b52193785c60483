"""Latency over a stored year: `query`, GET /api/v1/aggregates, and the /metrics render.

The year is synthetic counters, 100 units × 7 indicators × 365 days, written straight into
the store with Store.write_batch (the rows a replay leaves in `daily_counts`). The SQLite
file is kept under .cache/bench and reused while it holds the expected rows; PostgreSQL is
filled the same way when it answers.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.suite import Context, Figure, StepResult

UNITS = 100
DAYS = 365
AIM_QUERY_P99_MS = 50.0
REPEATS = 5  # per window × indicator case: 50 samples per store


def counters(year: int, units: int = UNITS, days: int = DAYS
             ) -> Iterator[tuple[tuple[int, int, str, int, int], int]]:
    """`days` of per-day counters from 1 January of `year`: what `query` and /metrics read,
    for every unit × indicator × day (waiting kept as +1 on entry and +1 on leaving, as the
    engine does)."""
    from models import measures as m

    rng = random.Random(1)
    first = date(year, 1, 1).toordinal()
    for u in range(units):
        unit = f"unit-{u:03d}"
        for ind in range(7):
            for day in range(first, first + days):
                started = rng.randint(1, 6)
                done = rng.randint(0, started)
                within = rng.randint(0, done)
                yield (m.CLOCKS, ind, unit, day, 0), started
                yield (m.WAITING, ind, unit, day, 0), started
                if done:
                    yield (m.WAITING_END, ind, unit, day, 0), done
                    yield (m.COMPLETED, ind, unit, day, 0), done
                if within:
                    yield (m.WITHIN, ind, unit, day, 0), within
                if done > within:
                    yield (m.OVER, ind, unit, day, 0), done - within
                    yield (m.OVER_END, ind, unit, day, 0), done - within
                    yield (m.BREACH, ind, unit, day, 0), done - within
                if day % 11 == 0:
                    yield (m.PAUSED, ind, unit, day, 0), 1


def _fill(store: Any, year: int) -> tuple[int, float]:
    """Write the year into the store in batches; (rows, seconds)."""
    batch: dict[tuple[int, int, str, int, int], int] = {}
    rows = 0
    started = time.perf_counter()
    for key, n in counters(year):
        batch[key] = n
        if len(batch) >= 50_000:
            store.write_batch([], [], batch, [])
            rows += len(batch)
            batch = {}
    store.write_batch([], [], batch, [])
    return rows + len(batch), time.perf_counter() - started


def _expected_rows(year: int) -> int:
    return sum(1 for _ in counters(year))


def stored_year(url: str, year: int) -> tuple[Any, dict[str, float]]:
    """A store holding the synthetic year (filled unless it already holds it)."""
    from sqlalchemy import func, select
    from sqlmodel import SQLModel

    from consumers.store import COUNTS, Store

    store = Store(url)
    with store.engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(COUNTS)).scalar_one()
    want = _expected_rows(year)
    if have == want:
        return store, {"rows": want}
    SQLModel.metadata.drop_all(store.engine)
    SQLModel.metadata.create_all(store.engine)
    rows, seconds = _fill(store, year)
    return store, {"rows": rows, "fill_s": seconds, "fill_rows_per_s": rows / seconds}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), qs[98]


def _cases() -> list[tuple[str, str | None]]:
    from models.indicators import INDICATOR_IDS
    from models.measures import WINDOWS

    return [(w, i) for w in WINDOWS for i in (None, INDICATOR_IDS[2])]


def _timed(samples: list[float], fn: Callable[..., object], *args: Any) -> None:
    started = time.perf_counter()
    fn(*args)
    samples.append((time.perf_counter() - started) * 1000)


def _query(store: Any, period: Any, indicator: str | None) -> object:
    from models.measures import arrange

    return arrange(store.per_unit(period, indicator))


def _get(client: Any, params: dict[str, str]) -> None:
    client.get("/api/v1/aggregates", params=params).raise_for_status()


def _backends(ctx: Context) -> list[tuple[str, str]]:
    out = [("SQLite", f"sqlite:///{Path(ctx.work) / 'stored-year.db'}")]
    if ctx.pg_url:
        out.append(("PostgreSQL", ctx.pg_url))
    return out


def query(ctx: Context) -> StepResult:
    """Store.per_unit + measures.arrange: what `vardgaranti query` runs."""
    from models.measures import Period, window_first

    as_of = date(ctx.year, 12, 31)
    figures: list[Figure] = []
    data: dict[str, Any] = {}
    for name, url in _backends(ctx):
        store, fill = stored_year(url, ctx.year)
        samples: list[float] = []
        for _ in range(REPEATS):
            for window, indicator in _cases():
                period = Period.of(window_first(window, as_of), as_of, as_of)
                _timed(samples, _query, store, period, indicator)
        p50, p99 = _percentiles(samples)
        data[name] = {**fill, "p50_ms": p50, "p99_ms": p99, "samples": len(samples)}
        figures += [
            Figure(f"{name}: query p50", p50, "ms"),
            Figure(f"{name}: query p99", p99, "ms", f"< {AIM_QUERY_P99_MS:g} ms",
                   p99 < AIM_QUERY_P99_MS),
        ]
        if "fill_rows_per_s" in fill:
            figures.append(Figure(f"{name}: counter rows written", fill["fill_rows_per_s"],
                                  "rows/s"))
        store.engine.dispose()
    return StepResult(figures, data)


def api(ctx: Context) -> StepResult:
    """GET /api/v1/aggregates through the FastAPI app (in-process client), SQLite store."""
    from fastapi.testclient import TestClient
    from prometheus_client.registry import CollectorRegistry

    from models.live import LiveView
    from web.api import create_app
    from web.reads import LiveSource

    as_of = date(ctx.year, 12, 31)
    figures: list[Figure] = []
    data: dict[str, Any] = {}
    for name, url in _backends(ctx):
        store, _ = stored_year(url, ctx.year)
        view = LiveView()  # no live figures: every period is asked of the store
        source = LiveSource(view, store.per_unit, store.ping)
        client = TestClient(create_app(source, CollectorRegistry(), lambda: as_of))
        samples: list[float] = []
        for _ in range(REPEATS):
            for window, indicator in _cases():
                params = {"window": window, **({"indicator": indicator} if indicator else {})}
                _timed(samples, _get, client, params)
        p50, p99 = _percentiles(samples)
        data[name] = {"p50_ms": p50, "p99_ms": p99, "samples": len(samples)}
        figures += [
            Figure(f"{name}: /api/v1/aggregates p50", p50, "ms"),
            Figure(f"{name}: /api/v1/aggregates p99", p99, "ms", f"< {AIM_QUERY_P99_MS:g} ms",
                   p99 < AIM_QUERY_P99_MS),
        ]
        store.engine.dispose()
    return StepResult(figures, data)
