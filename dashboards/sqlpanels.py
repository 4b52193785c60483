"""Grafana panels on the PostgreSQL store: SQL over the `window_counts` view (docs/sql.md).

The view gives the rows of `vardgaranti query`; these queries only pick rows: the calendar
month window at each month's last stored day (the annual report's monthly figure), with
ratios hidden below `$min_cases` cases. Column and view names come from consumers.sqlviews,
so the panels read what the store writes. tests/dashboards/test_sql_panels.py executes
every query here against a replayed store and checks the numbers against `query`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from consumers.sqlviews import VIEW
from models.indicators import Indicator

Json = dict[str, Any]
DS_PG: Final = {"type": "grafana-postgresql-datasource", "uid": "postgres"}

# a month's figure: the month to date at its last day, or at the newest stored day
MONTH_END: Final = (
    "w.window_name = 'month' AND w.as_of = LEAST("
    "CAST(date_trunc('month', w.as_of) + interval '1 month - 1 day' AS date), "
    "(SELECT MAX(last_day) FROM count_groups))"
)


@dataclass(frozen=True)
class Series:
    """One line of the annual-report chart: a view column, a year back or not."""

    ref: str
    legend: str
    column: str
    cases: str | None  # the count a ratio is suppressed by; None: not a ratio
    years_back: int


HISTORY_SERIES: Final = (
    Series("A", "Genomförda inom gränsen", "completed_ratio", "completed", 0),
    Series("B", "Genomförda inom gränsen, förra året", "completed_ratio", "completed", 1),
    Series("C", "Vårdgarantivärde", "waiting_ratio", "waiting", 0),
    Series("D", "Vårdgarantivärde, förra året", "waiting_ratio", "waiting", 1),
    Series("E", "Mål", "target", None, 0),
)


def _value(column: str, cases: str | None) -> str:
    if cases is None:
        return f"w.{column}"
    return f"CASE WHEN w.{cases} >= $min_cases THEN w.{column} END"


def series_sql(ind: Indicator, s: Series) -> str:
    """Region-wide monthly figures of one indicator; a year back is drawn a year later."""
    back = f" - interval '{s.years_back} year'" if s.years_back else ""
    ahead = f" + interval '{s.years_back} year'" if s.years_back else ""
    return f"""\
SELECT date_trunc('month', w.as_of){ahead} AS time,
  {_value(s.column, s.cases)} AS "{s.legend}"
FROM {VIEW} w
WHERE w.indicator = '{ind.id}' AND w.unit_id = 'ALL' AND {MONTH_END}
  AND w.as_of BETWEEN CAST(CAST($__timeFrom() AS timestamptz){back} AS date)
                  AND CAST(CAST($__timeTo() AS timestamptz){back} AS date)
ORDER BY 1
"""


# the per-unit monthly table: (header, view column, count a ratio is suppressed by)
TABLE_COLUMNS: Final = (
    ("Genomförda", "completed", None),
    ("Inom gränsen", "completed_within", None),
    ("Andel inom gränsen", "completed_ratio", "completed"),
    ("Väntande", "waiting", None),
    ("Över gränsen", "waiting_over_limit", None),
    ("Vårdgarantivärde", "waiting_ratio", "waiting"),
    ("Mål", "target", None),
)

MONTH_TABLE_SQL: Final = f"""\
SELECT CAST(date_trunc('month', w.as_of) AS date) AS "Månad", w.indicator AS "Indikator",
  w.unit_id AS "Enhet",
  {", ".join(f'{_value(col, cases)} AS "{head}"' for head, col, cases in TABLE_COLUMNS)}
FROM {VIEW} w
WHERE w.indicator IN (${{indicator:sqlstring}}) AND w.unit_id IN (${{unit:sqlstring}})
  AND {MONTH_END} AND $__timeFilter(w.as_of)
ORDER BY 1 DESC, w.indicator_order, w.unit_id <> 'ALL', w.unit_id
"""


def sql_target(ref: str, sql: str, fmt: str) -> Json:
    return {"datasource": DS_PG, "editorMode": "code", "format": fmt, "rawQuery": True,
            "rawSql": sql, "refId": ref}


def history_targets(ind: Indicator) -> list[Json]:
    return [sql_target(s.ref, series_sql(ind, s), "time_series") for s in HISTORY_SERIES]


def history_panels(layout: Any, panel: Any, overrides: list[Json], defaults: Json,
                   options: Json, indicators: tuple[Indicator, ...]) -> list[Json]:
    """A row of annual-report charts from the store, one per indicator (build.panel makes
    each panel; `overrides` style the lines)."""
    layout.newline()
    pid, pos = layout.place(24, 1)
    out: list[Json] = [{"collapsed": False, "gridPos": pos, "id": pid, "panels": [],
                        "title": "Månadshistorik ur databasen (PostgreSQL)", "type": "row"}]
    for ind in indicators:
        out.append(panel(
            layout, "timeseries", f"{ind.name_sv} - per månad (databasen)",
            history_targets(ind), w=12, h=8, defaults=defaults, overrides=overrides,
            options=options, datasource=DS_PG,
            description="From the store (PostgreSQL), so replayed years show too: per "
            "month, the share completed within the limit in the month and the "
            "vårdgarantivärde at its last day, for the chosen time range and the same "
            "months a year earlier, against the target. Hidden below $min_cases cases.",
        ))
    return out
