"""The live view: what every read is served from, kept up to date from deltas (pure).

Both runtimes feed it the same things: the counter deltas the engine emits, the clocks of
the cases a batch touched, and the newest event time. It keeps, per indicator × unit:

- the figures *now* (waiting, over the limit, paused, excluded, breaches, clocks), as
  running sums of the counters whose day has come;
- per window (month, 7d … 365d) the completions and the state changes in the window, as
  running sums slid forward when the day changes, over a ring of at most 365 days;
- the open clocks indexed by deadline day: the worklist, the at-risk gauge and which cases
  the notices must look at, all through `models.worklist.urgency`.

A counter whose day is after the watermark's date (a clock over its limit from the day
after its deadline, a pause that ends later) waits in a per-day queue until the watermark
reaches that day. So a read costs O(indicator × unit groups), never O(history) or O(clocks),
and the figures equal `models.measures.accumulate` at the watermark's date.

"Now" comes from the events (the newest event time less the allowed lateness) or, in live
mode, from an injected wall clock when that is later; nothing here reads the time itself.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date
from itertools import islice

from models import measures as m
from models.calendar import local_day
from models.clocks import ClockView
from models.events import DUPLICATE
from models.indicators import INDICATORS
from models.measures import WINDOWS, Key, Row, window_first
from models.worklist import HORIZON, AtRisk, at_risk_row, dates_of

# figures kept per origin day and summed per window
_COMPLETED, _WITHIN, _PAUSED, _EXCLUDED, _CANCELLED = range(5)
_WINDOWED = {m.COMPLETED: _COMPLETED, m.WITHIN: _WITHIN, m.PAUSED: _PAUSED,
             m.EXCLUDED: _EXCLUDED, m.CANCELLED: _CANCELLED}
_NOW = {m.WAITING: ("waiting", 1), m.WAITING_END: ("waiting", -1), m.OVER: ("over", 1),
        m.OVER_END: ("over", -1), m.CLOCKS: ("clocks", 1), m.BREACH: ("breaches", 1),
        m.PAUSED: ("paused", 1), m.EXCLUDED: ("excluded", 1)}
_WIDE = 400  # a jump of more days than this slides a window by walking its kept days

Group = tuple[int, str]  # (indicator position, unit)


@dataclass(slots=True)
class Live:
    """One indicator × unit at the watermark's date: the figures /metrics shows."""

    within: dict[str, int]  # window -> completed within the limit
    over: dict[str, int]  # window -> completed over the limit
    waiting: int = 0
    waiting_over_limit: int = 0
    paused: int = 0
    excluded: int = 0
    breaches: int = 0


class _Figures:
    """One indicator × unit."""

    __slots__ = ("breaches", "clocks", "days", "due", "due_days", "excluded", "over", "paused",
                 "waiting", "windows")

    def __init__(self) -> None:
        self.clocks = self.waiting = self.over = self.paused = self.excluded = 0
        self.breaches = 0
        self.days: dict[int, list[int]] = {}  # origin day -> windowed figures of that day
        self.windows: list[list[int]] = [[0] * len(_WINDOWED) for _ in WINDOWS]
        self.due: dict[int, dict[str, ClockView]] = {}  # deadline -> case id -> open clock
        self.due_days: list[int] = []  # the keys of `due`, sorted


@dataclass
class LiveView:
    lateness_us: int = 0
    wall_us: Callable[[], int] | None = None  # live mode: the wall clock (µs), injected
    newest_us: int | None = None
    # INCONSISTENT / ORPHAN counters by measure (events that fit no clock), all days
    anomalies: Counter[int] = field(default_factory=Counter)
    _groups: dict[Group, _Figures] = field(default_factory=dict, repr=False)
    _today: int | None = field(default=None, repr=False)
    _firsts: list[int] = field(default_factory=list, repr=False)
    _pending: dict[int, list[tuple[int, _Figures, int, int]]] = field(
        default_factory=dict, repr=False)
    _pending_days: list[int] = field(default_factory=list, repr=False)  # a heap
    _open: dict[str, tuple[ClockView, ...]] = field(default_factory=dict, repr=False)
    # the worklist's text of the clocks it has shown (formatting is most of its cost)
    _dates: dict[ClockView, tuple[str, str]] = field(default_factory=dict, repr=False)

    def reset(self) -> None:
        """Forget everything but the settings (a worker's partitions changed)."""
        fresh = LiveView(self.lateness_us, self.wall_us)
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    # ------------------------------------------------------------ time

    @property
    def watermark_us(self) -> int | None:
        """Event-time "now": the newest event time less the allowed lateness, or the
        wall clock in live mode when that is later."""
        wall = self.wall_us() if self.wall_us is not None else None
        if self.newest_us is None:
            return wall
        return max(self.newest_us - self.lateness_us, wall or 0)

    @property
    def today(self) -> int | None:
        """The local date (ordinal) the figures are at."""
        return self._today

    def today_date(self) -> date | None:
        return date.fromordinal(self._today) if self._today is not None else None

    def advance(self, newest_us: int | None = None) -> set[str]:
        """Take the newest event time; move the figures to the watermark's date. The cases
        whose open clocks the move made breached or at risk (for the notices)."""
        if newest_us is not None and (self.newest_us is None or newest_us > self.newest_us):
            self.newest_us = newest_us
        wm = self.watermark_us
        if wm is None:
            return set()
        day = local_day(wm)
        old = self._today
        if old is not None and day <= old:
            return set()
        firsts = [window_first(w, date.fromordinal(day)).toordinal() for w in WINDOWS]
        if old is not None:
            for g in self._groups.values():
                if g.days:
                    _slide(g, self._firsts, firsts)
        self._today, self._firsts = day, firsts
        pending = self._pending_days
        while pending and pending[0] <= day:
            for measure, g, origin, n in self._pending.pop(heapq.heappop(pending)):
                self._now(g, measure, origin, n)
        return self._crossed(old, day)

    # ------------------------------------------------------------ counters

    def apply(self, deltas: Iterable[tuple[Key, int]]) -> None:
        """Counter deltas (−old, +new) as the engine emits them."""
        for (measure, ind, unit, day, until), n in deltas:
            if ind < 0:
                self.anomalies[measure] += n
                continue
            g = self._group(ind, unit)
            self._at(day, measure, g, day, n)
            if until and measure in m.SPANS:  # a span that ended: it leaves on that day
                self._at(until, measure, g, day, -n)

    def _group(self, ind: int, unit: str) -> _Figures:
        g = self._groups.get((ind, unit))
        if g is None:
            g = self._groups[(ind, unit)] = _Figures()
        return g

    def _at(self, when: int, measure: int, g: _Figures, origin: int, n: int) -> None:
        if self._today is not None and when <= self._today:
            self._now(g, measure, origin, n)
            return
        queued = self._pending.get(when)
        if queued is None:
            queued = self._pending[when] = []
            heapq.heappush(self._pending_days, when)
        queued.append((measure, g, origin, n))

    def _now(self, g: _Figures, measure: int, origin: int, n: int) -> None:
        now = _NOW.get(measure)
        if now is not None:
            name, sign = now
            setattr(g, name, getattr(g, name) + sign * n)
        w = _WINDOWED.get(measure)
        if w is None or not self._firsts or origin < self._firsts[-1]:
            return  # not windowed, or older than every window
        row = g.days.get(origin)
        if row is None:
            row = g.days[origin] = [0] * len(_WINDOWED)
        row[w] += n
        for acc, first in zip(g.windows, self._firsts, strict=True):
            if origin >= first:
                acc[w] += n

    # ------------------------------------------------------------ open clocks

    def set_clocks(self, case_id: str, clocks: Iterable[ClockView]) -> None:
        """A case's clocks after its latest events: its open ones replace those it had."""
        for c in self._open.pop(case_id, ()):
            self._dates.pop(c, None)
            g = self._groups[(c.indicator, c.unit)]
            bucket = g.due[c.deadline]
            del bucket[case_id]
            if not bucket:
                del g.due[c.deadline]
                g.due_days.pop(bisect_left(g.due_days, c.deadline))
        still = tuple(c for c in clocks if c.state == "open")
        if not still:
            return
        self._open[case_id] = still
        for c in still:
            g = self._group(c.indicator, c.unit)
            if c.deadline not in g.due:
                g.due[c.deadline] = {}
                insort(g.due_days, c.deadline)
            g.due[c.deadline][case_id] = c

    def forget(self, case_id: str) -> None:
        """Drop a case's open clocks (a partition moved to another worker)."""
        self.set_clocks(case_id, ())

    def open_cases(self) -> int:
        return len(self._open)

    def _crossed(self, old: int | None, day: int) -> set[str]:
        """Cases with a clock whose deadline the move from `old` to `day` made breached
        (deadline in [old, day)) or at risk (deadline in (old + horizon, day + horizon])."""
        out: set[str] = set()
        for (ind, _), g in self._groups.items():
            days = g.due_days
            if not days:
                continue
            h = HORIZON[ind]
            spans = [(days[0], day + h)] if old is None else [(old, day - 1),
                                                              (old + h + 1, day + h)]
            for a, b in spans:
                for d in days[bisect_left(days, a):bisect_right(days, b)]:
                    out.update(g.due[d])
        return out

    # ------------------------------------------------------------ reads: O(groups)

    def groups(self) -> Iterator[tuple[Group, _Figures]]:
        return iter(self._groups.items())

    def ignored(self, duplicates: int) -> dict[str, int]:
        """Valid events that changed no clock, by reason: repeated ids (the runtime counts
        them) and those fitting no clock."""
        out = dict.fromkeys(m.ANOMALY_REASONS.values(), 0)
        out[DUPLICATE] = duplicates
        for measure, n in self.anomalies.items():
            out[m.ANOMALY_REASONS[measure]] += n
        return out

    def units(self) -> set[str]:
        """Units with a clock of any indicator (what a unit filter may name)."""
        return {u for (_, u), g in self._groups.items() if g.clocks > 0}

    def live(self) -> dict[Group, Live]:
        """Per indicator × unit the figures /metrics shows, at the watermark's date."""
        out: dict[Group, Live] = {}
        for key, g in self._groups.items():
            if not g.clocks and not g.breaches and not any(a[_COMPLETED] for a in g.windows):
                continue
            out[key] = Live(
                {w: a[_WITHIN] for w, a in zip(WINDOWS, g.windows, strict=True)},
                {w: a[_COMPLETED] - a[_WITHIN] for w, a in zip(WINDOWS, g.windows, strict=True)},
                g.waiting, g.over, g.paused, g.excluded, g.breaches,
            )
        return out

    def rows(self, window: str, indicator: int | None = None) -> dict[Group, Row]:
        """Report rows of a window ending at the watermark's date."""
        wi = WINDOWS.index(window)
        out: dict[Group, Row] = {}
        for (ind, unit), g in self._groups.items():
            if g.clocks <= 0 or (indicator is not None and ind != indicator):
                continue
            a = g.windows[wi]
            out[(ind, unit)] = Row(
                INDICATORS[ind].id, unit, completed=a[_COMPLETED], completed_within=a[_WITHIN],
                waiting=g.waiting, waiting_over_limit=g.over, paused=a[_PAUSED],
                excluded=a[_EXCLUDED], cancelled=a[_CANCELLED], clocks=g.clocks,
            )
        return out

    def at_risk_counts(self) -> dict[Group, int]:
        """Open clocks within their at-risk horizon (not yet past the deadline)."""
        today = self._today
        if today is None:
            return {}
        out: dict[Group, int] = {}
        for (ind, unit), g in self._groups.items():
            n = sum(len(g.due.get(d, ())) for d in range(today, today + HORIZON[ind] + 1))
            if n:
                out[(ind, unit)] = n
        return out

    def worklist(self, indicator: int | None = None, unit: str | None = None,
                 limit: int = 1000) -> list[AtRisk]:
        """Open clocks past their deadline or within the horizon, most urgent first: the
        earliest deadline, then indicator, unit and case id."""
        today = self._today
        if today is None:
            return []
        lists = [
            _urgent(ind, unit_, g, today + HORIZON[ind])
            for (ind, unit_), g in self._groups.items()
            if g.due_days and (indicator is None or ind == indicator)
            and (unit is None or unit_ == unit)
        ]
        out = []
        for _, _, _, case_id, c in islice(heapq.merge(*lists), limit):
            dates = self._dates.get(c)
            if dates is None:
                dates = self._dates[c] = dates_of(c)
            out.append(at_risk_row(case_id, c, today, dates))
        return out


def _urgent(ind: int, unit: str, g: _Figures, last: int
            ) -> Iterator[tuple[int, str, str, str, ClockView]]:
    name = INDICATORS[ind].id
    for d in g.due_days:
        if d > last:
            return
        for case_id, c in sorted(g.due[d].items()):
            yield d, name, unit, case_id, c


def _slide(g: _Figures, old: list[int], new: list[int]) -> None:
    """Move a group's windows from first days `old` to `new`: the days that left are
    subtracted; days before the longest window are forgotten."""
    for acc, a, b in zip(g.windows, old, new, strict=True):
        if b - a > _WIDE:
            leaving = [row for d, row in g.days.items() if a <= d < b]
        else:
            leaving = [row for d in range(a, b) if (row := g.days.get(d)) is not None]
        for row in leaving:
            for i, v in enumerate(row):
                acc[i] -= v
    if new[-1] - old[-1] > _WIDE:
        for d in [d for d in g.days if d < new[-1]]:
            del g.days[d]
    else:
        for d in range(old[-1], new[-1]):
            g.days.pop(d, None)
