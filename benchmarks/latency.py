"""Latency over a stored history: `query`, GET /api/v1/aggregates, and the /metrics render.

The history is synthetic counters, every unit × 7 indicators × day, written straight into
the store with Store.write_batch (the rows a replay leaves in `daily_counts`), once for a
year and once for ten years ending with it: window reads seek running sums, so the p99 must
not grow with the history (aim: ten years within 1.5× of one). Units scale with --scale
(100 at 1). The SQLite files are kept under .cache/bench and reused while they hold the
expected rows; PostgreSQL (a schema per history length) is filled the same way.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.suite import Context, Figure, StepResult

if TYPE_CHECKING:
    import httpx

UNITS = 100
HISTORIES = (1, 10)  # years stored, ending with the benchmark year
AIM_QUERY_P99_MS = 50.0
AIM_GROWTH = 1.5  # p99 over ten years / p99 over one
REPEATS = 20  # per window × indicator case: 200 samples per store (a steadier p99)


def counters(year: int, units: int = UNITS, years: int = 1
             ) -> Iterator[tuple[tuple[int, int, str, int, int], int]]:
    """Per-day counters of `years` years ending with `year`: what `query` and /metrics
    read, for every unit × indicator × day (waiting kept as +1 on entry and +1 on leaving,
    as the engine does)."""
    from models import measures as m

    rng = random.Random(1)
    first = date(year - years + 1, 1, 1).toordinal()
    last = date(year, 12, 31).toordinal()
    for u in range(units):
        unit = f"unit-{u:03d}"
        for ind in range(7):
            for day in range(first, last + 1):
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


def _fill(store: Any, rows: Iterator[tuple[tuple[int, int, str, int, int], int]]
          ) -> tuple[int, float]:
    """Write the counters into the store in batches; (rows, seconds)."""
    batch: dict[tuple[int, int, str, int, int], int] = {}
    n = 0
    started = time.perf_counter()
    for key, count in rows:
        batch[key] = count
        if len(batch) >= 50_000:
            store.write_batch([], [], batch, [])
            n += len(batch)
            batch = {}
    store.write_batch([], [], batch, [])
    return n + len(batch), time.perf_counter() - started


def _units(ctx: Context) -> int:
    return max(3, round(UNITS * ctx.scale))


def stored(url: str, ctx: Context, years: int) -> tuple[Any, dict[str, float]]:
    """A store holding `years` years of counters (filled unless it already holds them)."""
    from sqlalchemy import func, select
    from sqlmodel import SQLModel

    from consumers.store import COUNTS, Store

    store = Store(url)
    with store.engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(COUNTS)).scalar_one()
    want = sum(1 for _ in counters(ctx.year, _units(ctx), years))
    if have == want:
        return store, {"rows": want}
    SQLModel.metadata.drop_all(store.engine)
    SQLModel.metadata.create_all(store.engine)
    rows, seconds = _fill(store, counters(ctx.year, _units(ctx), years))
    return store, {"rows": rows, "fill_s": seconds, "fill_rows_per_s": rows / seconds}


def _pg_schema(url: str, years: int) -> str:
    """The benchmark's PostgreSQL URL for a history length: a schema of its own (made if
    missing) in the given database, chosen by search_path."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"history_{years}y"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    engine.dispose()
    target = make_url(url).update_query_dict({"options": f"-c search_path={schema}"})
    return target.render_as_string(hide_password=False)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), qs[98]


def _cases() -> list[tuple[str, str | None]]:
    from models.indicators import INDICATOR_IDS
    from models.measures import WINDOWS

    return [(w, i) for w in WINDOWS for i in (None, INDICATOR_IDS[2])]


def _stores(ctx: Context) -> Iterator[tuple[str, int, str]]:
    """(backend, years, URL) of every store the latency steps read."""
    for years in HISTORIES:
        yield "SQLite", years, f"sqlite:///{Path(ctx.work) / f'history-{years}y.db'}"
    if ctx.pg_url:
        for years in HISTORIES:
            yield "PostgreSQL", years, _pg_schema(ctx.pg_url, years)


def _measured(ctx: Context, what: str, sample: Callable[[Any, date, str, str | None], None]
              ) -> StepResult:
    """p50/p99 of `sample(store, as_of, window, indicator)` on every store, and the p99
    growth from one year of history to ten."""
    as_of = date(ctx.year, 12, 31)
    figures: list[Figure] = []
    data: dict[str, Any] = {}
    for name, years, url in _stores(ctx):
        store, fill = stored(url, ctx, years)
        samples: list[float] = []
        for _ in range(REPEATS):
            for window, indicator in _cases():
                started = time.perf_counter()
                sample(store, as_of, window, indicator)
                samples.append((time.perf_counter() - started) * 1000)
        store.engine.dispose()
        p50, p99 = _percentiles(samples)
        data[f"{name} {years}y"] = {**fill, "p50_ms": p50, "p99_ms": p99,
                                    "samples": len(samples), "units": _units(ctx)}
        label = f"{name}, {years} y"
        figures += [
            Figure(f"{label}: {what} p50", p50, "ms"),
            Figure(f"{label}: {what} p99", p99, "ms", f"< {AIM_QUERY_P99_MS:g} ms",
                   p99 < AIM_QUERY_P99_MS),
        ]
        if "fill_rows_per_s" in fill:
            figures.append(Figure(f"{label}: counter rows written", fill["fill_rows_per_s"],
                                  "rows/s"))
        one = data.get(f"{name} {HISTORIES[0]}y")
        if years != HISTORIES[0] and one:
            for q, value in (("p50", p50), ("p99", p99)):  # p99 is the aim; p50 is steadier
                growth = value / one[f"{q}_ms"]
                figures.append(Figure(f"{name}: {what} {q}, {years} y / {HISTORIES[0]} y",
                                      growth, "×", f"< {AIM_GROWTH:g}×", growth < AIM_GROWTH))
    return StepResult(figures, data)


def query(ctx: Context) -> StepResult:
    """Store.per_unit + measures.arrange: what `vardgaranti query` runs."""
    from models.measures import Period, arrange, window_first

    def sample(store: Any, as_of: date, window: str, indicator: str | None) -> None:
        period = Period.of(window_first(window, as_of), as_of, as_of)
        arrange(store.per_unit(period, indicator))

    return _measured(ctx, "query", sample)


def asgi_client(app: Any) -> httpx.AsyncClient:
    """A client calling `app` on the caller's event loop, as uvicorn runs it: the test
    client runs the app in a second thread and hands each request across, which took as
    much CPU as the app itself (docs/live-view.md, "Read cost, measured")."""
    import httpx

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")


def api(ctx: Context) -> StepResult:
    """GET /api/v1/aggregates through the FastAPI app, on one event loop (`asgi_client`)."""
    import asyncio

    from prometheus_client.registry import CollectorRegistry

    from models.live import LiveView
    from web.api import create_app
    from web.reads import LiveSource

    loop = asyncio.new_event_loop()
    clients: dict[int, httpx.AsyncClient] = {}

    def sample(store: Any, as_of: date, window: str, indicator: str | None) -> None:
        client = clients.get(id(store))
        if client is None:
            # no live figures: every period is asked of the store
            source = LiveSource(LiveView(), store.per_unit, store.ping)
            client = clients[id(store)] = asgi_client(
                create_app(source, CollectorRegistry(), lambda: as_of))
        params = {"window": window, **({"indicator": indicator} if indicator else {})}
        loop.run_until_complete(client.get("/api/v1/aggregates", params=params)
                                ).raise_for_status()

    try:
        return _measured(ctx, "/api/v1/aggregates", sample)
    finally:
        for client in clients.values():
            loop.run_until_complete(client.aclose())
        loop.close()
