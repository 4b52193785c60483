"""`vardgaranti demo`: a synthetic year of the region, replayed, summarised, then served.

The generated log and the store are cached in the data directory: a second start skips
the generation and its replay is a no-op (every event id is already stored).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from consumers.replay import Pipeline, replay
from consumers.store import Store
from models.indicators import INDICATORS, REGION_UNIT
from models.measures import Period, Row, accumulate, rows_for
from models.settings import Settings
from vardgaranti.progress import line_progress


@dataclass(frozen=True)
class DemoOptions:
    year: int
    scale: float
    seed: int
    data_dir: Path
    host: str
    port: int


def prepare(opts: DemoOptions, settings: Settings, console: Console) -> tuple[Pipeline, Store]:
    from vardgaranti.generate import generate

    opts.data_dir.mkdir(parents=True, exist_ok=True)
    stem = f"region-{opts.year}-s{opts.scale:g}-seed{opts.seed}"
    log = opts.data_dir / f"{stem}.jsonl.gz"
    if not log.exists():
        console.print(f"Generating a synthetic year {opts.year} (scale {opts.scale:g}) → {log}")
        tmp = log.with_name(f"{stem}.part.jsonl.gz")  # never leave a half-written cache
        generate(tmp, opts.year, seed=opts.seed, scale=opts.scale, progress=True)
        tmp.rename(log)
    store = Store(f"sqlite:///{opts.data_dir / (stem + '.db')}")
    pipeline = Pipeline.restore(store, settings.rules(), settings.allowed_lateness_us,
                                    settings.grace_days)
    with line_progress("replaying") as tick:
        stats = replay([log], store, pipeline, progress=tick)
    console.print(
        f"Replayed {stats.lines:,} lines in {stats.seconds:.1f} s: {stats.new_events:,} new "
        f"events ({stats.duplicates:,} already stored or duplicated, "
        f"{sum(stats.rejected.values()):,} rejected)"
    )
    return pipeline, store


def summary(pipeline: Pipeline, year: int, console: Console) -> None:
    """Per indicator: the year against the 2023 figure and the target; worst units."""
    year_end = min(date(year, 12, 31), pipeline.today() or date(year, 12, 31))
    period = Period.of(date(year, 1, 1), year_end, year_end)
    rows = {r.indicator: r for r in rows_for(pipeline.counts.items(), period, REGION_UNIT)}
    table = Table(title=f"Vårdgaranti {year}, region-wide (waiting at the end of {year_end})",
                  title_justify="left")
    for col in ("indicator", "guarantee", "completed", f"{year}", "2023", "target", "met",
                "waiting", "over limit", "vårdgarantivärde"):
        table.add_column(col, justify="left" if col in ("indicator", "guarantee") else "right")
    for ind in INDICATORS:
        row = rows.get(ind.id) or Row(ind.id, REGION_UNIT)
        d = row.as_dict()
        share = d["completed_ratio"]
        met = share is not None and share >= ind.target
        table.add_row(
            ind.id, ind.name_sv, f"{row.completed:,}", _pct(share), _pct(ind.result_2023),
            _pct(ind.target), "[green]yes[/]" if met else "[red]no[/]",
            f"{row.waiting:,}", f"{row.waiting_over_limit:,}", _pct(d["waiting_ratio"]),
        )
    console.print(table)

    per_unit = accumulate(pipeline.counts.items(), period)
    over: dict[str, int] = {}
    for (_, unit), row in per_unit.items():
        over[unit] = over.get(unit, 0) + row.waiting_over_limit
    worst = sorted(over.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    units = Table(title="Units with the most patients waiting over the limit",
                  title_justify="left")
    units.add_column("unit")
    units.add_column("waiting over limit", justify="right")
    for unit, n in worst:
        units.add_row(unit, f"{n:,}")
    console.print(units)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f} %"


def run(opts: DemoOptions, settings: Settings) -> int:
    from vardgaranti.serve import serve

    console = Console(width=max(Console().width, 130))
    pipeline, store = prepare(opts, settings, console)
    summary(pipeline, opts.year, console)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    made_up = token is None
    token = token or secrets.token_urlsafe(24)
    base = f"http://{opts.host}:{opts.port}"
    console.print(
        f"\nServing on {base}  (Ctrl-C stops)\n"
        f"  metrics   {base}/metrics\n"
        f"  API       {base}/api/v1/aggregates?indicator=besok_90&window=30d\n"
        f"  worklist  {base}/api/v1/at-risk?indicator=besok_90\n"
        f"  docs      {base}/docs\n"
        f"  token     {token}" + ("  (made up for this run; set VARDGARANTI_API_TOKEN)"
                                  if made_up else "") + "\n"
        f"  e.g.      curl -H 'Authorization: Bearer {token}' "
        f"'{base}/api/v1/aggregates?window=month'"
    )
    serve(pipeline, store, opts.host, opts.port, token)
    console.print("stopped")
    return 0
