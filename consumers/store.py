"""The SQL store (SQLite by default, PostgreSQL by URL): schema at start, idempotent writes.

Each batch goes in one transaction: the new facts, the clocks of the cases they touched,
the absolute values of the counters they moved, and the dead letters. An interrupted
replay therefore leaves a consistent store, and running it again completes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    event,
    func,
    inspect,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel, create_engine

from consumers import sqlviews
from consumers.deadletter import DeadLetter
from consumers.rows import TableRow, clock_rows, event_rows
from consumers.running import Tails, with_running
from models.calendar import end_of_day_micros, from_micros
from models.clocks import AT_REST, ClockView, Fact
from models.indicators import INDICATORS, ORDER
from models.measures import MEASURE_CODES, MEASURE_NAMES, Key, Period, Row
from models.settings import SQLITE_CACHE_MB
from models.tables import (
    AHEAD_MEASURES,
    OPEN_END,
    SPAN_MEASURES,
    ClockRow,
    CountGroup,
    DailyCount,
    DeadLetterRow,
    EventRow,
    NoticeRow,
)

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
CLOCKS = ClockRow.__table__  # type: ignore[attr-defined]
# what reads seek by (time; state and deadline; unit): left out during a bulk load
SECONDARY_INDEXES = (*EVENTS.indexes, *CLOCKS.indexes)
COUNTS = DailyCount.__table__  # type: ignore[attr-defined]
GROUPS = CountGroup.__table__  # type: ignore[attr-defined]
DEAD = DeadLetterRow.__table__  # type: ignore[attr-defined]
NOTICES = NoticeRow.__table__  # type: ignore[attr-defined]
COUNT_KEY = ("indicator", "unit_id", "measure", "day", "until_day")
COPY_FROM = 1_000  # rows from which PostgreSQL gets them by COPY
sqlviews.register(SQLModel.metadata)


class StoreError(Exception):
    """The store cannot be reached or written: one line, for the user."""


def _counter_row(key: Key, count: int) -> dict[str, Any]:
    measure, ind, unit, day, until = key
    return {
        "indicator": INDICATORS[ind].id if ind >= 0 else "",
        "unit_id": unit,
        "measure": MEASURE_NAMES[measure],
        "day": date.fromordinal(day),
        "until_day": date.fromordinal(until) if until else OPEN_END,
        "count": count,
        "running": None,  # set by consumers.running for the summed measures
    }


def _counter_key(r: Any) -> Key:
    """The key of a daily_counts row (indicator, unit_id, measure, day, until_day, …)."""
    return (MEASURE_CODES[r[2]], ORDER[r[0]] if r[0] else -1, r[1], r[3].toordinal(),
            0 if r[4] == OPEN_END else r[4].toordinal())


def _group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """count_groups rows of a batch's counters: each indicator × unit and the days of
    the events behind them."""
    days: dict[tuple[str, str], tuple[date, date]] = {}
    for r in rows:
        if r["indicator"] and r["measure"] not in AHEAD_MEASURES:
            key = (r["indicator"], r["unit_id"])
            lo, hi = days.get(key, (r["day"], r["day"]))
            days[key] = (min(lo, r["day"]), max(hi, r["day"]))
    return [{"indicator": i, "unit_id": u, "first_day": lo, "last_day": hi}
            for (i, u), (lo, hi) in days.items()]


class Store:
    def __init__(self, url: str, sqlite_cache_mb: int = SQLITE_CACHE_MB) -> None:
        """`sqlite_cache_mb`: the page cache of each SQLite connection (it fills as the file
        grows, so it is what a long-running process holds; ignored for PostgreSQL)."""
        self.url = url
        self._tails: Tails | None = None  # during a bulk load (`loading`)
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True, **_connect_args(url))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"database URL '{_safe(url)}': {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", partial(_sqlite_pragmas, sqlite_cache_mb))
        elif self.engine.dialect.name != "postgresql":
            raise StoreError(f"database URL '{_safe(url)}': only SQLite and PostgreSQL")
        try:
            self._create_or_migrate()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the store at '{_safe(url)}': {_first_line(exc)}"
            ) from None

    def _create_or_migrate(self) -> None:
        """The schema; a store written before running sums gets them computed once."""
        schema = inspect(self.engine)
        migrate = schema.has_table("daily_counts") and "running" not in {
            c["name"] for c in schema.get_columns("daily_counts")}
        if migrate:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE daily_counts ADD COLUMN running BIGINT"))
        SQLModel.metadata.create_all(self.engine)
        # added to a table that was already there, or left out by a load that stopped
        # halfway (`loading`)
        for index in SECONDARY_INDEXES:
            index.create(self.engine, checkfirst=True)
        if migrate:
            with self.engine.begin() as conn:
                conn.execute(GROUPS.insert().from_select(
                    ["indicator", "unit_id", "first_day", "last_day"],
                    select(COUNTS.c.indicator, COUNTS.c.unit_id, func.min(COUNTS.c.day),
                           func.max(COUNTS.c.day))
                    .where(COUNTS.c.indicator != "",
                           COUNTS.c.measure.not_in(AHEAD_MEASURES))
                    .group_by(COUNTS.c.indicator, COUNTS.c.unit_id)))
                conn.execute(text(sqlviews.SUM_ALL))

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _many(self, conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
        """`conn.execute(stmt, rows)`, for SQLite through the driver's executemany.

        SQLAlchemy's bookkeeping per row was most of a replay's write time on SQLite; the
        values still go through the column types' own bind processors, so what is stored
        is the same. (PostgreSQL keeps SQLAlchemy's batched multi-row VALUES; the bulk
        rows, events and clocks, go by `_copy`.)
        """
        if self.engine.dialect.name != "sqlite":
            conn.execute(stmt, rows)
            return
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
        names = compiled.positiontup or []
        procs = [compiled.binds[n].type.bind_processor(conn.dialect) for n in names]
        plain = [n for n, p in zip(names, procs, strict=True) if p is None]
        if len(plain) == len(names):
            params = [tuple([r[n] for n in names]) for r in rows]
        else:
            todo = list(zip(names, procs, strict=True))
            params = [tuple([r[n] if p is None else p(r[n]) for n, p in todo]) for r in rows]
        conn.exec_driver_sql(compiled.string, params)

    def _bulk(self, conn: Connection, table: Any, rows: list[dict[str, Any]],
              update: bool) -> None:
        """Insert `rows`, on a key already there doing nothing, or with `update` setting
        the other columns: by `_many`, or, PostgreSQL's large batches (a replay's), by
        `_copy` (its three statements cost more than they save on a sink's few rows)."""
        stmt = self._insert(table)
        if self.engine.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
            _copy(conn, table, rows, update)
        elif update:
            keys = {c.name for c in table.primary_key}
            self._many(conn, stmt.on_conflict_do_update(
                index_elements=sorted(keys, key=list(table.c.keys()).index),
                set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}), rows)
        else:
            self._many(conn, stmt.on_conflict_do_nothing(), rows)

    @contextmanager
    def loading(self) -> Iterator[None]:
        """A bulk load (a replay): into a store without events, the secondary indexes of
        events and clocks (what reads seek by: time, state and deadline, unit) are left
        out during the load and built once after it, instead of being kept up to date row
        by row; the load's own writes and reads go by primary keys only. A load that stops
        halfway leaves them out until the next load ends or the store is next opened
        (`Store(url)`), which build what is missing. The load is the store's one writer:
        the running sums it wrote are kept rather than read back (`running.Tails`)."""
        try:
            if self.newest_event_us() is None:
                for index in SECONDARY_INDEXES:
                    index.drop(self.engine, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"preparing the store failed: {_first_line(exc)}") from None
        self._tails = Tails()
        try:
            yield
        finally:
            self._tails = None
        try:
            for index in SECONDARY_INDEXES:
                index.create(self.engine, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"indexing the store failed: {_first_line(exc)}") from None

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    # ------------------------------------------------------------ writes

    def write_batch(
        self,
        facts: Iterable[tuple[str, Fact]],
        clocks: Iterable[tuple[str, ClockView]],
        counts: Mapping[Key, int],
        dead: Iterable[DeadLetter],
    ) -> None:
        """One transaction: the new facts, the clocks of the cases they touched, the new
        values of the counters they moved, the dead letters."""
        self.write_rows(event_rows(facts), clock_rows(clocks), counts, dead)

    def write_rows(self, events: list[TableRow], clocks: list[TableRow],
                   counts: Mapping[Key, int], dead: Iterable[DeadLetter]) -> None:
        """`write_batch` with the events and clocks rows built already (consumers/rows.py)."""
        live = [_counter_row(k, n) for k, n in counts.items() if n]
        gone = [_counter_row(k, 0) for k, n in counts.items() if not n]
        dead_rows = [
            {"source": d.source, "reason": d.reason, "message": d.message, "raw": d.raw}
            for d in dead
        ]
        try:
            with self.engine.begin() as conn:
                if events:
                    self._bulk(conn, EVENTS, events, update=False)
                if clocks:
                    self._bulk(conn, CLOCKS, clocks, update=True)
                if live or gone:
                    self._write_counts(conn, live, gone)
                if dead_rows:
                    conn.execute(self._insert(DEAD).on_conflict_do_nothing(), dead_rows)
        except BaseException as exc:
            if self._tails is not None:  # what the batch computed was not stored
                self._tails.clear()
            if isinstance(exc, SQLAlchemyError):
                raise StoreError(f"writing to the store failed: {_first_line(exc)}") from None
            raise
        if self._tails is not None:
            self._tails.commit()

    def _write_counts(self, conn: Connection, live: list[dict[str, Any]],
                      gone: list[dict[str, Any]]) -> None:
        """Upsert the moved counters with the running sums of their series
        (consumers/running.py); counters back at zero go, as if they had never moved."""
        rows = with_running(conn, COUNTS, live, gone, self._tails)
        if rows:
            stmt = self._insert(COUNTS)
            self._many(conn, stmt.on_conflict_do_update(
                index_elements=list(COUNT_KEY),
                set_={"count": stmt.excluded["count"], "running": stmt.excluded["running"]},
            ), rows)
        groups = _group_rows(live)
        if groups:
            stmt = self._insert(GROUPS)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["indicator", "unit_id"],
                set_={
                    "first_day": case((stmt.excluded.first_day < GROUPS.c.first_day,
                                       stmt.excluded.first_day), else_=GROUPS.c.first_day),
                    "last_day": case((stmt.excluded.last_day > GROUPS.c.last_day,
                                      stmt.excluded.last_day), else_=GROUPS.c.last_day),
                },
            ), groups)
        if gone:
            conn.execute(delete(COUNTS).where(and_(
                *(COUNTS.c[k] == bindparam(f"k_{k}") for k in COUNT_KEY))),
                [{f"k_{k}": r[k] for k in COUNT_KEY} for r in gone])

    def write_notices(self, notices: Iterable[Mapping[str, Any]]) -> None:
        """Breach and at-risk notices (streaming mode), each kept once by its id."""
        rows = list(notices)
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(self._insert(NOTICES).on_conflict_do_nothing(), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"writing notices failed: {_first_line(exc)}") from None

    # ------------------------------------------------------------ reads

    def facts(self) -> Iterator[tuple[str, Fact]]:
        """Every stored fact, for rebuilding the clock state."""
        cols = EVENTS.c
        query = select(cols.case_id, cols.ts_us, cols.rank, cols.event_id, cols.unit_id,
                       cols.ind, cols.flag, cols.text)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=50_000).execute(query):
                yield row[0], Fact(*row[1:])

    def changing_facts(self, since_us: int) -> Iterator[tuple[str, Fact]]:
        """The facts of the cases that may still change (docs/live-view.md): a clock not at
        rest (open or paused), or an event at or after `since_us` (within the grace
        period). Index seeks: the cost follows the open cases, not the stored history."""
        cols = EVENTS.c
        ids = select(CLOCKS.c.case_id).where(CLOCKS.c.state.not_in(sorted(AT_REST))).union(
            select(cols.case_id).where(cols.ts_us >= since_us)).subquery()
        query = select(cols.case_id, cols.ts_us, cols.rank, cols.event_id, cols.unit_id,
                       cols.ind, cols.flag, cols.text).where(cols.case_id.in_(select(ids)))
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=50_000).execute(query):
                yield row[0], Fact(*row[1:])

    def worklist_cases(self, day: int, indicator: str | None = None
                       ) -> dict[str, list[Fact]]:
        """The facts of the cases that may have had an open clock at the end of `day`: one
        started by then and not fulfilled before (a cancelled clock has no end time kept)."""
        end = from_micros(end_of_day_micros(day))  # as the clock rows are written
        c = CLOCKS.c
        query = select(c.case_id).distinct().where(
            c.started_at <= end,
            or_(c.fulfilled_at.is_(None), c.fulfilled_at > end))
        if indicator is not None:
            query = query.where(c.indicator == indicator)
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(query)]
        return self.facts_of(ids)

    def counters_of(self, keys: Iterable[Key]) -> dict[Key, int]:
        """The stored values of some counters (absent: 0)."""
        wanted = list(keys)
        out = dict.fromkeys(wanted, 0)
        cols = [COUNTS.c[k] for k in COUNT_KEY]
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                rows = [tuple(_counter_row(k, 0)[c] for c in COUNT_KEY)
                        for k in wanted[i:i + 500]]
                for r in conn.execute(select(*cols, COUNTS.c.count)
                                      .where(tuple_(*cols).in_(rows))):
                    out[_counter_key(r)] = int(r[5])
        return out

    def live_counters(self, through: int) -> Iterator[tuple[Key, int]]:
        """Every counter as the live view needs it: the days after `through` one by one,
        the earlier ones summed per series on `through` (a span that ended by then nets to
        zero and is left out), as the worker's checkpoints (models/countergroup.py)."""
        c = COUNTS.c
        day = date.fromordinal(through)
        recent = select(c.indicator, c.unit_id, c.measure, c.day, c.until_day, c.count
                        ).where(c.day > day)
        old = (select(c.indicator, c.unit_id, c.measure, literal(day, Date), c.until_day,
                      func.sum(c.count))
               .where(c.day <= day, or_(c.measure.not_in(SPAN_MEASURES), c.until_day > day))
               .group_by(c.indicator, c.unit_id, c.measure, c.until_day))
        with self.engine.connect() as conn:
            for r in conn.execute(recent.union_all(old)):
                if r[5]:
                    yield _counter_key(r), int(r[5])

    def newest_event_us(self) -> int | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(EVENTS.c.ts_us))).scalar()
        return int(value) if value is not None else None

    def per_unit(self, period: Period, indicator: str | None = None) -> dict[tuple[int, str], Row]:
        """The rows of models.measures.accumulate that have a clock, by index seeks
        (consumers/sqlviews.py): the cost does not grow with the stored history."""
        query = text(sqlviews.unit_rows(indicator is not None)).bindparams(
            *(bindparam(k, type_=Date) for k in ("first", "last", "snap")))
        params: dict[str, Any] = {
            k: date.fromordinal(d)
            for k, d in (("first", period.first), ("last", period.last), ("snap", period.as_of))
        }
        if indicator is not None:
            params["indicator"] = indicator
        out: dict[tuple[int, str], Row] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query, params).mappings():
                if r["clocks"] <= 0:
                    continue
                out[(ORDER[r["indicator"]], r["unit_id"])] = Row(
                    r["indicator"], r["unit_id"], clocks=int(r["clocks"]),
                    **{c: int(r[c]) for c in sqlviews.COUNT_COLUMNS},
                )
        return out

    def facts_of(self, case_ids: Iterable[str]) -> dict[str, list[Fact]]:
        """The stored facts of some cases (those that left the engine's memory)."""
        cols = EVENTS.c
        ids = list(case_ids)
        out: dict[str, list[Fact]] = {}
        try:
            with self.engine.connect() as conn:
                for i in range(0, len(ids), 500):
                    query = select(cols.case_id, cols.ts_us, cols.rank, cols.event_id,
                                   cols.unit_id, cols.ind, cols.flag, cols.text
                                   ).where(cols.case_id.in_(ids[i:i + 500]))
                    for row in conn.execute(query):
                        out.setdefault(row[0], []).append(Fact(*row[1:]))
        except SQLAlchemyError as exc:
            raise StoreError(f"reading cases from the store failed: {_first_line(exc)}"
                             ) from None
        return out

    def dead_letter_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DEAD.c.reason, func.count()).group_by(DEAD.c.reason))
            return {reason: int(n) for reason, n in rows}


def _copy(conn: Connection, table: Any, rows: list[dict[str, Any]], update: bool) -> None:
    """PostgreSQL's bulk path: the rows by `COPY` into a temporary table of the
    transaction, then one `INSERT … SELECT … ON CONFLICT` into the table (`COPY` itself
    cannot skip or update a key that is there). Its timestamps are `timestamptz`, so the
    stored values are converted as a plain INSERT of the same rows converts them."""
    names = list(rows[0])
    keys = [c.name for c in table.primary_key]
    quoted = ", ".join(f'"{n}"' for n in names)
    temp = f"bulk_{table.name}"
    dialect = conn.dialect
    columns = ", ".join(
        f'"{n}" ' + ("TIMESTAMPTZ" if isinstance(table.c[n].type, DateTime)
                     else table.c[n].type.compile(dialect=dialect))
        for n in names)
    if update:
        conflict = (f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                    + ", ".join(f'"{n}" = EXCLUDED."{n}"' for n in names if n not in keys))
    else:
        conflict = "ON CONFLICT DO NOTHING"
    driver = conn.connection.driver_connection
    assert driver is not None  # an open connection in a transaction
    with driver.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} ({columns}) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY {temp} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[n] for n in names])
        # emptied at commit (one bulk write per table and transaction: write_batch)
        cur.execute(f"INSERT INTO {table.name} ({quoted}) SELECT {quoted} FROM {temp} "
                    f"{conflict}")


def _connect_args(url: str) -> dict[str, Any]:
    """PostgreSQL without JIT: it spent seconds compiling the window reads' many small
    subqueries (each an index seek, nothing for JIT to speed up)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return {}
    given = parsed.query.get("options", "")  # the URL's own, e.g. a search_path
    given = " ".join(given) if isinstance(given, tuple) else given
    return {"connect_args": {"options": f"{given} -c jit=off".strip()}}


def _sqlite_pragmas(cache_mb: int, dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")  # negative: KiB
    cur.close()


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"

