"""Local dates in Europe/Stockholm and the weekday calendar behind the same-day rule.

Days are counted on local calendar dates, never as hours / 24 (DST days have 23 or 25
hours). Dates travel through the core as proleptic ordinals (`date.toordinal()`), which
are plain ints: cheap to compare, subtract and use as dict keys.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

TZ = ZoneInfo("Europe/Stockholm")
SAME_DAY_CUTOFF_HOUR = 16  # contacts at or after 16:00:00 local are due the next weekday

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_HOUR = 3_600_000_000


def to_micros(ts: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (exact, sortable)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@lru_cache(maxsize=1 << 16)
def _local_hour(epoch_hour: int) -> tuple[int, int]:
    # Stockholm's offset only ever changes on a whole UTC hour, so the local date and hour
    # are a function of the epoch hour: cache per hour instead of converting every event.
    local = (_EPOCH + timedelta(hours=epoch_hour)).astimezone(TZ)
    return local.date().toordinal(), local.hour


def local_day(us: int) -> int:
    """Local (Europe/Stockholm) date of an instant, as a date ordinal."""
    return _local_hour(us // _US_PER_HOUR)[0]


def local_day_and_hour(us: int) -> tuple[int, int]:
    return _local_hour(us // _US_PER_HOUR)


def end_of_day_micros(day: int) -> int:
    """The last microsecond of a local date: the snapshot instant for `day`."""
    nxt = datetime.combine(date.fromordinal(day + 1), datetime.min.time(), tzinfo=TZ)
    return to_micros(nxt) - 1


class WorkCalendar:
    """Which local dates are weekdays for the same-day rule.

    Default: Monday–Friday that are not Swedish public holidays (the `holidays` package's
    official list). `holidays_are_weekdays=True` counts public holidays as weekdays.
    """

    def __init__(self, country: str = "SE", holidays_are_weekdays: bool = False) -> None:
        self._holidays = holidays.country_holidays(country) if not holidays_are_weekdays else {}
        self._cache: dict[int, bool] = {}

    def is_weekday(self, day: int) -> bool:
        hit = self._cache.get(day)
        if hit is None:
            d = date.fromordinal(day)
            # the Swedish calendar lists every Sunday as a holiday ("Söndag"): check the
            # weekday first so only real public holidays are looked up
            hit = d.weekday() < 5 and d not in self._holidays
            self._cache[day] = hit
        return hit

    def next_weekday(self, day: int) -> int:
        day += 1
        while not self.is_weekday(day):
            day += 1
        return day

    def same_day_deadline(self, start_us: int) -> int:
        """Due date of a contact: that day if a weekday before 16:00 local, else next weekday."""
        day, hour = local_day_and_hour(start_us)
        if hour < SAME_DAY_CUTOFF_HOUR and self.is_weekday(day):
            return day
        return self.next_weekday(day)
