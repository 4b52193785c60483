"""Every SQL panel query of dashboards/*.json, executed as Grafana would run it (macros and
variables substituted, read-only) against two replayed years in a real PostgreSQL, and its
numbers checked against `vardgaranti query` (Store.per_unit + arrange) for the same dates."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from consumers.replay import Pipeline, replay
from consumers.store import Store
from dashboards import sqlpanels
from dashboards.build import DASHBOARD_DIR
from models.calendar import local_day
from models.clocks import Rules
from models.indicators import INDICATOR_IDS, INDICATORS
from models.measures import Period, Row, arrange
from vardgaranti.generate import generate

PG_URL = os.environ.get("VARDGARANTI_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="PostgreSQL: set VARDGARANTI_TEST_DATABASE_URL (postgresql+psycopg://…)")

YEAR = 2024
TIME_FROM, TIME_TO = f"{YEAR}-01-01T00:00:00Z", f"{YEAR}-12-31T23:59:59Z"  # the time picker
MIN_CASES = 5  # low enough that a small region shows ratios, high enough to hide some


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Last year and this year of a small region, replayed into PostgreSQL."""
    assert PG_URL
    s = Store(PG_URL)
    SQLModel.metadata.drop_all(s.engine)
    SQLModel.metadata.create_all(s.engine)
    logs = []
    for year in (YEAR - 1, YEAR):
        log = tmp_path_factory.mktemp("logs") / f"{year}.jsonl"
        generate(log, year, seed=3, scale=0.004, progress=False)
        logs.append(log)
    replay(logs, s, Pipeline.restore(s, Rules()))
    yield s
    SQLModel.metadata.drop_all(s.engine)
    s.engine.dispose()


def sql_targets() -> list[tuple[str, str]]:
    """(where, rawSql) of every PostgreSQL target of the generated dashboards."""
    out = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel.get("targets", []):
                ds = t.get("datasource") or panel.get("datasource") or {}
                if ds.get("uid") == sqlpanels.DS_PG["uid"]:
                    out.append((f"{path.name}: {panel['title']} {t['refId']}", t["rawSql"]))
    return out


def as_grafana(sql: str, variables: dict[str, list[str]]) -> str:
    """The query as Grafana sends it: time macros, then `${v:sqlstring}` and `$v`."""
    sql = re.sub(r"\$__timeFilter\(([^)]*)\)",
                 lambda m: f"{m.group(1)} BETWEEN '{TIME_FROM}' AND '{TIME_TO}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{TIME_FROM}'").replace("$__timeTo()", f"'{TIME_TO}'")
    sql = re.sub(r"\$\{(\w+):sqlstring\}",
                 lambda m: ",".join(f"'{v}'" for v in variables[m.group(1)]), sql)
    sql = re.sub(r"\$(\w+)", lambda m: ",".join(variables[m.group(1)]), sql)
    assert "$" not in sql, sql
    return sql


def run(s: Store, sql: str) -> list[dict[str, Any]]:
    with s.engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # what the Grafana role may do
        return [dict(r) for r in conn.exec_driver_sql(sql).mappings()]


def newest_day(s: Store) -> date:
    """The view's last day: the day of the newest event (what `query` defaults to)."""
    with s.engine.connect() as conn:
        last = conn.execute(text("SELECT MAX(last_day) FROM count_groups")).scalar_one()
    newest = s.newest_event_us()
    assert newest is not None and last == date.fromordinal(local_day(newest))
    return last


def month_figures(s: Store, month: date, newest: date) -> dict[tuple[str, str], Row]:
    """`query --window month` at the month's last day (or the newest day): per row key."""
    end = min(date(month.year + month.month // 12, month.month % 12 + 1, 1)
              - timedelta(days=1), newest)
    rows = arrange(s.per_unit(Period.of(month, end, end)))
    return {(r.indicator, r.unit_id): r for r in rows}


def shown(row: Row, column: str, cases: str | None) -> Any:
    """A view column of a query row as the panel shows it (small cells hidden)."""
    d = row.as_dict()
    if cases is not None and d[cases] < MIN_CASES:
        return None
    return d[column]


def same(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is want
    return math.isclose(float(got), float(want), abs_tol=1e-4)


def months(year: int, newest: date) -> list[date]:
    return [date(year, m, 1) for m in range(1, 13) if date(year, m, 1) <= newest]


def test_every_sql_panel_is_known_and_runs(store: Store) -> None:
    known = {sqlpanels.series_sql(i, s) for i in INDICATORS for s in sqlpanels.HISTORY_SERIES}
    known.add(sqlpanels.MONTH_TABLE_SQL)
    targets = sql_targets()
    assert len(targets) == len(known), "a SQL panel is missing from the dashboards"
    for where, sql in targets:
        assert sql in known, f"{where}: not generated by dashboards.sqlpanels (rebuild?)"


def test_history_chart_equals_query_for_each_month(store: Store) -> None:
    newest = newest_day(store)
    figures = {m: month_figures(store, m, newest)
               for year in (YEAR - 1, YEAR) for m in months(year, newest)}
    variables = {"min_cases": [str(MIN_CASES)]}
    checked = 0
    for ind in INDICATORS:
        for s in sqlpanels.HISTORY_SERIES:
            got = [(r["time"].date(), r[s.legend])
                   for r in run(store, as_grafana(sqlpanels.series_sql(ind, s), variables))]
            want = [
                (m.replace(year=m.year + s.years_back), shown(row, s.column, s.cases))
                for m in months(YEAR - s.years_back, newest)
                if (row := figures[m].get((ind.id, "ALL"))) is not None
            ]
            assert [d for d, _ in got] == [d for d, _ in want], (ind.id, s.legend)
            for (day, g), (_, w) in zip(got, want, strict=True):
                assert same(g, w), (ind.id, s.legend, day, g, w)
            checked += sum(1 for _, w in want if w is not None)
    assert checked > 100  # most months of most indicators have shown figures


def test_monthly_unit_table_equals_query(store: Store) -> None:
    newest = newest_day(store)
    figures = {m: month_figures(store, m, newest) for m in months(YEAR, newest)}
    units = sorted({u for f in figures.values() for _, u in f})
    variables = {"indicator": list(INDICATOR_IDS), "unit": units,
                 "min_cases": [str(MIN_CASES)]}
    rows = run(store, as_grafana(sqlpanels.MONTH_TABLE_SQL, variables))
    assert {(r["Månad"], r["Indikator"], r["Enhet"]) for r in rows} == {
        (m, i, u) for m, f in figures.items() for i, u in f}
    for r in rows:
        want = figures[r["Månad"]][(r["Indikator"], r["Enhet"])]
        for head, column, cases in sqlpanels.TABLE_COLUMNS:
            assert same(r[head], shown(want, column, cases)), (r, head)
    assert any(r["Andel inom gränsen"] is None for r in rows)  # small cells are hidden
    assert any(r["Andel inom gränsen"] is not None for r in rows)
