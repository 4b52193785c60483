"""Synthetic event log: one calendar year of the region (docs/events.md).

How it works, and why:
- Time is an int of *local wall-clock seconds* since 1 January of the year before (`L`);
  local dates, office hours and the 16:00 cut-off are then plain integer arithmetic. The
  UTC instant and the RFC 3339 text come from per-day tables built with zoneinfo, so no
  datetime object is made per event and DST days are exact.
- A case's whole future is drawn when it starts; its events go into per-day buckets (by the
  local day they are written). After the starts of day d are generated, bucket d is complete,
  is sorted by instant and streamed out. Memory is bounded by the open cases.
- Warm start: specialist and BUP referrals are simulated from a year earlier, so the year
  opens with a realistic backlog. Cases that are over before 1 January are dropped; the
  others are written whole (their start events carry last year's dates), so every
  fulfilment in the year has its start in the log and the year's completed ratios are the
  steady-state ones. Events after 31 December are not written (open clocks at year end).
- Compliance: each clock's chance of being within its limit is a logistic model (unit,
  season, channel/profession offsets) whose intercept is solved so the volume-weighted mean
  equals `result_2023` of models/indicators.py. Outcomes are drawn by error diffusion
  (systematic sampling) per indicator, so even tiny scales hit the figure closely.
- Deterministic: one `random.Random(seed)` (plus a separate one for malformed lines, so that
  `bad_rate` does not change the valid events), fixed iteration orders, gzip with mtime 0.
"""

from __future__ import annotations

import gzip
import math
import os
import random
import time
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import holidays
import orjson

from models.indicators import BY_ID, Indicator
from models.region import BUP_UNITS, CLINICS, UNITS_BY_ID, VARDCENTRALER, Unit

TZ: Final = ZoneInfo("Europe/Stockholm")
DAY: Final = 86_400
HOUR: Final = 3_600

# Volumes at scale 1 (the region's 2023 annual report, docs/rules.md#kallor).
CONTACTS_PER_YEAR: Final = 1_300_000
ASSESSMENT_SHARE: Final = 0.24  # contacts where triage finds a new or worse problem
SPECIALIST_REFERRALS_PER_MONTH: Final = 12_000
BUP_REFERRALS_PER_MONTH: Final = 600

# Realistic data-quality noise.
LATE_RATE: Final = 0.01
DUPLICATE_RATE: Final = 0.003

# Case events on the 90/30-day clocks.
PVV_RATE: Final = 0.03  # patient-chosen wait (patient_choice), 90-day clocks
MOV_RATE: Final = 0.02  # medical reasons, 90-day clocks
CANCEL_RATE: Final = 0.02
TRANSFER_RATE: Final = 0.01
EXTERNAL_RATE: Final = 0.03  # of clocks near or past the limit: ~1 % of all
CONTACT_CANCEL_RATE: Final = 0.005
ASSESSMENT_CANCEL_RATE: Final = 0.01
WARM_START_DAYS_PRIMARY: Final = 21

GZIP_LEVEL: Final = 6

# Monthly volume factors (Jan..Dec): summer is quiet, winter busy in primary care.
_MONTH_PRIMARY: Final = (1.12, 1.10, 1.05, 1.00, 0.98, 0.88, 0.68, 0.86, 1.05, 1.08, 1.10, 1.02)
_MONTH_SPECIALIST: Final = (1.06, 1.08, 1.10, 1.02, 1.04, 0.95, 0.55, 0.85, 1.08, 1.10, 1.08,
                            0.86)
_MONTH_BUP: Final = (1.05, 1.10, 1.10, 1.05, 1.05, 0.90, 0.50, 0.85, 1.10, 1.15, 1.10, 0.90)
# Monday..Sunday; public holidays count as Sundays.
_WEEKDAY_PRIMARY: Final = (1.35, 1.10, 1.00, 1.00, 0.90, 0.25, 0.30)

# Hour-of-day weights (index = hour). Phones open 08:00, most calls early in the day.
_H_PHONE_WORK: Final = (0.05, 0.02, 0.02, 0.02, 0.02, 0.05, 0.2, 0.8, 10, 8, 7, 6, 4, 6, 5.5,
                        4.5, 1.2, 0.8, 0.5, 0.3, 0.3, 0.2, 0.1, 0.05)
_H_PHONE_FREE: Final = (0.1, 0.05, 0.02, 0.02, 0.02, 0.05, 0.2, 0.5, 2, 3, 3, 3, 2.5, 2.5, 2.5,
                        2, 1.5, 1.2, 1, 0.8, 0.6, 0.4, 0.2, 0.1)
_H_DIGITAL: Final = (0.8, 0.3, 0.2, 0.2, 0.2, 0.4, 1, 3, 6, 7, 7, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5,
                     4, 3, 1.5)
_H_VISIT: Final = (0, 0, 0, 0, 0, 0, 0, 0.5, 8, 9, 8, 7, 4, 6, 6, 5, 2, 0.5, 0.2, 0.1, 0, 0, 0,
                   0)
_H_OFFICE: Final = (0, 0, 0, 0, 0, 0, 0, 3, 10, 10, 10, 8, 5, 9, 9, 7, 2, 0.5, 0.2, 0, 0, 0, 0,
                    0)
_H_WEEKEND_CARE: Final = (0, 0, 0, 0, 0, 0, 0, 0, 3, 5, 5, 4, 3, 4, 4, 3, 2, 1, 0, 0, 0, 0, 0,
                          0)

# (channel, share, logit offset): walk-in contacts are handled at once, phone queues lag.
_CHANNELS: Final = (("phone", 0.62, -0.25), ("digital", 0.26, 0.20), ("visit", 0.12, 1.20))

# (profession of the fulfilling assessment, share, logit offset, undersköterska first).
# Physicians and nurses do best (docs/rules.md#tre-dagar); ~8 % are first seen by an undersköterska,
# which does not fulfil, and get the licensed assessment later.
_PROFESSIONS: Final = (
    ("lakare", 0.43, 0.30, False),
    ("sjukskoterska", 0.20, 0.30, False),
    ("distriktsskoterska", 0.11, 0.30, False),
    ("fysioterapeut", 0.08, -0.35, False),
    ("psykolog", 0.03, -0.45, False),
    ("kurator", 0.02, -0.45, False),
    ("arbetsterapeut", 0.02, -0.35, False),
    ("barnmorska", 0.015, -0.20, False),
    ("dietist", 0.01, -0.45, False),
    ("logoped", 0.005, -0.45, False),
    ("lakare", 0.05, -1.10, True),
    ("sjukskoterska", 0.03, -1.10, True),
)
_LICENSED_FOLLOW_UP: Final = ("lakare", "sjukskoterska", "distriktsskoterska")

_AGE_ADULT: Final = (("0-17", 0.17), ("18-44", 0.33), ("45-64", 0.24), ("65-79", 0.17),
                     ("80+", 0.09))
_AGE_SPECIALIST: Final = (("0-17", 0.06), ("18-44", 0.25), ("45-64", 0.30), ("65-79", 0.27),
                          ("80+", 0.12))
_AGE_BUP: Final = (("0-5", 0.08), ("6-12", 0.40), ("13-17", 0.52))

_CANCEL_REASONS: Final = ("patient_declined", "no_longer_needed", "referral_withdrawn",
                          "duplicate_referral")

# Per indicator: (shape a, shape b) of the within-limit wait as a fraction of the limit, and
# the mean extra days past the limit when late.
_WAIT_SHAPE: Final = {
    "besok_90": (1.6, 1.2, 40.0),
    "atgard_90": (1.8, 1.3, 55.0),
    "bup_besok_30": (1.5, 1.2, 35.0),
    "bup_utredning_30": (2.0, 1.1, 70.0),
    "bup_behandling_30": (1.6, 1.2, 40.0),
}
_MAX_LATE_DAYS: Final = 300
# typical days from referral to the decision that starts the clock
_DECISION_LAG: Final = {"atgard_90": 60, "bup_utredning_30": 40, "bup_behandling_30": 75}

# Malformed lines (bad_rate). 19121212-1212 is Skatteverket's published test identity
# (Tolvan Tolvansson), not a real person.
_TEST_PERSONNUMMER: Final = ("19121212-1212", "191212121212", "121212-1212")
_BAD_TYPES: Final = ("referral.withdrawn", "contact.requsted", "visit.booked")
_BAD_PATHWAYS: Final = ("rehab", "primary", "vuxenpsykiatri")
_REQUIRED: Final = ("type", "case_id", "occurred_at", "unit_id")

_SUFFIXES: Final = (".jsonl.gz", ".jsonl")


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True, slots=True)
class GenerateStats:
    """What `generate` wrote. `events` counts distinct valid events."""

    path: Path
    year: int
    seed: int
    scale: float
    events: int
    lines: int  # events + duplicate copies + malformed lines
    by_type: dict[str, int]
    duplicates: int
    late: int
    bad_lines: int
    cases: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Incident:
    """An injected collapse: of `unit`'s `indicator` clocks due in [first, last], only the
    share `rate` is completed within the limit (the rest late), instead of the usual share.
    Written on the command line as UNIT:INDICATOR:FROM:TO:RATE."""

    unit: str
    indicator: str
    first: date
    last: date
    rate: float

    @classmethod
    def parse(cls, text: str) -> Incident:
        parts = text.split(":")
        if len(parts) != 5:
            raise ValueError(f"--incident '{text}': expected UNIT:INDICATOR:FROM:TO:RATE")
        unit, ind, first, last, rate = parts
        if unit not in UNITS_BY_ID:
            raise ValueError(f"--incident '{text}': no unit '{unit}' in the region")
        if ind not in BY_ID:
            raise ValueError(f"--incident '{text}': no indicator '{ind}'")
        try:
            a, b = date.fromisoformat(first), date.fromisoformat(last)
            r = float(rate)
        except ValueError:
            raise ValueError(f"--incident '{text}': FROM and TO are dates (YYYY-MM-DD), "
                             "RATE a number") from None
        if a > b:
            raise ValueError(f"--incident '{text}': FROM is after TO")
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"--incident '{text}': RATE is a share between 0 and 1")
        return cls(unit, ind, a, b, r)


def check_arguments(out: Path, year: int, seed: int, scale: float, bad_rate: float) -> None:
    """Raise ValueError, naming the parameter, for arguments `generate` refuses."""
    if not isinstance(year, int) or not 1971 <= year <= 2199:
        raise ValueError(f"year must be an integer between 1971 and 2199, got {year!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a number > 0, got {scale!r}")
    if not math.isfinite(bad_rate) or not 0.0 <= bad_rate <= 0.5:
        raise ValueError(f"bad_rate must be between 0 and 0.5, got {bad_rate!r}")
    if not out.name.endswith(_SUFFIXES):
        raise ValueError(f"output file must end in .jsonl or .jsonl.gz, got {out.name!r}")
    if not out.parent.is_dir():
        raise ValueError(f"output directory does not exist: {out.parent}")


def generate(
    out: Path, year: int, seed: int = 1, scale: float = 1.0, bad_rate: float = 0.0,
    progress: bool = True, incidents: Sequence[Incident] = (),
) -> GenerateStats:
    """Write a synthetic event log for calendar `year` to `out` (.jsonl or .jsonl.gz)."""
    out = Path(out)
    check_arguments(out, year, seed, scale, bad_rate)
    started = time.perf_counter()
    tmp = out.with_name(out.name + ".part")
    engine = _Engine(year, seed, scale, bad_rate, incidents)
    try:
        with open(tmp, "wb") as raw:
            if out.name.endswith(".gz"):
                # mtime=0 and no file name: the bytes depend on the content only
                with gzip.GzipFile(
                    fileobj=raw, mode="wb", mtime=0, filename="", compresslevel=GZIP_LEVEL,
                ) as gz:
                    engine.run(gz, progress)
            else:
                engine.run(raw, progress)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return GenerateStats(
        path=out, year=year, seed=seed, scale=scale, events=engine.events,
        lines=engine.lines, by_type=dict(sorted(engine.by_type.items())),
        duplicates=engine.duplicates, late=engine.late, bad_lines=engine.bad_lines,
        cases=engine.cases, seconds=round(time.perf_counter() - started, 3),
    )


def _cum(weights: Sequence[float]) -> list[float]:
    """Cumulative weights normalised to 1, for `bisect(cum, random())`."""
    total = float(sum(weights))
    acc, out = 0.0, []
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0 + 1e-9  # so that bisect never runs off the end
    return out


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _solve_intercept(target: float, mix: Sequence[tuple[float, float]]) -> float:
    """b such that sum(w * sigmoid(b + o)) / sum(w) == target, by bisection."""
    total = sum(w for w, _ in mix)
    lo, hi = -12.0, 12.0
    for _ in range(60):
        mid = (lo + hi) / 2
        mean = sum(w * _sigmoid(mid + o) for w, o in mix) / total
        if mean < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class _Pool:
    """A set of units that take referrals of one kind (clinics or BUP)."""

    def __init__(self, units: Sequence[Unit], by_specialty: bool) -> None:
        self.units = tuple(units)
        self.ids = [u.id for u in units]
        self.perf = [u.performance for u in units]
        self.cum = _cum([u.size for u in units])
        # units that can take over a case (same specialty, another hospital)
        self.alts: list[list[int]] = [
            [j for j, v in enumerate(units)
             if j != i and (not by_specialty or v.specialty == u.specialty)]
            for i, u in enumerate(units)
        ]


class _Engine:
    def __init__(self, year: int, seed: int, scale: float, bad_rate: float,
                 incidents: Sequence[Incident] = ()) -> None:
        self.year, self.seed, self.scale = year, seed, scale
        self.rng = random.Random(seed)
        self.bad_rng = random.Random(f"{seed}/malformed")
        # its own generator, so that the rest of the log is the same with or without them
        self.incident_rng = random.Random(f"{seed}/incident")
        self.bad_q = bad_rate / (1.0 - bad_rate) if bad_rate > 0 else 0.0
        self.events = self.lines = self.duplicates = self.late = self.bad_lines = 0
        self.cases = 0
        self.by_type: dict[str, int] = {}
        self.id_prefix = f"ev-{seed}-"
        self.case_prefix = f"c-{seed}-"
        self._calendar(year)
        self.incidents: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
        for inc in incidents:
            self.incidents.setdefault((inc.indicator, inc.unit), []).append(
                ((inc.first - self.day0).days, (inc.last - self.day0).days, inc.rate))
        self._volumes()
        self._models()
        self.buckets: list[list[tuple[int, bytes]] | None] = [None] * self.ndays

    # ----------------------------------------------------------------- calendar tables
    def _calendar(self, year: int) -> None:
        self.day0 = date(year - 1, 1, 1)
        self.first_day = (date(year, 1, 1) - self.day0).days
        self.last_day = (date(year, 12, 31) - self.day0).days
        self.y_start = self.first_day * DAY
        self.y_end = (self.last_day + 1) * DAY - 1
        # room for one more year of waits past the end (plus lateness) in every table
        self.ndays = self.last_day + 1 + 366 + _MAX_LATE_DAYS + 130
        dates = [self.day0 + timedelta(days=d) for d in range(self.ndays)]
        hol = holidays.country_holidays("SE", years=range(year - 1, dates[-1].year + 1))
        self.dates = dates
        self.date_t = [f"{d.isoformat()}T" for d in dates]
        self.month = [d.month - 1 for d in dates]
        self.dow = [6 if d in hol else d.weekday() for d in dates]
        self.work = [d.weekday() < 5 and d not in hol for d in dates]
        n = self.ndays
        nxt = [n - 1] * n
        following = n - 1
        for d in range(n - 1, -1, -1):
            if self.work[d]:
                following = d
            nxt[d] = following
        prv = [0] * n
        previous = 0
        for d in range(n):
            if self.work[d]:
                previous = d
            prv[d] = previous
        self.next_work, self.prev_work = nxt, prv
        # samma_dag deadline for a request after 16:00 or on a free day: the next weekday
        self.next_weekday_after = [nxt[min(d + 1, n - 1)] for d in range(n)]
        self.season = [self._season(d) for d in dates]
        self._offsets(dates)
        self.hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)]

    @staticmethod
    def _season(d: date) -> float:
        """Logit offset by ISO week: the summer dip (weeks 28-32) and Christmas."""
        week = d.isocalendar().week
        if 28 <= week <= 32:
            return -0.9
        if week in (27, 33):
            return -0.35
        if week in (52, 53, 1):
            return -0.3
        return 0.0

    def _offsets(self, dates: Sequence[date]) -> None:
        """Per local day: UTC offset before/after any DST change and the local switch time."""
        def offset_at(epoch: int) -> int:
            off = datetime.fromtimestamp(epoch, TZ).utcoffset()
            assert off is not None
            return int(off.total_seconds())

        def fmt(off: int) -> str:
            sign = "+" if off >= 0 else "-"
            return f"{sign}{abs(off) // 3600:02d}:{abs(off) // 60 % 60:02d}"

        n = len(dates)
        self.epoch0 = int(datetime(dates[0].year, dates[0].month, dates[0].day,
                                 tzinfo=UTC).timestamp())
        self.off0, self.off1 = [0] * n, [0] * n
        self.tr, self.gap = [DAY] * n, [0] * n
        self.suf0, self.suf1 = [""] * n, [""] * n
        prev = offset_at(self.epoch0 - 3 * HOUR)
        for d in range(n):
            naive_mid = self.epoch0 + d * DAY
            start = naive_mid - prev  # epoch of local midnight
            end_off = offset_at(start + DAY - 1)  # transitions are at night, never 23:00
            self.off0[d], self.off1[d] = prev, end_off
            if end_off != prev:
                lo, hi = start, start + DAY - 1  # hi: first epoch with the new offset
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if offset_at(mid) == prev:
                        lo = mid
                    else:
                        hi = mid
                self.tr[d] = hi + prev - naive_mid  # local time of the switch, old offset
                self.gap[d] = end_off - prev  # > 0: skipped local hour, < 0: repeated
            self.suf0[d], self.suf1[d] = fmt(prev), fmt(end_off)
            prev = end_off

    # ----------------------------------------------------------------- volumes & models
    def _daily(self, annual: float, months: Sequence[float], weekday: Sequence[float]
               ) -> list[float]:
        f = [months[self.month[d]] * weekday[self.dow[d]] for d in range(self.ndays)]
        norm = sum(f[self.first_day:self.last_day + 1]) / (self.last_day + 1 - self.first_day)
        per_day = annual * self.scale / (self.last_day + 1 - self.first_day)
        return [per_day * x / norm for x in f]

    def _volumes(self) -> None:
        referral_days = (1.0, 1.0, 1.0, 1.0, 1.0, 0.04, 0.04)
        self.n_primary = self._daily(CONTACTS_PER_YEAR, _MONTH_PRIMARY, _WEEKDAY_PRIMARY)
        self.n_spec = self._daily(SPECIALIST_REFERRALS_PER_MONTH * 12, _MONTH_SPECIALIST,
                                  referral_days)
        self.n_bup = self._daily(BUP_REFERRALS_PER_MONTH * 12, _MONTH_BUP, referral_days)

    def _season_mix(self, daily: Sequence[float], shift: int, lag: int
                    ) -> list[tuple[float, float]]:
        acc: dict[float, float] = {}
        for d in range(self.first_day, self.last_day + 1):
            s = self.season[d + shift]
            acc[s] = acc.get(s, 0.0) + daily[d - lag]
        return sorted((w, o) for o, w in acc.items())

    def _intercept(
        self, ind: Indicator, units: Sequence[tuple[float, float]],
        cats: Sequence[tuple[float, float]], daily: Sequence[float],
    ) -> float:
        # decisions come weeks after the referral: their volume follows the inflow late
        seasons = self._season_mix(daily, self._season_shift(ind), _DECISION_LAG.get(ind.id, 0))
        mix = [(wu * wc * ws, ou + oc + os_) for wu, ou in units for wc, oc in cats
               for ws, os_ in seasons]
        return _solve_intercept(ind.result_2023, mix)

    @staticmethod
    def _season_shift(ind: Indicator) -> int:
        # long clocks feel the season halfway to their deadline, not at their start
        return ind.limit_days // 2

    def _models(self) -> None:
        self.vc_ids = [u.id for u in VARDCENTRALER]
        self.vc_perf = [u.performance for u in VARDCENTRALER]
        self.vc_cum = _cum([u.size for u in VARDCENTRALER])
        self.clinics = _Pool(CLINICS, by_specialty=True)
        self.bups = _Pool(BUP_UNITS, by_specialty=False)
        self.treat_share = [u.treatment_share for u in CLINICS]

        self.ch_cum = _cum([c[1] for c in _CHANNELS])
        self.prof_cum = _cum([p[1] for p in _PROFESSIONS])
        self.age_adult = ([a for a, _ in _AGE_ADULT], _cum([w for _, w in _AGE_ADULT]))
        self.age_spec = ([a for a, _ in _AGE_SPECIALIST], _cum([w for _, w in _AGE_SPECIALIST]))
        self.age_bup = ([a for a, _ in _AGE_BUP], _cum([w for _, w in _AGE_BUP]))
        self.h_phone = (_cum(_H_PHONE_FREE), _cum(_H_PHONE_WORK))
        self.h_digital = _cum(_H_DIGITAL)
        self.h_visit = _cum(_H_VISIT)
        self.h_office = _cum(_H_OFFICE)
        self.h_weekend = _cum(_H_WEEKEND_CARE)

        vc_units = [(u.size, u.performance) for u in VARDCENTRALER]
        clinic_units = [(u.size, u.performance) for u in CLINICS]
        treat_units = [(u.size * u.treatment_share, u.performance) for u in CLINICS]
        bup_units = [(u.size, u.performance) for u in BUP_UNITS]
        one = [(1.0, 0.0)]
        self.intercept: dict[str, float] = {
            "samma_dag": self._intercept(BY_ID["samma_dag"], vc_units,
                                         [(c[1], c[2]) for c in _CHANNELS], self.n_primary),
            "tre_dagar": self._intercept(BY_ID["tre_dagar"], vc_units,
                                         [(p[1], p[2]) for p in _PROFESSIONS], self.n_primary),
            "besok_90": self._intercept(BY_ID["besok_90"], clinic_units, one, self.n_spec),
            "atgard_90": self._intercept(BY_ID["atgard_90"], treat_units, one, self.n_spec),
        }
        for ind in ("bup_besok_30", "bup_utredning_30", "bup_behandling_30"):
            self.intercept[ind] = self._intercept(BY_ID[ind], bup_units, one, self.n_bup)
        # error-diffusion accumulators, random phase
        self.acc: dict[str, float] = {i: self.rng.random() for i in sorted(self.intercept)}

    # ----------------------------------------------------------------- output
    def _bucket(self, day: int) -> list[tuple[int, bytes]]:
        b = self.buckets[day]
        if b is None:
            b = self.buckets[day] = []
        return b

    def _emit(
        self, at: int, etype: str, case_id: str, unit_id: str, patient: str,
        attrs: dict[str, str],
    ) -> None:
        d, s = divmod(at, DAY)
        if s < self.tr[d]:
            off, suf = self.off0[d], self.suf0[d]
        else:
            gap = self.gap[d]
            if s < self.tr[d] + gap:
                # a local time that does not exist (spring forward): the switch instant, which
                # keeps the case's events in order
                at += self.tr[d] + gap - s
                s = self.tr[d] + gap
            off, suf = self.off1[d], self.suf1[d]
        self.events += 1
        self.by_type[etype] = self.by_type.get(etype, 0) + 1
        line = orjson.dumps(
            {"event_id": f"{self.id_prefix}{self.events}", "type": etype, "case_id": case_id,
             "occurred_at": self.date_t[d] + self.hms[s] + suf, "unit_id": unit_id,
             "patient_ref": patient, "attributes": attrs},
            option=orjson.OPT_APPEND_NEWLINE,
        )
        # orjson's result keeps a ~4 KB buffer; copied to its real size it is 1/15 of that
        line = bytes(memoryview(line))
        instant = self.epoch0 + at - off
        r = self.rng.random()
        if r < LATE_RATE:
            # delivered late: minutes to a few days after it happened
            if r < LATE_RATE * 0.6:
                delay = 300 + int(self.rng.random() * 6 * HOUR)
            elif r < LATE_RATE * 0.9:
                delay = 6 * HOUR + int(self.rng.random() * 18 * HOUR)
            else:
                delay = DAY + int(self.rng.random() * 3 * DAY)
            self.late += 1
            self._bucket((at + delay) // DAY).append((instant + delay, line))
            return
        self._bucket(d).append((instant, line))
        if r < LATE_RATE + DUPLICATE_RATE:
            # redelivered later: the same bytes again
            delay = 60 + int(self.rng.random() * 2 * DAY)
            self.duplicates += 1
            self._bucket((at + delay) // DAY).append((instant + delay, line))

    def _flush(self, day: int, sink: _Sink) -> None:
        b = self.buckets[day]
        if b is None:
            return
        self.buckets[day] = None
        b.sort(key=itemgetter(0))  # stable: ties keep generation order
        lines = [line for _, line in b]
        if self.bad_q > 0:
            lines = self._with_malformed(lines)
        self.lines += len(lines)
        sink.write(b"".join(lines))

    def _with_malformed(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        rnd = self.bad_rng.random
        for line in lines:
            out.append(line)
            if rnd() < self.bad_q:
                out.append(self._malformed(line))
        return out

    def _malformed(self, line: bytes) -> bytes:
        rng = self.bad_rng
        self.bad_lines += 1
        kind = rng.randrange(6)
        if kind == 0:  # cut off mid-write: not JSON
            return line[: max(12, len(line) // 2)].rstrip(b"\n") + b"\n"
        ev: dict[str, Any] = orjson.loads(line)
        ev["event_id"] = f"{self.id_prefix}x{self.bad_lines}"
        if kind == 1:
            del ev[rng.choice(_REQUIRED)]
        elif kind == 2:
            ev["occurred_at"] = ev["occurred_at"][:19]  # naive local time
        elif kind == 3:
            ev["type"] = rng.choice(_BAD_TYPES)
        elif kind == 4:
            ev["patient_ref"] = rng.choice(_TEST_PERSONNUMMER)
        else:
            ev["type"] = "referral.issued"
            ev["attributes"] = {**ev.get("attributes", {}), "pathway": rng.choice(_BAD_PATHWAYS)}
        return orjson.dumps(ev, option=orjson.OPT_APPEND_NEWLINE)

    # ----------------------------------------------------------------- the main loop
    def run(self, sink: _Sink, progress: bool) -> None:
        # day 0 is 1 January of the year before: the warm start of the long clocks
        pc_first = self.first_day - WARM_START_DAYS_PRIMARY
        carry = [0.0, 0.0, 0.0]
        rnd = self.rng.random
        update: Callable[[int], None] | None = None
        bar: Any = None
        if progress:
            bar, update = self._progress(self.last_day + 1)
        try:
            for d in range(self.last_day + 1):
                noise = 1.0 + 0.06 * (rnd() - 0.5)  # day-to-day variation in the inflow
                counts = []
                for k, daily in enumerate((self.n_primary, self.n_spec, self.n_bup)):
                    carry[k] += daily[d] * noise
                    n = int(carry[k])
                    carry[k] -= n
                    counts.append(n)
                if d >= pc_first:
                    self._primary_day(d, counts[0])
                for _ in range(counts[1]):
                    self._specialist_case(d)
                for _ in range(counts[2]):
                    self._bup_case(d)
                self._flush(d, sink)
                if update is not None:
                    update(d + 1)
            # late and duplicate copies that arrive after the year
            for d in range(self.last_day + 1, self.ndays):
                self._flush(d, sink)
            if update is not None:
                update(self.last_day + 1)
        finally:
            if bar is not None:
                bar.stop()

    def _progress(self, days: int) -> tuple[Any, Callable[[int], None]]:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]generating[/] {task.fields[day]}"), BarColumn(),
            TextColumn("{task.fields[events]:>12,} events"),
            TextColumn("{task.fields[rate]:>9,.0f} ev/s"), TimeElapsedColumn(),
            console=Console(stderr=True), transient=False,
        )
        task = bar.add_task("gen", total=days, day="", events=0, rate=0.0)
        bar.start()
        t0 = time.perf_counter()

        def update(done: int) -> None:
            day = self.dates[min(done, days) - 1]
            rate = self.events / max(time.perf_counter() - t0, 1e-6)
            bar.update(task, completed=done, day=day.isoformat(), events=self.events,
                       rate=rate)

        return bar, update

    # ----------------------------------------------------------------- helpers
    def _hour(self, cum: list[float]) -> int:
        return bisect(cum, self.rng.random()) * HOUR + int(self.rng.random() * HOUR)

    def _at(self, day: int, after: int) -> int:
        """An office-hours instant on `day`, strictly after `after` when possible."""
        cum = self.h_office if self.work[day] else self.h_weekend
        at = day * DAY + self._hour(cum)
        if at <= after:
            room = (day + 1) * DAY - 1 - after
            at = after + (1 + int(self.rng.random() * min(room - 1, 2 * HOUR)) if room > 1
                          else 0)
        return at

    def _shift(self, lo: int, day: int, hi: int, within: bool, keep: float) -> int:
        """Move a fulfilment off a weekend/holiday without changing within/over."""
        if self.work[day] or self.rng.random() < keep:
            return day
        if within:
            p = self.prev_work[day]
            if p >= lo:
                return p
            n = self.next_work[day]
            return n if n <= hi else day
        return self.next_work[day]

    def _outcome(self, ind: str, logit: float, unit: str, due: int) -> bool:
        """Within the limit? The usual chance, unless an injected incident covers the clock
        (due on the local day `due`)."""
        within = self._chance(ind, logit)
        forced = self._incident(ind, unit, due)
        return within if forced is None else forced

    def _chance(self, ind: str, logit: float) -> bool:
        """Within the limit, by the usual chance? Error diffusion: the running share tracks
        the mean chance."""
        a = self.acc[ind] + _sigmoid(logit)
        within = a >= 1.0
        self.acc[ind] = a - 1.0 if within else a
        return within

    def _incident(self, ind: str, unit: str, due: int) -> bool | None:
        """The result an injected incident sets for a clock due on `due` (None: none
        covers it). Draws from its own generator only when one does."""
        for first, last, rate in self.incidents.get((ind, unit), ()):
            if first <= due <= last:
                return self.incident_rng.random() < rate
        return None

    def _pick(self, table: tuple[list[str], list[float]]) -> str:
        return table[0][bisect(table[1], self.rng.random())]

    def _patient(self) -> str:
        return f"p-{self.rng.getrandbits(32):08x}"

    def _case_id(self) -> str:
        self.cases += 1
        return f"{self.case_prefix}{self.cases}"

    def _commit(self, case_id: str, patient: str, evs: list[tuple[int, str, str, dict[str, str]]]
                ) -> None:
        """Write a case's events, unless it is over before the year (warm start)."""
        if max(e[0] for e in evs) < self.y_start:
            return
        end = self.y_end
        for at, etype, unit, attrs in evs:
            if at <= end:
                self._emit(at, etype, case_id, unit, patient, attrs)

    # ----------------------------------------------------------------- primary care
    def _primary_day(self, d: int, n: int) -> None:
        rng = self.rng
        rnd = rng.random
        expo = rng.expovariate
        work = self.work[d]
        h_phone = self.h_phone[1 if work else 0]
        season = self.season[d]
        b_sd, b_td = self.intercept["samma_dag"], self.intercept["tre_dagar"]
        due_next = self.next_weekday_after[d]
        day_start, day_end = d * DAY, d * DAY + DAY - 1
        warm = d < self.first_day
        emit = self._emit
        for _ in range(n):
            ui = bisect(self.vc_cum, rnd())
            unit = self.vc_ids[ui]
            perf = self.vc_perf[ui]
            ci = bisect(self.ch_cum, rnd())
            channel, _, ch_off = _CHANNELS[ci]
            if ci == 0:
                s = self._hour(h_phone)
            elif ci == 1:
                s = self._hour(self.h_digital)
            else:
                s = self._hour(self.h_visit if work else self.h_weekend)
            start = day_start + s
            labels = {"sex": "F" if rnd() < 0.56 else "M", "age_band": self._pick(self.age_adult)}
            case_id = self._case_id()
            patient = self._patient()
            evs = [(start, "contact.requested", unit, {"channel": channel, **labels})]

            # samma_dag: due today if a weekday before 16:00, else the next weekday
            due = d if work and s < 16 * HOUR else due_next
            if self._outcome("samma_dag", b_sd + perf + season + ch_off, unit, due):
                if due == d or rnd() < 0.3:
                    # answered at once or called back later the same day
                    opens = day_start + 8 * HOUR if ci != 1 and work else start
                    done = max(start, opens) + 30 + int(expo(1 / 2700))
                    if done > day_end:
                        done = start + int((day_end - start) * rnd())
                else:
                    done = self._at(due, start)
            else:
                late_day = self.next_weekday_after[due]
                if rnd() < 0.2:
                    late_day = self.next_weekday_after[late_day]
                done = self._at(late_day, start)
            if rnd() < CONTACT_CANCEL_RATE:
                evs.append((done, "case.cancelled", unit, {"reason": "patient_withdrew"}))
            else:
                evs.append((done, "contact.completed", unit, {}))
                if rnd() < ASSESSMENT_SHARE:
                    self._assessment(evs, done, unit, perf, labels, b_td)
            if warm:
                self._commit(case_id, patient, evs)
            else:
                for at, etype, u, attrs in evs:
                    if at <= self.y_end:
                        emit(at, etype, case_id, u, patient, attrs)

    def _assessment(
        self, evs: list[tuple[int, str, str, dict[str, str]]], contact_done: int, unit: str,
        perf: float, labels: dict[str, str], base: float,
    ) -> None:
        rnd = self.rng.random
        start = contact_done + 60 * (1 + int(rnd() * 20))
        sd = start // DAY
        evs.append((start, "assessment.needed", unit, dict(labels)))
        profession, _, off, usk_first = _PROFESSIONS[bisect(self.prof_cum, rnd())]
        within = self._outcome("tre_dagar", base + perf + self.season[sd] + off, unit, sd + 3)
        if within:
            r = rnd()
            delay = 0 if r < 0.30 else 1 if r < 0.62 else 2 if r < 0.84 else 3
        else:
            delay = 4 + min(int(self.rng.expovariate(1 / 3)), 26)
        fd = self._shift(sd, sd + delay, sd + 3, within, 0.1)
        after = start
        if usk_first:
            # an undersköterska sees the patient first; that does not fulfil the clock
            after = min(start + 300 + int(rnd() * 5400), (sd + 1) * DAY - 1)
            evs.append((after, "assessment.completed", unit, {"profession": "underskoterska"}))
        if fd == sd:
            done = after + 600 + int(self.rng.expovariate(1 / 5400))
            if done >= (sd + 1) * DAY:
                done = after + int(((sd + 1) * DAY - 1 - after) * rnd())
        else:
            done = self._at(fd, after)
        if rnd() < ASSESSMENT_CANCEL_RATE:
            evs.append((done, "case.cancelled", unit, {"reason": "no_longer_needed"}))
            return
        evs.append((done, "assessment.completed", unit, {"profession": profession}))

    # ----------------------------------------------------------------- specialised care
    def _specialist_case(self, d: int) -> None:
        rnd = self.rng.random
        pool = self.clinics
        ui = bisect(pool.cum, rnd())
        start = self._at(d, d * DAY)
        labels = {"sex": "F" if rnd() < 0.55 else "M", "age_band": self._pick(self.age_spec)}
        case_id = self._case_id()
        patient = self._patient()
        evs: list[tuple[int, str, str, dict[str, str]]] = [
            (start, "referral.issued", pool.ids[ui], {"pathway": "specialist", **labels}),
        ]
        res = self._wait(evs, "besok_90", start, ui, pool, "visit.completed", True)
        if res is not None and rnd() < self.treat_share[res[1]]:
            visit, ui = res
            vd = visit // DAY
            dd = vd if rnd() < 0.6 else self.next_work[vd + 1 + int(rnd() * 28)]
            decided = self._at(dd, visit + 300)
            evs.append((decided, "decision.made", pool.ids[ui],
                        {"pathway": "specialist", "kind": "treatment", **labels}))
            self._wait(evs, "atgard_90", decided, ui, pool, "treatment.started", True)
        self._commit(case_id, patient, evs)

    def _bup_case(self, d: int) -> None:
        rnd = self.rng.random
        pool = self.bups
        ui = bisect(pool.cum, rnd())
        start = self._at(d, d * DAY)
        labels = {"sex": "F" if rnd() < 0.49 else "M", "age_band": self._pick(self.age_bup)}
        case_id = self._case_id()
        patient = self._patient()
        evs: list[tuple[int, str, str, dict[str, str]]] = [
            (start, "referral.issued", pool.ids[ui], {"pathway": "bup", **labels}),
        ]
        res = self._wait(evs, "bup_besok_30", start, ui, pool, "visit.completed", False)
        if res is None:
            self._commit(case_id, patient, evs)
            return
        visit, ui = res
        vd = visit // DAY
        r = rnd()

        def decide(after: int, days: int, kind: str) -> int:
            dd = self.next_work[after // DAY + int(rnd() * days)]
            at = self._at(dd, after + 300)
            evs.append((at, "decision.made", pool.ids[ui], {"pathway": "bup", "kind": kind,
                                                            **labels}))
            return at

        if r < 0.04:
            # investigation and treatment decided together: two clocks open at once, kept
            # free of case-wide events (pauses, transfers) that would touch both
            at = decide(visit, 15, "investigation")
            evs.append((at, "decision.made", pool.ids[ui],
                        {"pathway": "bup", "kind": "treatment", **labels}))
            self._wait(evs, "bup_utredning_30", at, ui, pool, "investigation.started", False,
                       plain=True)
            self._wait(evs, "bup_behandling_30", at, ui, pool, "treatment.started", False,
                       plain=True)
        elif r < 0.45:
            at = decide(visit, 15, "investigation")
            res = self._wait(evs, "bup_utredning_30", at, ui, pool, "investigation.started",
                             False)
            if res is not None and rnd() < 0.5:
                started, ui = res
                at = decide(started + 14 * DAY, 45, "treatment")
                self._wait(evs, "bup_behandling_30", at, ui, pool, "treatment.started", False)
        elif r < 0.85:
            at = decide(vd * DAY, 15, "treatment")
            self._wait(evs, "bup_behandling_30", at, ui, pool, "treatment.started", False)
        self._commit(case_id, patient, evs)

    def _pauses(
        self, evs: list[tuple[int, str, str, dict[str, str]]], ind: str, start: int,
        unit: str, within: bool, pauses: bool, plain: bool, fulfil_type: str,
    ) -> tuple[int, int, int, int] | None:
        """A clock's time to fulfilment and its pauses or restart, for the result `within`:
        (days to fulfilment, latest event, day the limit counts from, deadline day), or None
        when the patient chose to wait and the clock ends excluded."""
        rng = self.rng
        rnd = rng.random
        limit = BY_ID[ind].limit_days
        sd = start // DAY
        a, b, over_mean = _WAIT_SHAPE[ind]
        if within:
            eff = min(int(limit * rng.betavariate(a, b) + 0.5), limit)
        else:
            eff = limit + 1 + min(int(rng.expovariate(1 / over_mean)), _MAX_LATE_DAYS)
        clock_day = sd  # day 0 of the clock (moves on a PVV restart)
        extra = 0  # MOV days added to the deadline
        last = start  # the case's latest event so far
        r = rnd() if pauses and not plain else 1.0
        with_ind = rnd() < 0.5
        if r < MOV_RATE and eff >= 2:
            # medical pause: keep clear of the deadline by a day either way, so the result
            # does not depend on how whole paused days are counted
            eff = min(eff, limit - 1) if within else max(eff, limit + 2)
            u = 1 + int(rnd() * (eff - 1))
            extra = 7 + int(rnd() * 50)
            paused = self._at(sd + u, last)
            resumed = self._at(sd + u + extra, paused)
            pause_attrs = {"reason": "medical"}
            resume_attrs: dict[str, str] = {}
            if with_ind:
                pause_attrs["indicator"] = resume_attrs["indicator"] = ind
            evs.append((paused, "wait.paused", unit, pause_attrs))
            evs.append((resumed, "wait.resumed", unit, resume_attrs))
            last = resumed
        elif r < MOV_RATE + PVV_RATE:
            # patient-chosen wait: excluded; most patients later ask to be seen (restart)
            u = int(rnd() * max(eff, 1))
            paused = self._at(sd + u, last)
            pause_attrs = {"reason": "patient_choice"}
            if with_ind:
                pause_attrs["indicator"] = ind
            evs.append((paused, "wait.paused", unit, pause_attrs))
            if rnd() >= 0.7:
                if rnd() < 0.5:  # seen anyway when it suited the patient: stays excluded
                    seen = self._at(self.next_work[sd + u + 30 + int(rnd() * 120)], paused)
                    evs.append((seen, fulfil_type, unit, {}))
                return None
            resumed = self._at(self.next_work[sd + u + 14 + int(rnd() * 100)], paused)
            if resumed > self.y_end:
                return None
            evs.append((resumed, "wait.resumed", unit,
                        {"indicator": ind} if with_ind else {}))
            last = resumed
            clock_day = resumed // DAY
        base_day = clock_day + extra
        return eff, last, base_day, base_day + (limit - 1 if extra else limit)

    def _wait(
        self, evs: list[tuple[int, str, str, dict[str, str]]], ind: str, start: int, ui: int,
        pool: _Pool, fulfil_type: str, pauses: bool, plain: bool = False,
    ) -> tuple[int, int] | None:
        """One 90/30-day clock from `start`: pauses, transfer, cancel or care elsewhere.

        Returns (fulfilment instant, unit index) when the case goes on, None when it ends.
        """
        rng = self.rng
        rnd = rng.random
        limit = BY_ID[ind].limit_days
        sd = start // DAY
        season = self.season[sd + self._season_shift(BY_ID[ind])]
        unit = pool.ids[ui]
        within = self._chance(ind, self.intercept[ind] + pool.perf[ui] + season)
        if (ind, unit) not in self.incidents:
            path = self._pauses(evs, ind, start, unit, within, pauses, plain, fulfil_type)
        else:
            # An incident covers clocks by the deadline they actually have: a pause moves
            # it, a restart sets a new one. That is known only once the pauses are drawn,
            # and they depend on the result; so draw them, and if an incident covers that
            # deadline and sets the other result, draw them again with it.
            mark, state = len(evs), rng.getstate()
            path = self._pauses(evs, ind, start, unit, within, pauses, plain, fulfil_type)
            forced = None if path is None else self._incident(ind, unit, path[3])
            if forced is not None and forced != within:
                del evs[mark:]
                rng.setstate(state)
                within = forced
                path = self._pauses(evs, ind, start, unit, within, pauses, plain,
                                    fulfil_type)
        if path is None:
            return None
        eff, last, base_day, deadline = path
        fd = self._shift(last // DAY, base_day + eff, deadline, within, 0.02)
        if fd > self.last_day + 1:
            return None  # past the extract; intermediate events are already listed
        done = self._at(fd, last)
        if not plain and rnd() < TRANSFER_RATE and pool.alts[ui]:
            to = pool.alts[ui][int(rnd() * len(pool.alts[ui]))]
            moved = last + int((done - last) * rnd())
            evs.append((moved, "case.transferred", unit, {"to_unit_id": pool.ids[to]}))
            ui, unit = to, pool.ids[to]
        if not plain and rnd() < CANCEL_RATE:
            cancelled = last + int((done - last) * rnd())
            evs.append((cancelled, "case.cancelled", unit,
                        {"reason": _CANCEL_REASONS[int(rnd() * len(_CANCEL_REASONS))]}))
            return None
        if not plain and eff >= limit - 10 and rnd() < EXTERNAL_RATE:
            # the Vårdgarantienhet arranges care elsewhere for a case at or past its limit
            if not within:
                fd = self.next_work[deadline + 1 + int(rnd() * 14)]
                done = self._at(fd, last)
            evs.append((done, "care.external", unit, {}))
            return None
        evs.append((done, fulfil_type, unit, {}))
        return done, ui
