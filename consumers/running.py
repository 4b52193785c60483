"""Keeping `daily_counts.running` exact as counters move (the writer's half of window reads).

A batch moves some counters of some series (indicator × unit × measure). For each series
the running sums change from its earliest moved day on: that suffix is read with the
running sum just before it (the base), the moves are applied, and the suffix is summed
again in Python. Only rows whose count or running sum changed are written back, in the
batch's one upsert; rows back at zero are deleted. Replayed logs in time order move the
last few days of each series, so the suffix stays short; a late event reaches further back.
Derived from the counts alone, so writing the same batch twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection, Date, String, Table, and_, column, literal_column, select
from sqlalchemy import values as sql_values

from models.tables import SUMMED_MEASURES

Series = tuple[str, str, str]  # indicator, unit_id, measure
CHUNK = 1000  # series per read: 4 parameters each, well under SQLite's limit


def _key(row: dict[str, Any]) -> Series:
    return row["indicator"], row["unit_id"], row["measure"]


def _stored(conn: Connection, table: Table, starts: dict[Series, date]
            ) -> tuple[dict[Series, int], dict[Series, dict[date, int]]]:
    """Per series: the running sum before its start, and its counts from the start on."""
    bases: dict[Series, int] = {}
    counts: dict[Series, dict[date, int]] = {s: {} for s in starts}
    items = [(*s, d) for s, d in starts.items()]
    c = table.c
    for i in range(0, len(items), CHUNK):
        s = sql_values(column("indicator", String), column("unit_id", String),
                       column("measure", String), column("day", Date),
                       name="starts").data(items[i:i + CHUNK]).cte("starts")
        same = and_(c.indicator == s.c.indicator, c.unit_id == s.c.unit_id,
                    c.measure == s.c.measure)
        base = (select(c.running).where(same, c.day < s.c.day)
                .order_by(c.day.desc()).limit(1).scalar_subquery())
        suffix = select(s.c.indicator, s.c.unit_id, s.c.measure, c.day, c.count).join(
            table, and_(same, c.day >= s.c.day))
        before = select(s.c.indicator, s.c.unit_id, s.c.measure,
                        literal_column("NULL").label("day"), base)
        for ind, unit, measure, day, n in conn.execute(suffix.union_all(before)):
            if day is None:
                bases[(ind, unit, measure)] = int(n or 0)
            else:
                counts[(ind, unit, measure)][_as_date(day)] = int(n)
    return bases, counts


def _as_date(day: date | str) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


def with_running(conn: Connection, table: Table, live: list[dict[str, Any]],
                 gone: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows to upsert: `live` rows of spans as they are (running NULL), and every row of
    a moved series whose count or running sum changed, with its new running sum."""
    out = [r for r in live if r["measure"] not in SUMMED_MEASURES]
    moves: dict[Series, dict[date, int]] = {}
    templates: dict[Series, dict[str, Any]] = {}
    for r in (*live, *gone):
        if r["measure"] in SUMMED_MEASURES:
            moves.setdefault(_key(r), {})[r["day"]] = r["count"]
            templates.setdefault(_key(r), r)
    if not moves:
        return out
    bases, stored = _stored(conn, table, {s: min(m) for s, m in moves.items()})
    for series, moved in moves.items():
        old = stored[series]
        new = {**old, **moved}
        running = old_running = bases.get(series, 0)
        for day in sorted(new.keys() | old.keys()):
            n, was = new.get(day, 0), old.get(day, 0)
            running += n
            old_running += was
            if n and (n != was or running != old_running):
                out.append({**templates[series], "day": day, "count": n, "running": running})
    return out
