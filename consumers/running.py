"""Keeping `daily_counts.running` exact as counters move (the writer's half of window reads).

A batch moves some counters of some series (indicator × unit × measure). For each series
the running sums change from its earliest moved day on: that suffix is read with the
running sum just before it (the base), the moves are applied, and the suffix is summed
again in Python. Only rows whose count or running sum changed are written back, in the
batch's one upsert; rows back at zero are deleted. Replayed logs in time order move the
last few days of each series, so the suffix stays short; a late event reaches further back.
Derived from the counts alone, so writing the same batch twice changes nothing.

A bulk load (one writer for its whole length) keeps each series' suffix it last wrote
(`Tails`), so the next batch reads back only the series it moves earlier than that.
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


class Tails:
    """Per series, what a bulk load last wrote from a day on: the running sum before that
    day and the stored counts from it on. The load is the store's one writer, so a later
    batch moving the series on or after that day needs no read. What a batch computes is
    taken up only once its transaction has committed (`commit`); a failed one `clear`s."""

    def __init__(self) -> None:
        self.known: dict[Series, tuple[date, int, dict[date, int]]] = {}
        self.pending: dict[Series, tuple[date, int, dict[date, int]]] = {}

    def suffix(self, series: Series, start: date) -> tuple[int, dict[date, int]] | None:
        """The running sum before `start` and the stored counts from it on, if known."""
        got = self.known.get(series)
        if got is None or start < got[0]:
            return None
        _, base, counts = got
        base += sum(n for d, n in counts.items() if d < start)
        return base, {d: n for d, n in counts.items() if d >= start}

    def commit(self) -> None:
        self.known.update(self.pending)
        self.pending.clear()

    def clear(self) -> None:
        self.known.clear()
        self.pending.clear()


def _as_date(day: date | str) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


def with_running(conn: Connection, table: Table, live: list[dict[str, Any]],
                 gone: Iterable[dict[str, Any]], tails: Tails | None = None
                 ) -> list[dict[str, Any]]:
    """The rows to upsert: `live` rows of spans as they are (running NULL), and every row of
    a moved series whose count or running sum changed, with its new running sum. With
    `tails` (a bulk load's), the suffixes it knows are not read back."""
    out = [r for r in live if r["measure"] not in SUMMED_MEASURES]
    moves: dict[Series, dict[date, int]] = {}
    templates: dict[Series, dict[str, Any]] = {}
    for r in (*live, *gone):
        if r["measure"] in SUMMED_MEASURES:
            moves.setdefault(_key(r), {})[r["day"]] = r["count"]
            templates.setdefault(_key(r), r)
    if not moves:
        return out
    starts = {s: min(m) for s, m in moves.items()}
    bases: dict[Series, int] = {}
    stored: dict[Series, dict[date, int]] = {}
    for series, start in starts.items():
        known = tails.suffix(series, start) if tails is not None else None
        if known is not None:
            bases[series], stored[series] = known
    unknown = {s: d for s, d in starts.items() if s not in stored}
    if unknown:
        read_bases, read_counts = _stored(conn, table, unknown)
        bases.update(read_bases)
        stored.update(read_counts)
    for series, moved in moves.items():
        old = stored[series]
        new = {**old, **moved}
        running = old_running = bases.get(series, 0)
        if tails is not None:  # what the store holds from the start on, once written
            tails.pending[series] = (starts[series], old_running,
                                     {d: n for d, n in new.items() if n})
        for day in sorted(new.keys() | old.keys()):
            n, was = new.get(day, 0), old.get(day, 0)
            running += n
            old_running += was
            if n and (n != was or running != old_running):
                out.append({**templates[series], "day": day, "count": n, "running": running})
    return out
