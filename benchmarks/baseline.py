"""The report in DuckDB SQL over the same .jsonl.gz, and a check that both agree.

What the SQL covers: per indicator × unit, clocks started by their start events (earliest
start wins; pathway / kind pick the indicator), fulfilled by the first qualifying event at
or after the start (licensed professions only for tre_dagar; care.external fulfils any),
deadlines by calendar days or, for samma_dag, by the weekday rule (the same `holidays`
list), duplicates collapsed when they are byte-for-byte copies. Figures: completed and
completed_within in the month of the snapshot and in the 365-day window, waiting and
waiting_over_limit at the snapshot.

What it leaves out, on both sides (the check drops those cases from our figures too):
cases with a pause or resume (MOV / PVV and its restart), a transfer or a cancellation,
and cases whose repeated event ids differ in content. It also assumes every line is a
valid event (the generated year has no malformed lines) and does not report anomalies.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

from benchmarks.suite import Context, Figure, StepResult

EXCLUDED_TYPES = ("wait.paused", "wait.resumed", "case.transferred", "case.cancelled")
MEASURES = ("completed", "completed_within")
SNAPSHOT = ("waiting", "waiting_over_limit")

# One row per indicator: its position, start type and attribute values, fulfilling types.
_INDICATORS_SQL = """
CREATE TEMP TABLE ind(pos INT, id VARCHAR, start_type VARCHAR, pathway VARCHAR, kind VARCHAR,
                      fulfil VARCHAR[], limit_days INT, same_day BOOLEAN);
"""

_REPORT_SQL = """
WITH raw AS (
    SELECT DISTINCT event_id, type, case_id, occurred_at, unit_id, patient_ref,
           attributes.pathway AS pathway, attributes.kind AS kind,
           attributes.profession AS profession
    FROM read_json(?, format = 'newline_delimited', ignore_errors = true, columns = {
        event_id: 'VARCHAR', type: 'VARCHAR', case_id: 'VARCHAR', occurred_at: 'TIMESTAMPTZ',
        unit_id: 'VARCHAR', patient_ref: 'VARCHAR',
        attributes: 'STRUCT(pathway VARCHAR, kind VARCHAR, profession VARCHAR)'})
),
left_out AS (  -- the cases the SQL does not model
    SELECT DISTINCT case_id FROM raw WHERE type IN (SELECT unnest(?::VARCHAR[]))
    UNION
    SELECT case_id FROM raw GROUP BY case_id, event_id HAVING count(*) > 1
),
ev AS (
    SELECT r.*, timezone('Europe/Stockholm', occurred_at) AS local_ts
    FROM raw r ANTI JOIN left_out USING (case_id)
),
starts AS (
    SELECT e.case_id, i.pos, i.limit_days, i.same_day,
           arg_min(e.unit_id, (e.occurred_at, e.event_id)) AS unit_id,
           min(e.occurred_at) AS start_at,
           arg_min(e.local_ts, (e.occurred_at, e.event_id)) AS start_local
    FROM ev e JOIN ind i ON e.type = i.start_type
        AND (i.pathway IS NULL OR e.pathway = i.pathway)
        AND (i.kind IS NULL OR e.kind = i.kind)
    GROUP BY ALL
),
clocks AS (
    SELECT s.*, CAST(s.start_local AS DATE) AS start_day,
           CASE
               WHEN NOT s.same_day THEN CAST(s.start_local AS DATE) + s.limit_days
               WHEN hour(s.start_local) < 16 AND c.weekday THEN CAST(s.start_local AS DATE)
               ELSE c.next_weekday
           END AS deadline
    FROM starts s JOIN cal c ON c.day = CAST(s.start_local AS DATE)
),
done AS (
    SELECT k.case_id, k.pos,
           CAST(timezone('Europe/Stockholm', min(e.occurred_at)) AS DATE) AS done_day
    FROM clocks k JOIN ind i ON i.pos = k.pos
    JOIN ev e ON e.case_id = k.case_id AND e.occurred_at >= k.start_at
        AND (list_contains(i.fulfil, e.type) OR e.type = 'care.external')
        AND (e.type <> 'assessment.completed' OR e.profession IN (SELECT unnest(?::VARCHAR[])))
    GROUP BY ALL
)
SELECT k.pos, k.unit_id,
    count(*) FILTER (WHERE d.done_day BETWEEN $month AND $as_of) AS completed_month,
    count(*) FILTER (WHERE d.done_day BETWEEN $month AND $as_of AND d.done_day <= k.deadline)
        AS within_month,
    count(*) FILTER (WHERE d.done_day BETWEEN $year AND $as_of) AS completed_365d,
    count(*) FILTER (WHERE d.done_day BETWEEN $year AND $as_of AND d.done_day <= k.deadline)
        AS within_365d,
    count(*) FILTER (WHERE k.start_day <= $as_of AND (d.done_day IS NULL OR d.done_day > $as_of))
        AS waiting,
    count(*) FILTER (WHERE k.start_day <= $as_of AND (d.done_day IS NULL OR d.done_day > $as_of)
                     AND k.deadline < $as_of) AS waiting_over_limit
FROM clocks k LEFT JOIN done d USING (case_id, pos)
GROUP BY ALL
"""


def _calendar(con: Any, first: date, last: date) -> None:
    """Weekdays for the same-day rule: Mon–Fri not on the `holidays` list for Sweden."""
    import holidays

    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    off = holidays.country_holidays("SE", years=range(first.year, last.year + 1))
    weekday = [d.weekday() < 5 and d not in off for d in days]
    nxt: list[date] = []
    following = None
    for d, wd in zip(reversed(days), reversed(weekday), strict=True):
        nxt.append(following or d)  # the last day's "next" is never asked for
        if wd:
            following = d
    nxt.reverse()
    con.execute("CREATE TEMP TABLE cal(day DATE, weekday BOOLEAN, next_weekday DATE)")
    con.executemany("INSERT INTO cal VALUES (?, ?, ?)", list(zip(days, weekday, nxt,
                                                                 strict=True)))


def _indicators(con: Any) -> None:
    from models.indicators import INDICATORS, DayRule

    con.execute(_INDICATORS_SQL)
    for pos, ind in enumerate(INDICATORS):
        match = dict(ind.start_match)
        con.execute("INSERT INTO ind VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
            pos, ind.id, ind.start_type, match.get("pathway"), match.get("kind"),
            list(ind.fulfil_types), ind.limit_days, ind.day_rule is DayRule.SAME_DAY,
        ])


Cells = dict[tuple[str, int, str], int]  # (figure, indicator position, unit) -> value


def duckdb_cells(log: str, as_of: date) -> tuple[Cells, float, float]:
    """The SQL's figures, and the seconds and CPU seconds (all its threads) the query took
    (reading the file included)."""
    import duckdb

    from models.indicators import LICENSED_PROFESSIONS

    con = duckdb.connect()
    _calendar(con, date(as_of.year - 2, 1, 1), date(as_of.year + 1, 12, 31))
    _indicators(con)
    params = {"month": as_of.replace(day=1), "year": as_of - timedelta(364), "as_of": as_of}
    sql = _REPORT_SQL
    for name, value in params.items():  # dates are literals: DuckDB binds ? and $x apart
        sql = sql.replace(f"${name}", f"DATE '{value.isoformat()}'")
    started = time.perf_counter()
    cpu = time.process_time()
    rows = con.execute(sql, [log, list(EXCLUDED_TYPES), sorted(LICENSED_PROFESSIONS)]).fetchall()
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    cells: Cells = {}
    names = ("completed month", "completed_within month", "completed 365d",
             "completed_within 365d", "waiting", "waiting_over_limit")
    for pos, unit, *values in rows:
        for name, value in zip(names, values, strict=True):
            if value:
                cells[(name, pos, unit)] = int(value)
    return cells, seconds, cpu_s


def engine_cells(log: str, as_of: date) -> tuple[Cells, dict[str, int]]:
    """Our figures over the same log, with the cases the SQL leaves out dropped."""
    from consumers.logs import read_lines
    from models.clocks import Fact, Rules, evaluate, to_fact
    from models.engine import Engine
    from models.events import Rejection, parse_event
    from models.measures import Key, Period, accumulate

    engine = Engine(Rules(), keep_clocks=False)
    left_out: set[str] = set()
    stats: Counter[str] = Counter()
    seen: dict[tuple[str, str], Fact] = {}  # only ids that came twice are looked at
    from pathlib import Path

    for _, raw in read_lines(Path(log)):
        event = parse_event(raw)
        if isinstance(event, Rejection):
            stats["rejected"] += 1
            continue
        case_id, fact = event["case_id"], to_fact(event)
        if event["type"] in EXCLUDED_TYPES:
            left_out.add(case_id)
        if not engine.add(case_id, fact):
            first = seen.get((case_id, fact.event_id))
            if first is None:
                first = next(f for f in engine.cases[case_id].facts
                             if f.event_id == fact.event_id)
                seen[(case_id, fact.event_id)] = first
            if first != fact:
                left_out.add(case_id)
    engine.settle()
    counts: Counter[Key] = Counter()
    for case_id in engine.cases:
        if case_id not in left_out:
            counts.update(evaluate(engine.settled_facts(case_id), engine.rules).keys)
    stats["cases"] = len(engine.cases)
    stats["cases left out"] = len(left_out)
    cells: Cells = {}
    month = Period.of(as_of.replace(day=1), as_of, as_of)
    year = Period.of(as_of - timedelta(364), as_of, as_of)
    for suffix, period in (("month", month), ("365d", year)):
        for (pos, unit), row in accumulate(counts.items(), period).items():
            for name, value in (("completed", row.completed),
                                ("completed_within", row.completed_within)):
                if value:
                    cells[(f"{name} {suffix}", pos, unit)] = value
            if suffix == "month":
                for name, value in (("waiting", row.waiting),
                                    ("waiting_over_limit", row.waiting_over_limit)):
                    if value:
                        cells[(name, pos, unit)] = value
    return cells, dict(stats)


def compare(ours: Cells, theirs: Cells) -> tuple[list[dict[str, Any]], list[str]]:
    """Per figure × indicator: region-wide values side by side and units agreeing; and one
    line per disagreeing cell."""
    from models.indicators import INDICATORS

    summary: list[dict[str, Any]] = []
    disagree: list[str] = []
    keys = sorted(set(ours) | set(theirs), key=lambda k: (k[0], k[1], k[2]))
    groups: dict[tuple[str, int], list[tuple[str, int, str]]] = {}
    for key in keys:
        groups.setdefault((key[0], key[1]), []).append(key)
    for (name, pos), cells in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
        agree = 0
        for key in cells:
            a, b = ours.get(key, 0), theirs.get(key, 0)
            if a == b:
                agree += 1
            else:
                disagree.append(f"{INDICATORS[pos].id} {key[2]} {name}: ours {a}, DuckDB {b}")
        summary.append({
            "indicator": INDICATORS[pos].id, "figure": name, "units": len(cells),
            "units_agreeing": agree,
            "ours": sum(ours.get(k, 0) for k in cells),
            "duckdb": sum(theirs.get(k, 0) for k in cells),
        })
    return summary, disagree


def run(ctx: Context) -> StepResult:
    from rich.console import Console
    from rich.table import Table

    as_of = date(ctx.year, 12, 31)
    theirs, seconds, cpu_s = duckdb_cells(ctx.log, as_of)
    ours, stats = engine_cells(ctx.log, as_of)
    summary, disagree = compare(ours, theirs)
    console = Console(width=max(Console().width, 120))
    table = Table(title=f"report vs DuckDB SQL, as of {as_of} (cases left out on both sides: "
                        f"{stats['cases left out']:,} of {stats['cases']:,})",
                  title_justify="left")
    for col in ("indicator", "figure", "ours (ALL)", "DuckDB (ALL)", "units agreeing", ""):
        table.add_column(col, justify="left" if col in ("indicator", "figure") else "right")
    for s in summary:
        ok = s["units_agreeing"] == s["units"]
        table.add_row(s["indicator"], s["figure"], f"{s['ours']:,}", f"{s['duckdb']:,}",
                      f"{s['units_agreeing']}/{s['units']}",
                      "[green]agree[/]" if ok else "[red]DISAGREE[/]")
    console.print(table)
    for line in disagree[:50]:
        console.print(f"[red]disagree[/] {line}")
    cells = len(set(ours) | set(theirs))
    return StepResult(
        [Figure("DuckDB query (reads the .gz)", seconds, "s"),
         Figure("DuckDB query, CPU time (all threads)", cpu_s, "s"),
         Figure("cells compared", cells, "cells"),
         Figure("cells disagreeing", len(disagree), "cells", "0", not disagree)],
        {"seconds": seconds, "cpu_s": cpu_s, "summary": summary, "disagree": disagree[:1000],
         **stats},
        failed=f"{len(disagree)} of {cells} cells disagree with DuckDB" if disagree else None,
    )
