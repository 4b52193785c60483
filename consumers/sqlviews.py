"""The SQL of window reads: running sums kept by the writer, per-unit rows, `window_counts`.

Every window measure but the spans is a difference of two running sums (docs/sql.md):
completed in [from, to] = running(to) − running(from − 1), waiting at a snapshot =
running_waiting(as_of) − running_waiting_end(as_of). A running sum at a day is the
`running` of the series' last row on or before it: one index seek, whatever the length of
the history. Spans are summed over the days of the period (bounded by the window).
The measure names come from models.measures, the targets from models.indicators.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import DDL, MetaData, event

from models.indicators import INDICATORS, REGION_UNIT
from models.measures import (
    CANCELLED,
    CLOCKS,
    COMPLETED,
    EXCLUDED,
    MEASURE_NAMES,
    OVER,
    OVER_END,
    PAUSED,
    WAITING,
    WAITING_END,
    WINDOWS,
    WITHIN,
)
from models.tables import SUMMED_MEASURES

VIEW: Final = "window_counts"
# Grafana's read-only PostgreSQL role (deploy/postgres/initdb): it may read the view and
# the tables its queries name, nothing else (not the clocks, events or notices).
READER_ROLE: Final = "vardgaranti_reader"
READABLE: Final = (VIEW, "count_groups", "daily_counts")
GRANT_READER: Final = (
    f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN "
    f"GRANT SELECT ON {', '.join(READABLE)} TO {READER_ROLE}; END IF; END $$"
)

# Every running sum from scratch: for a store written before they existed.
SUM_ALL: Final = f"""
UPDATE daily_counts SET running = sums.running FROM (
  SELECT indicator, unit_id, measure, day,
         SUM(count) OVER (PARTITION BY indicator, unit_id, measure ORDER BY day) AS running
  FROM daily_counts WHERE measure IN ({", ".join(repr(m) for m in SUMMED_MEASURES)})
) sums
WHERE daily_counts.indicator = sums.indicator AND daily_counts.unit_id = sums.unit_id
  AND daily_counts.measure = sums.measure AND daily_counts.day = sums.day
"""

# Per-unit columns, in Row's field names, and the region-wide sum of each.
COUNT_COLUMNS: Final = ("completed", "completed_within", "waiting", "waiting_over_limit",
                        "paused", "excluded", "cancelled")


def _at(measure: int, cmp: str, day: str) -> str:
    """The running sum of the group's `measure` series at the last row with day `cmp` day."""
    return (
        "COALESCE((SELECT c.running FROM daily_counts c WHERE c.indicator = g.indicator "
        f"AND c.unit_id = g.unit_id AND c.measure = '{MEASURE_NAMES[measure]}' "
        f"AND c.day {cmp} {day} ORDER BY c.day DESC LIMIT 1), 0)"
    )


def _span(measure: int, first: str, last: str, snap: str) -> str:
    """Spans of `measure` whose last change falls in [first, last], still so at snap."""
    return (
        "COALESCE((SELECT SUM(c.count) FROM daily_counts c WHERE c.indicator = g.indicator "
        f"AND c.unit_id = g.unit_id AND c.measure = '{MEASURE_NAMES[measure]}' "
        f"AND c.day >= {first} AND c.day <= {last} AND c.until_day > {snap}), 0)"
    )


def unit_columns(first: str, last: str, snap: str) -> str:
    """The select list of one group `g` (count_groups) over the period [first, last] at the
    end of day snap: SQL expressions (bind parameters or columns) for the three dates."""
    return ",\n".join([
        f"{_at(CLOCKS, '<=', snap)} AS clocks",
        f"{_at(COMPLETED, '<=', last)} - {_at(COMPLETED, '<', first)} AS completed",
        f"{_at(WITHIN, '<=', last)} - {_at(WITHIN, '<', first)} AS completed_within",
        f"{_at(WAITING, '<=', snap)} - {_at(WAITING_END, '<=', snap)} AS waiting",
        f"{_at(OVER, '<=', snap)} - {_at(OVER_END, '<=', snap)} AS waiting_over_limit",
        f"{_span(PAUSED, first, last, snap)} AS paused",
        f"{_span(EXCLUDED, first, last, snap)} AS excluded",
        f"{_span(CANCELLED, first, last, snap)} AS cancelled",
    ])


def unit_rows(one_indicator: bool) -> str:
    """What Store.per_unit runs (binds :first, :last, :snap and maybe :indicator): every
    group with counters by the snapshot (the caller keeps those with a clock: a filter here
    would make PostgreSQL seek the clocks twice)."""
    where = " AND g.indicator = :indicator" if one_indicator else ""
    return (
        f"SELECT g.indicator, g.unit_id,\n{unit_columns(':first', ':last', ':snap')}\n"
        f"FROM count_groups g WHERE g.first_day <= :snap{where}"
    )


def _window_days() -> str:
    """(name, days) of every window; days NULL for the calendar month."""
    rows = [f"('{w}', {w[:-1] if w.endswith('d') else 'NULL'})" for w in WINDOWS]
    return ", ".join(rows)


def _ratio(num: str, den: str) -> str:
    return f"CASE WHEN {den} <> 0 THEN ROUND({num} * 1.0 / {den}, 4) END"


def view_sql(dialect: str) -> str:
    """CREATE VIEW window_counts: the rows of `vardgaranti query` for every stored day and
    window, with a region-wide (`ALL`) row per indicator. Filter on as_of and window_name."""
    if dialect == "postgresql":
        calendar = ("SELECT d::date AS as_of FROM generate_series("
                    "(SELECT MIN(first_day) FROM count_groups), "
                    "(SELECT MAX(last_day) FROM count_groups), interval '1 day') AS d")
        month_start = "CAST(date_trunc('month', cal.as_of) AS date)"
        back = "cal.as_of - (w.days - 1)"
        before = "WITH"
        materialized = " NOT MATERIALIZED"  # let as_of filters reach the calendar
        cal_from = f"({calendar}) cal"
    else:
        before = (
            "WITH RECURSIVE cal(as_of) AS (SELECT MIN(first_day) FROM count_groups "
            "UNION ALL SELECT date(as_of, '+1 day') FROM cal "
            "WHERE as_of < (SELECT MAX(last_day) FROM count_groups)),"
        )
        materialized = ""
        month_start = "date(cal.as_of, 'start of month')"
        back = "date(cal.as_of, '-' || (w.days - 1) || ' days')"
        cal_from = "cal"
    periods = (
        f"SELECT cal.as_of, w.name AS window_name, CASE WHEN w.days IS NULL THEN "
        f"{month_start} ELSE {back} END AS from_day, cal.as_of AS to_day "
        f"FROM {cal_from} CROSS JOIN windows w"
    )
    units = (
        "SELECT * FROM (SELECT p.as_of, p.window_name, p.from_day, p.to_day, g.indicator, "
        f"g.unit_id,\n{unit_columns('p.from_day', 'p.to_day', 'p.as_of')}\n"
        "FROM periods p JOIN count_groups g ON g.first_day <= p.as_of) u WHERE u.clocks > 0"
    )
    keys = "as_of, window_name, from_day, to_day, indicator"
    sums = ", ".join(f"SUM({c}) AS {c}" for c in COUNT_COLUMNS)
    cols = ", ".join(COUNT_COLUMNS)
    targets = " ".join(f"WHEN '{i.id}' THEN {i.target!r}" for i in INDICATORS)
    order = " ".join(f"WHEN '{i.id}' THEN {n}" for n, i in enumerate(INDICATORS))
    return f"""CREATE VIEW {VIEW} AS
{before} windows(name, days) AS (VALUES {_window_days()}),
periods AS{materialized} ({periods})
SELECT r.as_of, r.window_name, r.from_day, r.to_day, r.indicator, r.unit_id,
  r.completed, r.completed_within,
  {_ratio('r.completed_within', 'r.completed')} AS completed_ratio,
  r.waiting, r.waiting_over_limit,
  {_ratio('(r.waiting - r.waiting_over_limit)', 'r.waiting')} AS waiting_ratio,
  r.paused, r.excluded, r.cancelled,
  CASE r.indicator {targets} END AS target,
  CASE r.indicator {order} END AS indicator_order
FROM (
  SELECT {keys}, '{REGION_UNIT}' AS unit_id, {sums} FROM ({units}) a GROUP BY {keys}
  UNION ALL
  SELECT {keys}, unit_id, {cols} FROM ({units}) b
) r
"""


def register(metadata: MetaData) -> None:
    """Create the view with the tables (create_all), grant Grafana's role (if there is one)
    what it reads, and drop the view before the tables (drop_all)."""
    drop = f"DROP VIEW IF EXISTS {VIEW}"
    event.listen(metadata, "before_drop", _ddl(drop))
    event.listen(metadata, "after_create", _ddl(drop))
    for dialect in ("postgresql", "sqlite"):
        event.listen(metadata, "after_create", _ddl(view_sql(dialect)).execute_if(dialect=dialect))
    event.listen(metadata, "after_create", _ddl(GRANT_READER).execute_if(dialect="postgresql"))


def _ddl(statement: str) -> DDL:
    return DDL(statement)  # type: ignore[no-untyped-call]
