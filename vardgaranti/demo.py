"""`vardgaranti demo`: a synthetic year of the region, replayed, summarised, then served.

The generated log and the store are cached in the data directory: a second start skips
the generation and its replay is a no-op (every event id is already stored).
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rich.console import Console

from consumers.replay import Pipeline, replay
from consumers.store import Store
from models.indicators import INDICATORS, REGION_UNIT
from models.measures import Period, Row, arrange
from models.settings import Settings
from vardgaranti.output import Column, coloured_share, fitting_table
from vardgaranti.progress import line_progress
from web import format as fmt
from web.labels import t, unit_group, unit_label


@dataclass(frozen=True)
class DemoOptions:
    year: int
    scale: float
    seed: int
    data_dir: Path
    host: str
    port: int


class PortBusy(Exception):
    """The HTTP port cannot be bound: said before the long generate and replay."""


def check_port(host: str, port: int) -> None:
    """Bind and release the port as the server will (uvicorn sets SO_REUSEADDR, so a port
    in TIME_WAIT is fine); raise PortBusy with a one-line reason otherwise."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise PortBusy(
            f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); is "
            "another demo running? Stop it, or choose another port with --port or "
            "VARDGARANTI_HTTP_PORT"
        ) from None


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


def summary(pipeline: Pipeline, store: Store, year: int, console: Console) -> None:
    """Per indicator: the year against the 2023 figure and the target; worst units."""
    year_end = min(date(year, 12, 31), pipeline.today() or date(year, 12, 31))
    period = Period.of(date(year, 1, 1), year_end, year_end)
    per_unit = store.per_unit(period)  # the pipeline keeps only the counters it moved
    rows = {r.indicator: r for r in arrange(per_unit, REGION_UNIT)}
    columns = (
        Column(t("indicator"), numeric=False), Column(t("completed"), drop=1),
        Column(str(year)), Column(f"{t('report')} 2023", drop=2), Column(t("target")),
        Column(t("waiting"), drop=1), Column(t("over_limit")), Column(t("vgv"), drop=3),
    )
    cells: list[tuple[list[str], str | None]] = []
    for ind in INDICATORS:
        row = rows.get(ind.id) or Row(ind.id, REGION_UNIT)
        d = row.as_dict()
        cells.append(([
            ind.name_sv, fmt.number(row.completed),
            coloured_share(d["completed_ratio"], ind.target), fmt.share(ind.result_2023),
            fmt.share(ind.target), fmt.number(row.waiting), fmt.number(row.waiting_over_limit),
            fmt.share(d["waiting_ratio"]),
        ], None))
    title = (f"Vårdgaranti {year}, {t('region').lower()} "
             f"({t('waiting_at_end').format(fmt.day(year_end))})")
    console.print(fitting_table(title, columns, cells, console.width))

    over: dict[str, int] = {}
    for (_, unit), row in per_unit.items():
        over[unit] = over.get(unit, 0) + row.waiting_over_limit
    worst = sorted(over.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    units: list[tuple[list[str], str | None]] = [
        ([unit_label(u), unit_group(u), fmt.number(n)], None) for u, n in worst
    ]
    console.print(fitting_table(
        t("worst_units"),
        (Column(t("unit"), numeric=False), Column(t("group"), numeric=False, drop=1),
         Column(t("over_limit"))),
        units, console.width,
    ))


def run(opts: DemoOptions, settings: Settings) -> int:
    from vardgaranti.serve import serve

    check_port(opts.host, opts.port)
    console = Console(highlight=False)
    pipeline, store = prepare(opts, settings, console)
    summary(pipeline, store, opts.year, console)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    made_up = token is None
    token = token or secrets.token_urlsafe(24)
    base = f"http://{opts.host}:{opts.port}"
    note = "  (made up for this run; set VARDGARANTI_API_TOKEN)" if made_up else ""
    console.print(
        f"\nServing on {base}  (Ctrl-C stops)\n"
        "Sign in once with the token; the pages and the API then need nothing more.\n"
        f"  översikt     {base}/\n"
        f"  enheter      {base}/enheter\n"
        f"  arbetslista  {base}/arbetslista\n"
        f"  API-dok      {base}/docs\n"
        f"  metrics      {base}/metrics\n"
        f"  token        {token}{note}\n"
        f"  e.g.         curl -H 'Authorization: Bearer {token}' "
        f"'{base}/api/v1/aggregates?window=month'",
        markup=False, soft_wrap=True,
    )
    serve(pipeline, store, opts.host, opts.port, token, settings.disclosure(), synthetic=True)
    console.print("stopped")
    return 0
