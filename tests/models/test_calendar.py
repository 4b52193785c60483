"""The calendar's caches are keyed by event time: they stay bounded however much event time
passes, and what they answer does not depend on whether they started over."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from models import calendar
from models.calendar import (
    TZ,
    WorkCalendar,
    intern_day,
    local_day,
    local_day_and_hour,
    to_micros,
)

HOUR_US = 3_600_000_000


def test_caches_stay_bounded_over_years_of_event_time() -> None:
    start = to_micros(datetime(2020, 1, 1, tzinfo=TZ))
    work = WorkCalendar()
    hours = 3 * calendar._CACHE_HOURS  # ~1.4 years, one lookup an hour
    for h in range(hours):
        us = start + h * HOUR_US
        local_day(us)
        work.same_day_deadline(us)
        intern_day(local_day(us))
    for d in range(3 * calendar._CACHE_DAYS):
        work.is_weekday(date(2020, 1, 1).toordinal() + d)
        intern_day(d)
    assert len(calendar._LOCAL) <= calendar._CACHE_HOURS
    assert len(calendar._DAYS) <= calendar._CACHE_HOURS
    assert len(work._due) <= calendar._CACHE_HOURS
    assert len(work._cache) <= calendar._CACHE_DAYS
    assert len(calendar._INTERNED) <= calendar._CACHE_DAYS


def test_answers_are_the_same_after_the_caches_start_over() -> None:
    # the hours around both DST changes of 2024 (UTC arithmetic: every instant is real)
    instants = [datetime(2024, 3, 30, 22, 30, tzinfo=UTC) + timedelta(hours=h) for h in range(6)]
    instants += [datetime(2024, 10, 26, 21, 30, tzinfo=UTC) + timedelta(hours=h)
                 for h in range(6)]
    first = [local_day_and_hour(to_micros(t)) for t in instants]
    far = to_micros(datetime(2031, 1, 1, tzinfo=TZ))
    for h in range(calendar._CACHE_HOURS + 1):  # fills the caches, so they start over
        local_day(far + h * HOUR_US)
    again = [local_day_and_hour(to_micros(t)) for t in instants]
    expected = [(t.astimezone(TZ).date().toordinal(), t.astimezone(TZ).hour) for t in instants]
    assert first == again == expected
