"""Reads from the live view: /metrics render, aggregates and at-risk p99, and how they grow.

The view is fed synthetic per-day counters (the shape the engine emits) for a base history
— `units` × 7 indicators × 365 days, `units` from the scale — for one 10× longer (10 years)
and, up to 100 units, one with 10× more units; plus open clocks for the worklist. A read
should cost the same over 10 years as over one (the issue aims below 1.5×); 10× the units
is 10× the groups, so there it grows with what is shown.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from benchmarks.latency import counters
from benchmarks.suite import Context, Figure, StepResult

AIM_METRICS_MS = 50.0
AIM_API_P99_MS = 20.0
AIM_GROWTH = 1.5
OPEN_PER_GROUP = 40  # open clocks per unit × indicator, deadlines around "today"
REPEATS = 100
MAX_UNITS = 100  # the region's size at scale 1


def _view(year: int, units: int, years: int) -> Any:
    """`years` years of counters ending with `year`, the view at its last day."""
    from models.calendar import end_of_day_micros
    from models.clocks import ClockView
    from models.live import LiveView

    view = LiveView()
    today = date(year, 12, 31).toordinal()
    view.advance(end_of_day_micros(today))  # first: counters then apply at once, none queued
    view.apply(counters(year, units, years))
    for u in range(units):
        for ind in range(7):
            for n in range(OPEN_PER_GROUP):
                deadline = today - 60 + (n * 7) % 150
                view.set_clocks(f"c-{u}-{ind}-{n}", [ClockView(
                    ind, f"unit-{u:03d}", "open", 0, deadline, None, None, False, None)])
    return view


def _ms(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def measure(view: Any) -> dict[str, float]:
    from fastapi.testclient import TestClient

    from models.indicators import INDICATOR_IDS
    from models.measures import WINDOWS
    from web.api import create_app
    from web.metrics import exposition, registry_for, snapshot_of
    from web.reads import LiveSource

    registry = registry_for(lambda: snapshot_of(view, {}, {}, 0, None))
    source = LiveSource(view, lambda period, indicator: {}, lambda: True)
    client = TestClient(create_app(source, registry, view.today_date))
    render = _ms(lambda: exposition(registry), 10)
    aggregates: list[float] = []
    at_risk: list[float] = []
    for _ in range(REPEATS // 10):
        for w in WINDOWS:
            for params in ({"window": w}, {"window": w, "indicator": INDICATOR_IDS[2]}):
                aggregates += _ms(lambda p=params: client.get(  # type: ignore[misc]
                    "/api/v1/aggregates", params=p).raise_for_status(), 1)
        for params in ({}, {"indicator": INDICATOR_IDS[2]}, {"unit": "unit-000"}):
            at_risk += _ms(lambda p=params: client.get(  # type: ignore[misc]
                "/api/v1/at-risk", params=p).raise_for_status(), 3)
    return {"metrics_ms": statistics.median(render), "aggregates_p99_ms": _p99(aggregates),
            "at_risk_p99_ms": _p99(at_risk), "aggregates_p50_ms": statistics.median(aggregates),
            "at_risk_p50_ms": statistics.median(at_risk),
            "series": float(exposition(registry).count(b"\n"))}


def run(ctx: Context) -> StepResult:
    units = max(2, min(MAX_UNITS, round(100 * ctx.scale)))
    shapes = {"1 year": (units, 1), "10 years": (units, 10)}
    if units * 10 <= MAX_UNITS:
        shapes["10x units"] = (units * 10, 1)
    data: dict[str, Any] = {"units": units}
    for name, (n_units, years) in shapes.items():
        data[name] = measure(_view(ctx.year, n_units, years))
    base, longer, wider = data["1 year"], data["10 years"], data.get("10x units")
    figures: list[Figure] = []
    for key, label, aim in (("metrics_ms", "/metrics render p50", AIM_METRICS_MS),
                            ("aggregates_p99_ms", "/api/v1/aggregates p99", AIM_API_P99_MS),
                            ("at_risk_p99_ms", "/api/v1/at-risk p99", AIM_API_P99_MS)):
        figures.append(Figure(f"{label}, {units} units, 1 year", base[key], "ms",
                              f"< {aim:g} ms", base[key] < aim))
        figures.append(Figure(f"{label}, 10 years", longer[key], "ms"))
        if key.endswith("p99_ms"):  # the machine's noise shows in p99; the median is steadier
            p50 = key.replace("p99", "p50")
            figures.append(Figure(f"{label.replace('p99', 'p50')}: 10 years / 1 year",
                                  longer[p50] / base[p50] if base[p50] else 0.0, "x"))
        ratio = longer[key] / base[key] if base[key] else 0.0
        figures.append(Figure(f"{label}: 10 years / 1 year", ratio, "x",
                              f"< {AIM_GROWTH:g}", ratio < AIM_GROWTH))
        if wider is not None:
            figures.append(Figure(f"{label}, {units * 10} units (10x)", wider[key], "ms"))
    return StepResult(figures, data)
