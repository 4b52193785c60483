"""Local dates in Europe/Stockholm and the weekday calendar behind the same-day rule.

Days are counted on local calendar dates, never as hours / 24 (DST days have 23 or 25
hours). Dates travel through the core as proleptic ordinals (`date.toordinal()`), which
are plain ints: cheap to compare, subtract and use as dict keys.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import holidays
from pydantic_core import TzInfo

TZ = ZoneInfo("Europe/Stockholm")
SAME_DAY_CUTOFF_HOUR = 16  # contacts at or after 16:00:00 local are due the next weekday

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_HOUR = 3_600_000_000


# Fixed-offset zones (what RFC 3339 timestamps parse to) -> their offset in µs. Asking a
# zone for its offset is a call into it per event; for these it is the same every time.
_FIXED_ZONES = (TzInfo, timezone)
_OFFSETS: dict[tzinfo, int] = {}
_EPOCH_ORDINAL = _EPOCH.toordinal()


def to_micros(ts: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (exact, sortable)."""
    tz = ts.tzinfo
    if tz is not None and type(tz) in _FIXED_ZONES:
        offset = _OFFSETS.get(tz)
        if offset is None:
            if len(_OFFSETS) >= 4096:
                _OFFSETS.clear()
            utc_offset = ts.utcoffset()
            assert utc_offset is not None  # the zone is fixed: it has one
            offset = _OFFSETS[tz] = utc_offset // timedelta(microseconds=1)
        seconds = (ts.toordinal() - _EPOCH_ORDINAL) * 86_400 + ts.hour * 3_600 + ts.minute * 60
        return (seconds + ts.second) * 1_000_000 + ts.microsecond - offset
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


# Stockholm's offset only ever changes on a whole UTC hour, so the local date and hour are
# a function of the epoch hour: cached per hour instead of converting every instant. Plain
# dicts rather than lru_cache: a hit is one dict lookup, and the rules ask for every event.
_LOCAL: dict[int, tuple[int, int]] = {}  # epoch hour -> (local date ordinal, local hour)
_DAYS: dict[int, int] = {}  # epoch hour -> local date ordinal
# These caches are keyed by event time, so they fill as event time passes: in a long-running
# worker (or a soak that crosses a year of event time a minute) they would grow for as long
# as it runs. Events come near their time order (within the allowed lateness), so the hours
# and dates around "now" are all a cache needs; past its bound it starts over (a miss costs
# one zone conversion).
_CACHE_HOURS = 1 << 12  # ~170 days of hours
_CACHE_DAYS = 1 << 10  # ~2.8 years of dates


def _local_hour(epoch_hour: int) -> tuple[int, int]:
    hit = _LOCAL.get(epoch_hour)
    if hit is None:
        if len(_LOCAL) >= _CACHE_HOURS:
            _LOCAL.clear()
            _DAYS.clear()
        local = (_EPOCH + timedelta(hours=epoch_hour)).astimezone(TZ)
        hit = _LOCAL[epoch_hour] = (local.date().toordinal(), local.hour)
        _DAYS[epoch_hour] = hit[0]
    return hit


def local_day(us: int) -> int:
    """Local (Europe/Stockholm) date of an instant, as a date ordinal."""
    day = _DAYS.get(us // _US_PER_HOUR)
    return day if day is not None else _local_hour(us // _US_PER_HOUR)[0]


def local_day_and_hour(us: int) -> tuple[int, int]:
    return _local_hour(us // _US_PER_HOUR)


# One int object per date, shared: the clock views kept per case hold a deadline each.
_INTERNED: dict[int, int] = {}


def intern_day(day: int) -> int:
    """The shared int object for a date ordinal (memory: one object per date, not per use)."""
    if len(_INTERNED) >= _CACHE_DAYS:
        _INTERNED.clear()  # dates interned later are shared among themselves
    return _INTERNED.setdefault(day, day)


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
        self._due: dict[int, int] = {}  # epoch hour -> same-day deadline

    def is_weekday(self, day: int) -> bool:
        hit = self._cache.get(day)
        if hit is None:
            d = date.fromordinal(day)
            # the Swedish calendar lists every Sunday as a holiday ("Söndag"): check the
            # weekday first so only real public holidays are looked up
            hit = d.weekday() < 5 and d not in self._holidays
            if len(self._cache) >= _CACHE_DAYS:
                self._cache.clear()
            self._cache[day] = hit
        return hit

    def next_weekday(self, day: int) -> int:
        day += 1
        while not self.is_weekday(day):
            day += 1
        return day

    def same_day_deadline(self, start_us: int) -> int:
        """Due date of a contact: that day if a weekday before 16:00 local, else next weekday."""
        epoch_hour = start_us // _US_PER_HOUR  # the answer is the same for the whole hour
        due = self._due.get(epoch_hour)
        if due is None:
            day, hour = _local_hour(epoch_hour)
            if hour < SAME_DAY_CUTOFF_HOUR and self.is_weekday(day):
                due = day
            else:
                due = self.next_weekday(day)
            if len(self._due) >= _CACHE_HOURS:
                self._due.clear()
            self._due[epoch_hour] = due
        return due
