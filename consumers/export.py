"""The stored daily figures as OpenMetrics with timestamps, for `promtool tsdb
create-blocks-from openmetrics` (see docs/alerts.md, "Historik in i Prometheus").

One sample per series and local day, stamped at the end of that day (Europe/Stockholm),
with the names and labels of /metrics, so the recording rules, alerts and dashboards read a
replayed year exactly as they read the live worker. The figures are what the live view
(models.live) shows at each day's end (a test holds the two together), computed in one
pass: per indicator × unit, running sums over the days (snapshots) and differences of
running sums (rolling windows), never a scan per sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate
from typing import TextIO

from sqlalchemy import select

from consumers.store import COUNTS, Store
from models.calendar import end_of_day_micros
from models.indicators import INDICATORS, ORDER
from models.measures import (
    BREACH,
    COMPLETED,
    EXCLUDED,
    MEASURE_CODES,
    OVER,
    OVER_END,
    PAUSED,
    WAITING,
    WAITING_END,
    WINDOWS,
    WITHIN,
    window_first,
)
from models.tables import OPEN_END

PREFIX = "vardgaranti_"
# The longest rolling window reaches this many days before its last day.
_REACH = max(int(w[:-1]) for w in WINDOWS if w.endswith("d"))
_MEASURES = (WAITING, WAITING_END, OVER, OVER_END, COMPLETED, WITHIN, BREACH, PAUSED, EXCLUDED)

# name, OpenMetrics type, help; the /metrics catalogue of web/metrics.py
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("completed_within", "gauge", "Clocks fulfilled within the limit, in the window"),
    ("completed_over", "gauge", "Clocks fulfilled after the deadline, in the window"),
    ("waiting", "gauge", "Clocks open now"),
    ("waiting_over_limit", "gauge", "Clocks open now and past their deadline"),
    ("paused", "gauge", "Clocks paused now (medical reasons)"),
    ("excluded", "gauge", "Clocks excluded now (patient's choice)"),
    ("breaches", "counter", "Clocks that passed their deadline still open"),
    ("target_ratio", "gauge", "The region's target share within the limit"),
)


@dataclass
class _Deltas:
    """Per-day changes of one indicator × unit over days [lo, lo + n)."""

    first_day: int  # the first day the unit has any counter (its series start there)
    by_measure: dict[int, list[int]] = field(default_factory=dict)

    def at(self, measure: int, n: int) -> list[int]:
        got = self.by_measure.get(measure)
        if got is None:
            got = self.by_measure[measure] = [0] * n
        return got


@dataclass(frozen=True)
class Series:
    """The daily values of one indicator × unit: index 0 is `first`."""

    indicator: str
    unit: str
    first: int  # date ordinal of the first sample
    within: dict[str, list[int]]
    over: dict[str, list[int]]
    waiting: list[int]
    waiting_over_limit: list[int]
    paused: list[int]
    excluded: list[int]
    breaches: list[int]


Counter = tuple[str, str, str, date, date, int]  # indicator, unit, measure, day, until, n


def daily_series(counters: Iterable[Counter], first: date, last: date) -> list[Series]:
    """Every indicator × unit's figures at the end of each day of [first, last].

    Counters before the reach of the longest window fold into the first slot (snapshots
    are running sums from the beginning); a unit's series starts on its first counter day.
    """
    if first > last:
        raise ValueError(f"from {first} is after to {last}")
    lo, hi = first.toordinal() - _REACH, last.toordinal()
    n = hi - lo + 1
    groups: dict[tuple[str, str], _Deltas] = {}
    for ind, unit, name, day_, until_, count in counters:
        code = MEASURE_CODES.get(name)
        day = day_.toordinal()
        if code not in _MEASURES or day > hi or not count:
            continue
        g = groups.get((ind, unit))
        if g is None:
            g = groups[(ind, unit)] = _Deltas(day)
        g.first_day = min(g.first_day, day)
        i = max(day - lo, 0)
        if code in (PAUSED, EXCLUDED):  # a span [day, until): +n, then -n when it ends
            g.at(code, n)[i] += count
            if until_ != OPEN_END and until_.toordinal() <= hi:
                g.at(code, n)[max(until_.toordinal() - lo, 0)] -= count
        elif code in (COMPLETED, WITHIN) and day < lo:
            continue  # beyond every window
        else:
            g.at(code, n)[i] += count
    out = []
    start = first.toordinal()
    for (ind, unit), g in sorted(groups.items(), key=lambda kv: (ORDER[kv[0][0]], kv[0][1])):
        s = max(start, g.first_day)
        if s > hi:
            continue
        sums = {m: list(accumulate(g.at(m, n))) for m in _MEASURES}
        days = range(s - lo, n)

        within: dict[str, list[int]] = {}
        over: dict[str, list[int]] = {}
        for w in WINDOWS:
            within[w], over[w] = [], []
            for i in days:
                # the slot before the window's first day (>= 0: lo is _REACH days back)
                f = window_first(w, date.fromordinal(lo + i)).toordinal() - lo - 1
                done = sums[COMPLETED][i] - sums[COMPLETED][f]
                ok = sums[WITHIN][i] - sums[WITHIN][f]
                within[w].append(ok)
                over[w].append(done - ok)
        out.append(Series(
            ind, unit, s, within, over,
            waiting=[sums[WAITING][i] - sums[WAITING_END][i] for i in days],
            waiting_over_limit=[sums[OVER][i] - sums[OVER_END][i] for i in days],
            paused=[sums[PAUSED][i] for i in days],
            excluded=[sums[EXCLUDED][i] for i in days],
            breaches=[sums[BREACH][i] for i in days],
        ))
    return out


def read_counters(store: Store, last: date) -> Iterator[Counter]:
    """The counters an export up to `last` needs: one indexed scan of daily_counts."""
    c = COUNTS.c
    names = [n for n, code in MEASURE_CODES.items() if code in _MEASURES]
    query = select(c.indicator, c.unit_id, c.measure, c.day, c.until_day, c.count).where(
        c.indicator != "", c.day <= last, c.measure.in_(names))
    with store.engine.connect() as conn:
        for row in conn.execution_options(yield_per=50_000).execute(query):
            yield row[0], row[1], row[2], row[3], row[4], int(row[5])


def stamp(day: int) -> str:
    """The end of a local day in unix seconds, to the millisecond (Prometheus' resolution)."""
    ms = (end_of_day_micros(day) + 1) // 1000 - 1
    return f"{ms // 1000}.{ms % 1000:03d}"


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def openmetrics_lines(series: list[Series], first: date, last: date) -> Iterator[str]:
    """The exposition, family after family (OpenMetrics wants each family contiguous)."""
    stamps: dict[int, str] = {}

    def ts(day: int) -> str:
        got = stamps.get(day)
        if got is None:
            got = stamps[day] = stamp(day)
        return got

    for name, kind, doc in FAMILIES:
        yield f"# TYPE {PREFIX}{name} {kind}\n# HELP {PREFIX}{name} {doc}.\n"
        sample = PREFIX + name + ("_total" if kind == "counter" else "")
        if name == "target_ratio":
            for ind in INDICATORS:
                for d in range(first.toordinal(), last.toordinal() + 1):
                    yield f'{sample}{{indicator="{ind.id}"}} {ind.target:g} {ts(d)}\n'
            continue
        for s in series:
            base = f'indicator="{s.indicator}",unit="{_label(s.unit)}"'
            if name in ("completed_within", "completed_over"):
                values = s.within if name == "completed_within" else s.over
                for w in WINDOWS:
                    labels = f'{sample}{{{base},window="{w}"}} '
                    for k, v in enumerate(values[w]):
                        yield f"{labels}{v} {ts(s.first + k)}\n"
                continue
            values_of: list[int] = getattr(s, name)
            labels = f"{sample}{{{base}}} "
            for k, v in enumerate(values_of):
                yield f"{labels}{v} {ts(s.first + k)}\n"
    yield "# EOF\n"


def export_openmetrics(store: Store, first: date, last: date, out: TextIO) -> int:
    """Write the export of [first, last]; returns the number of samples written."""
    series = daily_series(read_counters(store, last), first, last)
    samples = 0
    for line in openmetrics_lines(series, first, last):
        out.write(line)
        samples += not line.startswith("#")
    return samples
