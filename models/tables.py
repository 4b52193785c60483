"""SQLModel tables of the store (docs/sql.md): events, clocks, per-day counters, dead letters.

`events` holds the facts of every case: the clock state is a function of them, so a replay
can resume, a second log can follow the first, and re-running a log changes nothing
(its ids are already there). `daily_counts` holds absolute counter values, written by
upsert, so writes are idempotent, and for every measure but the spans the running sum of its
series up to that day, so a snapshot or a window is one or two index seeks per series
(docs/sql.md). `count_groups` lists the indicator × unit pairs that have counters.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, SmallInteger
from sqlmodel import Field, SQLModel

from models.measures import BREACH, CANCELLED, EXCLUDED, MEASURE_NAMES, OVER, PAUSED

# `until_day` of counters that are not spans, and of spans still running
OPEN_END = date(9999, 12, 31)

# Spans ([day, until) of a clock in a state) are read over the days of the period; every
# other measure is one row per day and keeps a running sum.
SPAN_MEASURES: tuple[str, ...] = tuple(MEASURE_NAMES[m] for m in (PAUSED, EXCLUDED, CANCELLED))
SUMMED_MEASURES: tuple[str, ...] = tuple(m for m in MEASURE_NAMES if m not in SPAN_MEASURES)
# Dated when they take effect (the day after a deadline), which for a clock still open is
# after the newest event: they do not move a group's last day (the view's calendar).
AHEAD_MEASURES: tuple[str, ...] = (MEASURE_NAMES[OVER], MEASURE_NAMES[BREACH])


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    # the cases with recent events: what a restart loads besides those with open clocks
    __table_args__ = (Index("ix_events_ts", "ts_us"),)

    case_id: str = Field(primary_key=True, max_length=128)
    event_id: str = Field(primary_key=True, max_length=128)
    ts_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    rank: int = Field(sa_column=Column(SmallInteger, nullable=False))
    unit_id: str = Field(max_length=64)
    ind: int = Field(sa_column=Column(SmallInteger, nullable=False))
    flag: int = Field(sa_column=Column(SmallInteger, nullable=False))
    text: str | None = Field(default=None, max_length=128)


class ClockRow(SQLModel, table=True):
    __tablename__ = "clocks"
    __table_args__ = (Index("ix_clocks_state_deadline", "state", "deadline"),)

    case_id: str = Field(primary_key=True, max_length=128)
    indicator: str = Field(primary_key=True, max_length=32)
    unit_id: str = Field(max_length=64, index=True)
    state: str = Field(max_length=16)
    started_at: datetime
    deadline: date
    fulfilled_at: datetime | None = None
    within: bool | None = None
    external: bool = False
    patient_ref: str | None = Field(default=None, max_length=128)


class DailyCount(SQLModel, table=True):
    __tablename__ = "daily_counts"

    indicator: str = Field(primary_key=True, max_length=32)  # '' for events fitting no clock
    unit_id: str = Field(primary_key=True, max_length=64)
    measure: str = Field(primary_key=True, max_length=16)
    day: date = Field(primary_key=True)
    until_day: date = Field(primary_key=True, default=OPEN_END)
    count: int
    # Σ count of the series (indicator, unit, measure) over days <= day; NULL for spans
    running: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class CountGroup(SQLModel, table=True):
    """Every indicator × unit with counters, and the days they span: the groups a window
    read seeks into, and the calendar of the `window_counts` view."""

    __tablename__ = "count_groups"

    indicator: str = Field(primary_key=True, max_length=32)
    unit_id: str = Field(primary_key=True, max_length=64)
    first_day: date
    last_day: date


class DeadLetterRow(SQLModel, table=True):
    __tablename__ = "dead_letters"

    source: str = Field(primary_key=True, max_length=512)  # file:line, topic/partition/offset
    reason: str = Field(max_length=32, index=True)
    message: str
    raw: str


class NoticeRow(SQLModel, table=True):
    """Breach and at-risk notices of the streaming mode (models.notices), once each."""

    __tablename__ = "notices"

    notice_id: str = Field(primary_key=True, max_length=300)
    kind: str = Field(max_length=16, index=True)
    case_id: str = Field(max_length=128)
    indicator: str = Field(max_length=32)
    unit_id: str = Field(max_length=64, index=True)
    started_at: str = Field(max_length=40)
    deadline: date
    days_left: int
    as_of: date
    patient_ref: str | None = Field(default=None, max_length=128)
