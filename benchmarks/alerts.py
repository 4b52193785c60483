"""`make bench-alerts` / `python -m benchmarks alerts`: alert quality over a replayed year.

Generates a year with injected incidents (`generate --incident`), replays it into a
store, exports it (`vardgaranti export openmetrics`), backfills Prometheus with its own
tools (`promtool tsdb create-blocks-from openmetrics`, then `... from rules` for the
recording rules), and evaluates every guarantee alert of the repository's rules over the
year with the real Prometheus (range queries, hourly). `for` and `keep_firing_for` are
applied to the hourly results as Prometheus would; notifications are counted as
Alertmanager sends them under the repository's deploy/alertmanager config (routes,
grouping, repeats, resolved, inhibitions). Runs the generator's seeds SEEDS (or
BENCH_ALERTS_SEEDS) and holds the worst against the aims. Writes
benchmarks/results/alerts.json.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from benchmarks.suite import Context, Figure, StepResult
from consumers.export import daily_series, openmetrics_lines, read_counters, stamp
from dashboards.alerts import (
    BASELINE_WINDOW,
    CHANGE_WINDOW,
    COMPLIANCE_WINDOW,
    REPO_ROOT,
    Alert,
    Record,
    alert_rules,
    recording_rules,
    team_for,
)
from models.indicators import BY_ID
from models.measures import WINDOWS
from tests.support.prometheus import Prometheus, running_prometheus
from vardgaranti.generate import Incident

RESULTS = Path(__file__).parent / "results" / "alerts.json"
SCALE = 0.05  # a modest year: the run stays within ~10 minutes on two cores
HOUR = 3600.0
DAY = 86400.0
# Daily samples: each stays the latest value until the next one (a DST day is 25 h long).
LOOKBACK = "25h"
RETENTION = "20y"
# An incident's effects outlast it: late completions and waits show after its last day.
GRACE_DAYS = 30
# The repository's Alertmanager: its routes and inhibitions set what is sent.
ALERTMANAGER = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
# Alertmanager's own defaults for what a route or webhook leaves out.
AM_DEFAULTS = {"group_by": [], "group_wait": "30s", "group_interval": "5m",
               "repeat_interval": "4h"}
# The generator's seeds the run measures: one by default, so that `make bench-alerts` stays
# near ten minutes; BENCH_ALERTS_SEEDS="1,2,3" shows that the bars hold on years they were
# not set on (the worst seed is what counts), at three times the time.
SEEDS = (1,)
# The breach counter's samples in the export (restamped at the start of their day).
BREACHES_SAMPLE = "vardgaranti_breaches_total{"
# Days of hourly evaluations in one range query.
CHUNK_DAYS = 60
# Seconds one query may take: a year of a record, daily, outlasted 30 s on a machine
# loaded ~15 times its cores.
QUERY_TIMEOUT_S = 600.0
# The first month only builds the baselines (a deployment backfills the year before).
WARM_UP_DAYS = 31
# Aims of the issue.
AIM_DETECTION_DAYS = 2
AIM_MONTHLY_CASES = 20
AIM_NOTIFICATIONS = 1.0
AIM_FIRING_SHARE = 0.20


def incidents(year: int) -> list[Incident]:
    """Collapses of various units and sizes, spread over the year, none in its first
    quarter (the baselines need some history)."""
    spec = [
        ("vc-stadsparken", "samma_dag", "04-08", "04-28", 0.3),
        ("vc-hagaberg", "tre_dagar", "05-06", "05-26", 0.2),
        ("bup-vasteras", "bup_besok_30", "06-03", "06-30", 0.1),
        ("vas-kirurgi", "besok_90", "09-02", "10-06", 0.2),
        ("vc-lindangen", "samma_dag", "10-07", "10-27", 0.4),
        ("bup-koping", "bup_behandling_30", "11-04", "11-24", 0.0),
    ]
    return [Incident(u, i, date.fromisoformat(f"{year}-{a}"), date.fromisoformat(f"{year}-{b}"),
                     r) for u, i, a, b, r in spec]


# --------------------------------------------------------------------------- backfill


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise RuntimeError("promtool not installed (apt-get install prometheus)")
    return path


def run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} …: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def blocks_from_store(store_url: str, first: date, last: date, work: Path,
                      windows: Collection[str] = WINDOWS) -> Path:
    """Export [first, last] (of the rolling windows, `windows` only: fewer samples for
    promtool) and turn it into TSDB blocks under work/data."""
    from consumers.store import Store

    series = daily_series(read_counters(Store(store_url), last), first, last)
    skip = tuple(f'window="{w}"' for w in WINDOWS if w not in windows)
    om = work / "history.om"
    with om.open("w", encoding="utf-8") as out:
        out.writelines(breaches_at_day_start(
            (line for line in openmetrics_lines(series, first, last)
             if not any(s in line for s in skip)), first, last))
    data = blocks_from_openmetrics(om, work)
    om.unlink()
    return data


def day_starts(first: date, last: date) -> dict[str, str]:
    """The end stamp of each local day of [first, last] → the stamp of its start."""
    return {stamp(d): f"{float(stamp(d - 1)) + 0.001:.3f}"
            for d in range(first.toordinal(), last.toordinal() + 1)}


def breaches_at_day_start(lines: Iterable[str], first: date, last: date) -> Iterator[str]:
    """A breach happens at the midnight its deadline passes (models/measures.py) and the live
    view counts it then; the export stamps the day's figure at the day's end, 24 hours
    later. The breach counter moves only at midnight, so its samples are restamped at the
    start of their day: the alerts see a breach when a live worker would show it."""
    starts = day_starts(first, last)
    for line in lines:
        if line.startswith(BREACHES_SAMPLE):
            head, _, end = line.rstrip("\n").rpartition(" ")
            line = f"{head} {starts[end]}\n"
        yield line


def blocks_from_openmetrics(om: Path, work: Path) -> Path:
    data = work / "data"
    run(promtool(), "tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(data))
    return data


def flags() -> list[str]:
    return [f"--storage.tsdb.retention.time={RETENTION}",
            f"--query.lookback-delta={LOOKBACK}"]


def _prometheus() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus not installed (apt-get install prometheus)")
    return binary


def record_lines(prom: Prometheus, first: date, last: date,
                 only: Sequence[Alert] = ()) -> Iterator[str]:
    """The recording rules evaluated by Prometheus once a day over [first, last] (at the
    day's end; those of the breach counter at its start), as OpenMetrics; with `only`,
    just the records (and windows) those alerts read. (`promtool tsdb create-blocks-from
    rules` cannot: it evaluates nothing at an interval longer than its two-hour blocks.)"""
    start, end = float(stamp(first.toordinal())), float(stamp(last.toordinal()))
    read = " ".join(a.expr for a in only)
    windows = set(re.findall(r'window="([^"]+)"', read))
    for rule in recording_rules().rules:
        assert isinstance(rule, Record)
        if only and not re.search(re.escape(rule.record) + r"[{\s]", read + " "):
            continue
        yield f"# TYPE {rule.record} gauge\n"
        # a record of the breach counter is evaluated when its samples are (day starts)
        at = start - DAY + 0.001 if BREACHES_SAMPLE[:-1] in rule.expr else start
        for labels, points in prom.query_range(rule.expr, at, end, DAY):
            if only and labels.get("window", "") not in windows | {""}:
                continue
            sel = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            yield from (f"{rule.record}{{{sel}}} {v:g} {t:.3f}\n" for t, v in points)
    yield "# EOF\n"


def backfill_records(work: Path, first: date, last: date,
                     only: Sequence[Alert] = ()) -> None:
    """Add to work/data (made by `blocks_from_store`) the recording rules (those `only`
    reads, if given) over [first, last], evaluated by Prometheus once a day."""
    records = work / "records.om"
    with running_prometheus(_prometheus(), {}, work, flags()) as prom, \
            records.open("w", encoding="utf-8") as out:
        prom.timeout = QUERY_TIMEOUT_S
        out.writelines(record_lines(prom, first, last, only))
    blocks = work / "record-blocks"
    run(promtool(), "tsdb", "create-blocks-from", "openmetrics", "-q", str(records),
        str(blocks))
    records.unlink()
    for block in blocks.iterdir():
        block.rename(work / "data" / block.name)


@contextmanager
def history_prometheus(work: Path, rule_files: Sequence[Path] = ()) -> Iterator[Prometheus]:
    """A Prometheus on the backfilled work/data."""
    config = {"rule_files": [str(p) for p in rule_files]}
    with running_prometheus(_prometheus(), config, work, flags()) as prom:
        prom.timeout = QUERY_TIMEOUT_S
        yield prom


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Episode:
    alert: str
    labels: dict[str, str]
    start: float  # unix time it started firing
    end: float  # last hour it was firing

    def hours(self) -> int:
        return int((self.end - self.start) // HOUR) + 1


def _duration_s(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]] if text else 0.0


def episodes(rule: Alert, points: list[tuple[float, float]], start: float, end: float,
             step: float) -> list[tuple[float, float]]:
    """(first, last) firing evaluation of each episode of one series, from the evaluations
    where its expression had a value, with `for` and `keep_firing_for` as Prometheus
    applies them."""
    hold, keep = _duration_s(rule.for_), _duration_s(rule.keep_firing_for)
    true = {round((t - start) / step) for t, _ in points}
    out: list[tuple[float, float]] = []
    active = kept = fired = last = None
    for k in range(round((end - start) / step) + 1):
        t = start + k * step
        if k in true:
            active = t if active is None else active
            kept = None
            if fired is None and t - active >= hold:
                fired = t
        elif fired is not None and keep:
            kept = t if kept is None else kept
            if t - kept >= keep:
                out.append((fired, last or fired))
                active = kept = fired = None
        else:
            if fired is not None:
                out.append((fired, last or fired))
            active = kept = fired = None
        if fired is not None:
            last = t
    if fired is not None:
        out.append((fired, last or fired))
    return out


def query_year(prom: Prometheus, expr: str, start: float,
               end: float) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    """An hourly range query over [start, end] in parts of CHUNK_DAYS (a whole year of a
    heavy expression in one query can outlast the client's timeout on a busy machine),
    the points of each series joined."""
    joined: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[tuple[float, float]]]]
    joined = {}
    a = start
    while a <= end:
        b = min(a + CHUNK_DAYS * DAY - HOUR, end)
        for labels, points in prom.query_range(expr, a, b, HOUR):
            joined.setdefault(tuple(sorted(labels.items())), (labels, []))[1].extend(points)
        a = b + HOUR
    return list(joined.values())


def evaluate(prom: Prometheus, rules: Sequence[Alert], start: float,
             end: float) -> list[Episode]:
    found: list[Episode] = []
    for rule in rules:
        for labels, points in query_year(prom, rule.expr, start, end):
            full = {**labels, **rule.labels, "alertname": rule.name}
            found += [Episode(rule.name, full, a, b)
                      for a, b in episodes(rule, points, start, end, HOUR)]
    return found


# --------------------------------------------------------------------------- scoring


def _day(t: float) -> date:
    return date.fromtimestamp(t)


def first_deadline(inc: Incident) -> float:
    """When the first clock the incident can affect passes its deadline: the midnight
    that ends FROM (the generator picks the clocks by deadline day). No breach, no late
    completion and so no signal of the incident can exist before it; detection delays
    are counted from it."""
    return float(stamp(inc.first.toordinal()))


def matches(ep: Episode, inc: Incident) -> bool:
    """A page caused by the incident: same indicator (and unit), started from the first
    affected deadline until GRACE_DAYS after the last. A page already firing before the
    incident could show has another cause, and counts as one outside incidents."""
    lab = ep.labels
    if lab.get("indicator") != inc.indicator:
        return False
    if lab.get("scope") == "unit" and lab.get("unit") != inc.unit:
        return False
    last = stamp(inc.last.toordinal() + GRACE_DAYS)
    return first_deadline(inc) <= ep.start <= float(last)


@dataclass(frozen=True)
class Route:
    """An Alertmanager route of one severity, and whether its receiver sends resolved."""

    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    send_resolved: bool


@dataclass(frozen=True)
class Inhibit:
    source: dict[str, str]
    target: dict[str, str]
    equal: tuple[str, ...]


def _matchers(items: Iterable[str]) -> dict[str, str]:
    """Equality matchers (`name="value"`), the only kind the repository's config uses."""
    out = {}
    for item in items:
        m = re.fullmatch(r'\s*(\w+)\s*=\s*"([^"]*)"\s*', item)
        if m is None:
            raise ValueError(f"not an equality matcher: {item}")
        out[m.group(1)] = m.group(2)
    return out


@dataclass(frozen=True)
class Routes:
    """The repository's Alertmanager routing tree (one level, as it is written)."""

    routes: tuple[tuple[dict[str, str], Route], ...]
    default: Route

    def route(self, labels: dict[str, str]) -> Route:
        """The first route whose matchers the alert's labels meet (Alertmanager's order)."""
        return next((r for m, r in self.routes if _has(labels, m)), self.default)


def alertmanager(path: Path = ALERTMANAGER) -> tuple[Routes, list[Inhibit]]:
    """The routes and the inhibitions, read from the repository's config (a value a route
    leaves out comes from the top route, then Alertmanager's default)."""
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    top = cfg["route"]
    resolved = {r["name"]: all(w.get("send_resolved", True)
                               for w in r.get("webhook_configs", ()))
                for r in cfg["receivers"]}

    def route(r: dict[str, Any]) -> Route:
        def get(key: str) -> Any:
            return r.get(key, top.get(key, AM_DEFAULTS[key]))
        return Route(tuple(get("group_by")), _duration_s(get("group_wait")),
                     _duration_s(get("group_interval")), _duration_s(get("repeat_interval")),
                     resolved[r.get("receiver", top["receiver"])])

    routes = Routes(tuple((_matchers(r["matchers"]), route(r)) for r in top.get("routes", ())),
                    route(top))
    inhibits = [Inhibit(_matchers(i["source_matchers"]), _matchers(i["target_matchers"]),
                        tuple(i.get("equal", ()))) for i in cfg.get("inhibit_rules", ())]
    return routes, inhibits


def _has(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def unmuted(eps: Sequence[Episode], inhibits: Sequence[Inhibit],
            sources: Sequence[Episode] = ()) -> list[Episode]:
    """The episodes (parts of them) Alertmanager lets through: an alert is muted while an
    alert matching an inhibition's source, with the same `equal` labels, fires (`sources`:
    where to look for those; the episodes themselves by default)."""
    out: list[Episode] = []
    for e in eps:
        muted: set[int] = set()
        for rule in inhibits:
            if not _has(e.labels, rule.target):
                continue
            for s in sources or eps:
                if s is not e and _has(s.labels, rule.source) and all(
                        s.labels.get(k, "") == e.labels.get(k, "") for k in rule.equal):
                    muted.update(range(round(s.start / HOUR), round(s.end / HOUR) + 1))
        first = None
        for h in range(round(e.start / HOUR), round(e.end / HOUR) + 2):
            live = h <= round(e.end / HOUR) and h not in muted
            if live and first is None:
                first = h
            elif not live and first is not None:
                out.append(Episode(e.alert, e.labels, first * HOUR, (h - 1) * HOUR))
                first = None
    return out


def group_sends(spans: Sequence[tuple[str, float, float]], route: Route) -> list[float]:
    """When Alertmanager delivers a notification for one group of alerts, each alert firing
    over [start, resolved). As its dispatcher does: a group forms at its first alert and
    flushes group_wait later, then every group_interval; a flush notifies when an alert is
    firing that the last notification did not carry, or (send_resolved) one resolved since,
    or repeat_interval has passed since it; a group whose alerts all resolved notifies
    once more (delivered only with send_resolved) and ends."""
    sends: list[float] = []
    notified: frozenset[str] | None = None  # firing alerts of the last notification
    told_resolved: frozenset[str] = frozenset()
    last = -math.inf
    cursor = -math.inf
    while True:
        t0 = min((a for _, a, _ in spans if a > cursor), default=None)
        if t0 is None:
            return sends
        tick, prev = t0 + route.group_wait, t0
        while True:
            firing = frozenset(i for i, a, b in spans if a <= tick < b)
            resolved = frozenset(i for i, a, b in spans if prev < b <= tick)
            if notified is None:
                update = bool(firing)
            elif not firing <= notified:
                update = True
            elif not firing:
                update = bool(notified)
            elif route.send_resolved and not resolved <= told_resolved:
                update = True
            else:
                update = tick - last >= route.repeat_interval
            if update:
                if firing or (route.send_resolved and resolved):
                    sends.append(tick)
                notified, told_resolved, last = firing, resolved, tick
            if not firing:
                cursor = tick
                break
            # the next flush where something can change: an alert starts or resolves, or
            # the repeat interval runs out
            nxt = min([a for _, a, _ in spans if a > tick] + [b for _, _, b in spans if b > tick]
                      + [last + route.repeat_interval])
            prev = tick
            tick += max(1, math.ceil((nxt - tick) / route.group_interval)) * route.group_interval


def notifications(eps: Sequence[Episode], routes: Routes,
                  inhibits: Sequence[Inhibit] = (), sources: Sequence[Episode] = ()) -> int:
    """What Alertmanager delivers for these episodes: muted by the inhibitions (sources:
    the alerts that can mute them), grouped by their route, each group's notifications as
    `group_sends` counts them."""
    groups: dict[tuple[int, tuple[str, ...]], tuple[Route, list[tuple[str, float, float]]]]
    groups = {}
    for e in unmuted(eps, inhibits, sources):
        route = routes.route(e.labels)
        key = (id(route), tuple(e.labels.get(k, "") for k in route.group_by))
        ident = json.dumps(sorted(e.labels.items()))
        groups.setdefault(key, (route, []))[1].append((ident, e.start, e.end + HOUR))
    return sum(len(group_sends(spans, route)) for route, spans in groups.values())


def monthly_cases(store_url: str, inc: Incident) -> float:
    """The unit's completed clocks of the indicator per month before the incident."""
    from sqlalchemy import func, select

    from consumers.store import COUNTS, Store

    c = COUNTS.c
    lo = date.fromordinal(inc.first.toordinal() - 90)
    q = select(func.coalesce(func.sum(c.count), 0)).where(
        c.indicator == inc.indicator, c.unit_id == inc.unit, c.measure == "completed",
        c.day >= lo, c.day < inc.first)
    with Store(store_url).engine.connect() as conn:
        return float(conn.execute(q).scalar() or 0) / 3


def clock_outcomes(store_url: str, inc: Incident) -> dict[str, Any]:
    """Is the injected incident a collapse, as the store sees it? The unit's clocks of the
    indicator due during the incident, in the 90 days before, and on the first two
    deadline days (what any rule can see within 2 days of the first affected deadline):
    how many, how many late (completed after the deadline or still open past it)."""
    from sqlalchemy import and_, case, func, or_, select

    from consumers.store import Store
    from models.tables import ClockRow

    c = ClockRow.__table__.c  # type: ignore[attr-defined]
    late = or_(c.within.is_(False), and_(c.state == "open", c.deadline < date(inc.last.year,
                                                                              12, 31)))
    counted = or_(c.state == "fulfilled", c.state == "open")

    def due(lo: date, hi: date) -> tuple[int, int]:
        q = select(func.count(), func.coalesce(func.sum(case((late, 1), else_=0)), 0)).where(
            c.unit_id == inc.unit, c.indicator == inc.indicator, counted,
            c.deadline >= lo, c.deadline <= hi)
        with Store(store_url).engine.connect() as conn:
            n, k = conn.execute(q).one()
        return int(n), int(k)

    first = inc.first.toordinal()
    n0, k0 = due(date.fromordinal(first - 90), date.fromordinal(first - 1))
    n1, k1 = due(inc.first, inc.last)
    n2, k2 = due(inc.first, date.fromordinal(first + 1))
    share = k0 / n0 if n0 else 0.0
    return {
        "clocks_due_per_month_before": round(n0 / 3, 1),
        "late_share_before": round(share, 3),
        "clocks_due_during": n1, "late_share_during": round(k1 / n1, 3) if n1 else None,
        "first_2_days_due": n2, "first_2_days_late": k2,
        "first_2_days_late_expected": round(n2 * share, 1),
    }


def score(eps: list[Episode], incs: list[Incident], store_url: str,
          year_hours: int) -> dict[str, Any]:
    pages = [e for e in eps if e.labels["severity"] == "page"]
    rows: list[dict[str, Any]] = []
    for inc in incs:
        hit = [e for e in pages if matches(e, inc) and e.labels.get("scope") == "unit"]
        first = min((e.start for e in hit), default=None)
        delay = None if first is None else round((first - first_deadline(inc)) / DAY, 2)
        rows.append({
            "unit": inc.unit, "indicator": inc.indicator, "from": inc.first.isoformat(),
            "to": inc.last.isoformat(), "rate": inc.rate,
            "cases_per_month": round(monthly_cases(store_url, inc), 1),
            "alerted": first is not None, "detection_days": delay,
            # the measure of earlier runs: from the start of FROM, a day earlier
            "detection_days_from_first_day": None if delay is None else round(delay + 1, 2),
            "alerts": sorted({e.alert for e in hit}),
            **clock_outcomes(store_url, inc),
        })
    unmatched = [e for e in pages if not any(matches(e, i) for i in incs)]
    weeks = year_hours / (7 * 24)
    teams = sorted({e.labels["team"] for e in eps}
                   | {team_for(BY_ID[i.indicator]) for i in incs})
    routes, inhibits = alertmanager()

    def per_week(some: list[Episode]) -> float:
        return round(notifications(some, routes, inhibits, eps) / weeks, 2)

    per_team = {t: per_week([e for e in unmatched if e.labels["team"] == t]) for t in teams}
    all_pages = {t: per_week([e for e in pages if e.labels["team"] == t]) for t in teams}
    reports = {t: per_week([e for e in eps if e.labels["severity"] == "report"
                            and e.labels["team"] == t]) for t in teams}
    firing: dict[str, set[int]] = {}
    for e in eps:
        key = f"{e.alert}/{e.labels.get('indicator', '')}"
        hours = firing.setdefault(key, set())
        hours.update(range(int(e.start // HOUR), int(e.end // HOUR) + 1))
    shares = {k: round(len(v) / year_hours, 4) for k, v in sorted(firing.items())}
    big = [r for r in rows if r["cases_per_month"] >= AIM_MONTHLY_CASES]
    return {
        "incidents": rows,
        "incidents_total": len(rows),
        "incidents_alerted": sum(r["alerted"] for r in rows),
        "incidents_aimed": len(big),
        "incidents_aimed_within_aim": sum(
            r["alerted"] and r["detection_days"] <= AIM_DETECTION_DAYS for r in big),
        "max_detection_days": max((r["detection_days"] for r in rows if r["alerted"]),
                                  default=None),
        "unmatched_pages": [
            {"alert": e.alert, "indicator": e.labels.get("indicator"),
             "unit": e.labels.get("unit"), "from": _day(e.start).isoformat(),
             "hours": e.hours()} for e in unmatched],
        "notifications_per_team_week_by_team": per_team,
        "notifications_per_team_week": max(per_team.values(), default=0.0),
        "pages_per_team_week_with_incidents": all_pages,
        "report_digests_per_team_week": reports,
        "firing_share_by_rule": shares,
        "max_firing_share": max(shares.values(), default=0.0),
    }


# --------------------------------------------------------------------------- the step


def prepare(work: Path, year: int, seed: int, incs: Sequence[Incident],
            rules: Sequence[Alert]) -> str:
    """The generated year (of `seed`) with its incidents, replayed into a store (its URL)
    and backfilled into work/data."""
    from consumers.replay import Pipeline, replay
    from consumers.store import Store
    from models.settings import Settings
    from vardgaranti.generate import generate

    first, last = date(year, 1, 1), date(year, 12, 31)
    log = work / "year.jsonl.gz"
    generate(log, year, seed=seed, scale=SCALE, progress=False, incidents=incs)
    url = f"sqlite:///{work / 'store.db'}"
    store = Store(url)
    settings = Settings()
    replay([log], store, Pipeline.restore(store, settings.rules(),
                                          settings.allowed_lateness_us))
    blocks_from_store(url, first, last, work, {CHANGE_WINDOW, BASELINE_WINDOW,
                                               COMPLIANCE_WINDOW})
    backfill_records(work, first, last, rules)
    return url


def measure(work: Path, url: str, year: int, incs: list[Incident],
            rules: Sequence[Alert]) -> dict[str, Any]:
    start = float(stamp(date(year, 1, 1).toordinal() + WARM_UP_DAYS))
    end = float(stamp(date(year, 12, 31).toordinal()))
    with history_prometheus(work) as prom:
        eps = evaluate(prom, rules, start, end)
    result = score(eps, incs, url, int((end - start) // HOUR) + 1)
    result.update({"year": year, "scale": SCALE, "rules_evaluated": len(rules),
                   "warm_up_days": WARM_UP_DAYS})
    return result


def guarantee_alerts() -> list[Alert]:
    """The alerts a replayed history can be judged on (not the pipeline's, not the
    worklist's: those read a live flow)."""
    return [a for a in alert_rules() if a.labels["kind"] not in ("pipeline", "worklist")]


def seeds() -> tuple[int, ...]:
    text = os.environ.get("BENCH_ALERTS_SEEDS", "")
    return tuple(int(x) for x in text.split(",") if x.strip()) or SEEDS


def worst(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures held against the aims, over every seed: counts summed, the rest the
    worst seed's; each seed's whole result under `seeds`."""
    dets = [r["max_detection_days"] for r in runs if r["max_detection_days"] is not None]
    by_team: dict[str, float] = {}
    for r in runs:
        for team, n in r["notifications_per_team_week_by_team"].items():
            by_team[team] = max(by_team.get(team, 0.0), n)
    return {
        "year": runs[0]["year"], "scale": runs[0]["scale"],
        "seeds": [r["seed"] for r in runs],
        **{k: sum(r[k] for r in runs) for k in (
            "incidents_total", "incidents_alerted", "incidents_aimed",
            "incidents_aimed_within_aim")},
        "max_detection_days": max(dets, default=None),
        "notifications_per_team_week_by_team": by_team,
        "notifications_per_team_week": max(by_team.values(), default=0.0),
        "max_firing_share": max(r["max_firing_share"] for r in runs),
        "runs": runs,
    }


def step(ctx: Context) -> StepResult:
    incs, rules = incidents(ctx.year), guarantee_alerts()
    runs = []
    for seed in seeds():
        with tempfile.TemporaryDirectory(prefix="bench-alerts-", dir=ctx.work) as tmp:
            url = prepare(Path(tmp), ctx.year, seed, incs, rules)
            run_ = measure(Path(tmp), url, ctx.year, incs, rules)
        run_["seed"] = seed
        _print(run_)
        runs.append(run_)
    result = worst(runs)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    _print_worst(result)
    det = result["max_detection_days"]
    n = len(runs)
    return StepResult(figures=[
        Figure(f"incidents alerted ({n} seeds)", result["incidents_alerted"], "incidents",
               f"all {result['incidents_total']}",
               result["incidents_alerted"] == result["incidents_total"]),
        Figure(f"incidents of units ≥ 20 cases/month alerted within 2 days ({n} seeds)",
               result["incidents_aimed_within_aim"], "incidents",
               f"all {result['incidents_aimed']}",
               result["incidents_aimed_within_aim"] == result["incidents_aimed"]),
        Figure("max detection delay (worst seed)", det if det is not None else -1, "days",
               f"≤ {AIM_DETECTION_DAYS}", det is not None and det <= AIM_DETECTION_DAYS),
        Figure("notifications per team and week outside incidents (worst team and seed)",
               result["notifications_per_team_week"], "per week",
               f"< {AIM_NOTIFICATIONS:g}",
               result["notifications_per_team_week"] < AIM_NOTIFICATIONS),
        Figure("largest share of the year a rule fires (worst seed)",
               result["max_firing_share"], "share",
               f"≤ {AIM_FIRING_SHARE:g}", result["max_firing_share"] <= AIM_FIRING_SHARE),
    ], data=result)


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"injected incidents ({result['year']}, seed {result['seed']}, "
                        f"scale {result['scale']:g})",
                  title_justify="left")
    for col in ("unit", "indicator", "from", "to", "rate", "cases/month", "late before",
                "late during", "2 days: late/exp.", "alerted", "days", "alerts"):
        table.add_column(col)
    for r in result["incidents"]:
        during = "–" if r["late_share_during"] is None else f"{r['late_share_during']:g}"
        table.add_row(r["unit"], r["indicator"], r["from"], r["to"], f"{r['rate']:g}",
                      f"{r['cases_per_month']:g}", f"{r['late_share_before']:g}", during,
                      f"{r['first_2_days_late']}/{r['first_2_days_due']} "
                      f"({r['first_2_days_late_expected']:g})",
                      "yes" if r["alerted"] else "no",
                      "–" if r["detection_days"] is None else f"{r['detection_days']:g}",
                      ", ".join(r["alerts"]))
    console = Console(width=160)
    console.print(table)
    console.print("days: from the first affected deadline (the midnight ending FROM); "
                  "2 days: clocks due on FROM and the day after, late of them (expected "
                  "at the unit's earlier late share)")
    console.print(f"notifications outside incidents per team and week: "
                  f"{result['notifications_per_team_week_by_team']}")
    console.print(f"weekly report digests per team and week: "
                  f"{result['report_digests_per_team_week']}")
    console.print(f"pages that matched no incident: {len(result['unmatched_pages'])}")
    top = sorted(result["firing_share_by_rule"].items(), key=lambda kv: -kv[1])[:5]
    console.print(f"largest firing shares: {dict(top)}")


def _print_worst(result: dict[str, Any]) -> None:
    from rich.console import Console

    Console(width=160).print(
        f"over seeds {result['seeds']}: {result['incidents_aimed_within_aim']} of "
        f"{result['incidents_aimed']} incidents at units with ≥ {AIM_MONTHLY_CASES} cases a "
        f"month alerted within {AIM_DETECTION_DAYS} days, {result['incidents_alerted']} of "
        f"{result['incidents_total']} alerted; notifications outside incidents per team and "
        f"week, worst seed: {result['notifications_per_team_week_by_team']}; largest firing "
        f"share {result['max_firing_share']:g}")
