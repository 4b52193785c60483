"""Prometheus recording and alerting rules, generated from the indicator table.

`python -m dashboards.alerts` writes `deploy/prometheus/rules/vardgaranti.rules.yml` and the
`promtool test rules` files under `deploy/prometheus/tests/` (see dashboards/alert_tests.py).
Thresholds that are indicator facts come from `models.indicators` only; the knobs that
belong to alerting itself are the constants below. Why the rules look like this (page on
change, report on state, worklist as a daily digest): docs/alerts.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import yaml

from models.indicators import INDICATORS, Indicator

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
RULES_PATH: Final = REPO_ROOT / "deploy" / "prometheus" / "rules" / "vardgaranti.rules.yml"
TESTS_DIR: Final = REPO_ROOT / "deploy" / "prometheus" / "tests"
RUNBOOKS_DIR: Final = REPO_ROOT / "docs" / "runbooks"
DASHBOARDS_DIR: Final = REPO_ROOT / "dashboards"

# Where staff open the links of a notification (regenerate with --grafana-url/--runbook-url
# for a region's own hosts). The defaults are the compose stack's Grafana and the runbooks'
# place in the repository.
GRAFANA_URL: Final = "http://localhost:3000"
RUNBOOK_URL: Final = "docs/runbooks"

# A ratio over fewer cases than this is neither alerted on nor shown (small-cell rule, the
# national site hides cells under 20). The dashboards' `min_cases` default reads it too.
MIN_CASES: Final = 20
# The standing level, judged in the weekly report (a calendar month is noisy at its start).
COMPLIANCE_WINDOW: Final = "30d"
# "Far below": this many ratio points under the lower of the target and last year's result
# (the dashboards' red threshold).
FAR_BELOW_MARGIN: Final = 0.10
# One bar for every count test of the change pages, in every team: a count must lie this
# many standard deviations above its expected count on Anscombe's square-root scale, where
# a Poisson count is nearly normal even for small means (count_bar). Expected counts come
# from each unit's own history, so the bar is per unit in counts: where 0 is expected, 5;
# 1: 7; 14: 28. It holds every team under 0.5 notifications a week outside incidents on
# three generated years (the quality run, docs/alerts.md); recheck on the region's own
# history.
COUNT_Z: Final = 3.0
# Page on change: the clocks completed after the deadline in the last CHANGE_WINDOW, a
# count, against the count the BASELINE_WINDOW before it makes expected (the unit's own
# earlier share times what it completed now). The count must pass COUNT_Z, be at least
# CHANGE_MIN_LATE, and the share be up by CHANGE_MARGIN points (a large unit is not paged
# for a small drift that is significant only through its volume). A unit with 50 cases a
# month pages on a handful of late completions, one with 350 needs tens.
CHANGE_WINDOW: Final = "7d"
BASELINE_WINDOW: Final = "90d"
CHANGE_MARGIN: Final = 0.10
CHANGE_MIN_LATE: Final = 5
# A burst of new breaches: those of the last BURST_DAYS against the BURST_BASELINE_DAYS
# before them. A count test, not a rate (a unit with 20 cases a month expects well under one
# breach in two days): the count must pass COUNT_Z and be at least MIN_BURST. The expected
# count grows with the rest of the region only when that growth is beyond chance
# (REGION_GROWTH_Z), so the unit's own burst and the noise of the other units do not raise
# the bar. The baseline is 8 weeks: 4 weeks made the expected count noisy enough at small
# units to page on chance (the quality run, docs/alerts.md).
BURST_DAYS: Final = 2
BURST_BASELINE_DAYS: Final = 56
MIN_BURST: Final = 3
REGION_GROWTH_Z: Final = 3.0
ANSCOMBE: Final = 0.375
# The weekly report compares each COMPLIANCE_WINDOW with the same days a year earlier
# (52 weeks: the same weekdays, which set the volumes): worse by LAST_YEAR_MARGIN points and
# by more than LAST_YEAR_Z standard errors of last year's share, over at least MIN_CASES
# completed in both periods. Silent until a year of history exists.
LAST_YEAR_OFFSET: Final = "52w"
LAST_YEAR_MARGIN: Final = 0.10
LAST_YEAR_Z: Final = 3.0
# Waiting over the limit, region-wide, up by MIN_CASES clocks and this factor in a week.
WAITING_RISE_DAYS: Final = 7
WAITING_RISE_FACTOR: Final = 1.10
# Hysteresis of the change pages: once firing, stay so this long after the condition ends
# (one notification per episode, not one per wobble), and hold this long before firing
# (a worker restart that briefly shows partial sums does not page).
KEEP_FIRING: Final = "2d"
CHANGE_FOR: Final = "30m"
# Reports fire in one hour of the week (UTC, day_of_week 1 = Monday: 07-08 or 08-09 in
# Stockholm), so Alertmanager sends one digest per team and week.
REPORT_WEEKDAY: Final = 1
REPORT_HOUR_UTC: Final = 6
# The worklist: new breaches of the last BREACH_LOOKBACK; Alertmanager sends one
# notification per unit and day.
BREACH_LOOKBACK: Final = "1h"
# Pipeline health.
NO_EVENTS_MINUTES: Final = 30
WATERMARK_STALL_MINUTES: Final = 60
DEAD_LETTER_RATIO: Final = 0.05
CONSUMER_LAG_MESSAGES: Final = 10_000

JOB: Final = "vardgaranti"
PIPELINE_TEAM: Final = "drift"
WORKLIST_TEAM: Final = "vardgarantienhet"
SEVERITIES: Final = ("page", "ticket", "report", "worklist")

HEADER: Final = (
    "# GENERATED by dashboards/alerts.py from models/indicators.py - do not edit.\n"
    "# Regenerate with: python -m dashboards.alerts\n"
)

# Template fragments Prometheus expands when an alert fires. Shares in Swedish: "34,5 %".
T_VALUE: Final = "{{ $value }}"
T_PERCENT: Final = (
    '{{ $value | humanizePercentage | reReplaceAll "[.]" "," | reReplaceAll "%" " %" }}'
)
T_UNIT: Final = "{{ $labels.unit }}"
T_INSTANCE: Final = "{{ $labels.instance }}"
T_TOPIC: Final = "{{ $labels.topic }}"

# --------------------------------------------------------------------------- helpers


def _num(x: float) -> str:
    """A threshold as PromQL literal: shortest form, no float noise."""
    return format(round(x, 6), "g")


def _pct(x: float) -> str:
    """A share in Swedish notation."""
    return f"{round(x * 100, 2):g} %".replace(".", ",")


def _slug(text: str) -> str:
    table = str.maketrans({"å": "a", "ä": "a", "ö": "o", " ": "-", "/": "-"})
    return text.lower().translate(table)


def team_for(ind: Indicator) -> str:
    """The team owning an indicator's compliance: its care level, as a label value."""
    return _slug(ind.care_level)


def far_threshold(ind: Indicator) -> float:
    """The ratio the dashboards paint red below (see FAR_BELOW_MARGIN)."""
    return round(max(0.0, min(ind.target, ind.result_2023) - FAR_BELOW_MARGIN), 4)


def _limit_sv(ind: Indicator) -> str:
    return "samma dag" if ind.limit_days == 0 else f"{ind.limit_days} dagar"


def selector(**labels: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def days(duration: str) -> int:
    """Whole days of a Prometheus duration written in days ("7d")."""
    assert duration.endswith("d"), duration
    return int(duration[:-1])


# --------------------------------------------------------------------------- rule model


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    keep_firing_for: str = ""

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            d["for"] = self.for_
        if self.keep_firing_for:
            d["keep_firing_for"] = self.keep_firing_for
        d["labels"] = dict(sorted(self.labels.items()))
        d["annotations"] = dict(sorted(self.annotations.items()))
        return d


@dataclass(frozen=True)
class Record:
    record: str
    expr: str

    def as_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class Group:
    name: str
    rules: Sequence[Alert | Record] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [r.as_dict() for r in self.rules]}


# --------------------------------------------------------------------------- recording rules
# Every record reads the app's metrics only (never another record), so
# `promtool tsdb create-blocks-from rules` backfills all of them in one pass.

R_WITHIN: Final = "vardgaranti:completed_within:window"
R_COMPLETED: Final = "vardgaranti:completed:window"
R_RATIO: Final = "vardgaranti:completed_ratio:window"
R_AT_RISK: Final = "vardgaranti:at_risk:unit"
R_BREACHES: Final = "vardgaranti:breaches"
REGION: Final = ":region"
UNIT: Final = ":unit"
LEVELS: Final = ((UNIT, "indicator, unit"), (REGION, "indicator"))


def r_over_share(window: str, level: str) -> str:
    return f"vardgaranti:over_share_{window}{level}"


def r_completed(window: str, level: str) -> str:
    return f"vardgaranti:completed_{window}{level}"


def _sum(by: str, metric: str, sel: str = "") -> str:
    return f"sum by ({by}) ({metric}{sel})"


def recording_rules() -> Group:
    """Counts summed across workers, and ratios guarded against a zero denominator.

    `x / (d > 0)` drops the series when the denominator is 0: no value (null), never 0, 1,
    NaN or +Inf (docs/rules.md#matten).
    """
    within, over = "vardgaranti_completed_within", "vardgaranti_completed_over"
    rules: list[Record] = []
    for by, suffix in (("indicator, unit, window", ""), ("indicator, window", REGION)):
        done = f"{_sum(by, within)}\n+ {_sum(by, over)}"
        rules += [
            Record(R_WITHIN + suffix, _sum(by, within)),
            Record(R_COMPLETED + suffix, done),
            Record(R_RATIO + suffix, f"{_sum(by, within)}\n/ ({done} > 0)"),
        ]
    for level, by in LEVELS:
        w, o = _sum(by, "vardgaranti_waiting"), _sum(by, "vardgaranti_waiting_over_limit")
        rules += [
            Record(f"vardgaranti:waiting{level}", w),
            Record(f"vardgaranti:waiting_over_limit{level}", o),
            Record(f"vardgaranti:waiting_ratio{level}", f"({w} - {o})\n/ ({w} > 0)"),
            Record(f"vardgaranti:at_risk{level}", _sum(by, "vardgaranti_at_risk")),
            Record(R_BREACHES + level, _sum(by, "vardgaranti_breaches_total")),
        ]
        for window in (CHANGE_WINDOW, BASELINE_WINDOW):
            sel = selector(window=window)
            done = f"{_sum(by, within, sel)}\n+ {_sum(by, over, sel)}"
            rules += [
                Record(r_completed(window, level), done),
                Record(r_over_share(window, level), f"{_sum(by, over, sel)}\n/ ({done} > 0)"),
            ]
    return Group("vardgaranti.recording", tuple(rules))


# --------------------------------------------------------------------------- links


@cache
def dashboard_uid(file_name: str) -> str:
    """The uid of a generated dashboard (dashboards/*.json), for links into Grafana."""
    board = json.loads((DASHBOARDS_DIR / file_name).read_text(encoding="utf-8"))
    return str(board["uid"])


@dataclass(frozen=True)
class Links:
    grafana: str = GRAFANA_URL
    runbooks: str = RUNBOOK_URL

    def runbook(self, alert: str) -> str:
        return f"{self.runbooks}/{alert}.md"

    def dashboard(self, file_name: str, **variables: str) -> str:
        query = "&".join(f"var-{k}={v}" for k, v in variables.items())
        return f"{self.grafana}/d/{dashboard_uid(file_name)}" + (f"?{query}" if query else "")


DEFAULT_LINKS: Final = Links()
UNIT_BOARD: Final = "vardgaranti-unit.json"
REGION_BOARD: Final = "vardgaranti-overview.json"
WORKLIST_BOARD: Final = "vardgaranti-worklist.json"
PIPELINE_BOARD: Final = "vardgaranti-pipeline.json"


# --------------------------------------------------------------------------- alert texts
# (summary, description) in Swedish; `value` and `unit` are the Prometheus template
# fragments in the rules and their expansions in the promtool tests.

Texts = tuple[str, str]


def texts_unit_worse(ind: Indicator, value: str, unit: str) -> Texts:
    return (
        f"{ind.name_sv}: {unit} har blivit tydligt sämre",
        f"På {unit} blev {value} av de ärenden som avslutades de senaste "
        f"{days(CHANGE_WINDOW)} dagarna klara efter tidsgränsen ({_limit_sv(ind)}). Det är "
        f"minst {round(CHANGE_MARGIN * 100):g} procentenheter mer än enhetens egen nivå de "
        f"{days(BASELINE_WINDOW)} dagarna före, och mer än slumpen förklarar.",
    )


def texts_region_worse(ind: Indicator, value: str) -> Texts:
    return (
        f"{ind.name_sv}: regionen har blivit tydligt sämre",
        f"I hela regionen blev {value} av de ärenden som avslutades de senaste "
        f"{days(CHANGE_WINDOW)} dagarna klara efter tidsgränsen ({_limit_sv(ind)}), minst "
        f"{round(CHANGE_MARGIN * 100):g} procentenheter mer än de {days(BASELINE_WINDOW)} "
        "dagarna före.",
    )


def texts_breach_burst(ind: Indicator, value: str, unit: str) -> Texts:
    return (
        f"{ind.name_sv}: många nya överskridanden på {unit}",
        f"{value} ärenden på {unit} passerade tidsgränsen ({_limit_sv(ind)}) de senaste "
        f"{BURST_DAYS} dygnen, långt fler än enhetens vanliga antal de "
        f"{BURST_BASELINE_DAYS} dygnen före.",
    )


def texts_waiting_rising(ind: Indicator, value: str) -> Texts:
    return (
        f"{ind.name_sv}: fler väntar längre än vårdgarantin",
        f"I hela regionen väntar {value} fler patienter längre än tidsgränsen "
        f"({_limit_sv(ind)}) än för {WAITING_RISE_DAYS} dagar sedan.",
    )


def texts_below_target(ind: Indicator, value: str) -> Texts:
    return (
        f"Veckorapport {ind.name_sv}: regionen under målnivån",
        f"I hela regionen blev {value} av ärendena de senaste {days(COMPLIANCE_WINDOW)} "
        f"dagarna klara inom tidsgränsen ({_limit_sv(ind)}); målnivån är {_pct(ind.target)} "
        f"(2023: {_pct(ind.result_2023)}).",
    )


def texts_unit_below(ind: Indicator, value: str, unit: str) -> Texts:
    return (
        f"Veckorapport {ind.name_sv}: {unit} under målnivån",
        f"På {unit} blev {value} av ärendena de senaste {days(COMPLIANCE_WINDOW)} dagarna "
        f"klara inom tidsgränsen ({_limit_sv(ind)}); målnivån är {_pct(ind.target)}.",
    )


def _last_year_sv() -> str:
    return (f"samma {days(COMPLIANCE_WINDOW)} dagar ett år tidigare "
            f"({LAST_YEAR_OFFSET[:-1]} veckor sedan, samma veckodagar)")


def texts_below_last_year(ind: Indicator, value: str) -> Texts:
    return (
        f"Veckorapport {ind.name_sv}: regionen sämre än för ett år sedan",
        f"I hela regionen blev {value} av ärendena de senaste {days(COMPLIANCE_WINDOW)} "
        f"dagarna klara inom tidsgränsen ({_limit_sv(ind)}), minst "
        f"{round(LAST_YEAR_MARGIN * 100):g} procentenheter färre än {_last_year_sv()}.",
    )


def texts_unit_below_last_year(ind: Indicator, value: str, unit: str) -> Texts:
    return (
        f"Veckorapport {ind.name_sv}: {unit} sämre än för ett år sedan",
        f"På {unit} blev {value} av ärendena de senaste {days(COMPLIANCE_WINDOW)} dagarna "
        f"klara inom tidsgränsen ({_limit_sv(ind)}), minst "
        f"{round(LAST_YEAR_MARGIN * 100):g} procentenheter färre än {_last_year_sv()}.",
    )


def texts_at_risk(ind: Indicator, value: str, unit: str) -> Texts:
    return (
        f"Arbetslista {unit}: {ind.name_sv}, ärenden nära tidsgränsen",
        f"{value} öppna ärenden på {unit} har högst {ind.at_risk_days} dagar kvar till "
        f"tidsgränsen ({_limit_sv(ind)}).",
    )


def texts_breaches(ind: Indicator, unit: str) -> Texts:
    return (
        f"Arbetslista {unit}: {ind.name_sv}, nya överskridanden",
        f"Öppna ärenden på {unit} passerade tidsgränsen ({_limit_sv(ind)}) den senaste "
        "timmen. Patienterna har nu rätt att erbjudas vård hos en annan vårdgivare.",
    )


PIPELINE_TEXTS: Final[dict[str, Texts]] = {
    "VardgarantiWorkerDown": (
        "En vårdgarantiarbetare svarar inte",
        f"Prometheus når inte {T_INSTANCE}; dess ärenden och siffror saknas i alla summor.",
    ),
    "VardgarantiNoEventsProcessed": (
        "Inga händelser behandlas",
        f"Inga händelser har behandlats på {NO_EVENTS_MINUTES} minuter.",
    ),
    "VardgarantiWatermarkStalled": (
        "Vattenstämpeln står still",
        f"{T_INSTANCE} behandlar händelser men vattenstämpeln har inte rört sig på "
        f"{WATERMARK_STALL_MINUTES} minuter; tidsgränser och fönster flyttas inte fram.",
    ),
    "VardgarantiDeadLetterRateHigh": (
        "Många händelser avvisas",
        f"{T_PERCENT} av de inkommande händelserna avvisades de senaste 15 minuterna "
        f"(gräns {_pct(DEAD_LETTER_RATIO)}).",
    ),
    "VardgarantiConsumerLagHigh": (
        f"Hög konsumentfördröjning på {T_TOPIC}",
        f"{T_VALUE} meddelanden på {T_TOPIC} väntar på att behandlas "
        f"(gräns {CONSUMER_LAG_MESSAGES}).",
    ),
}


# --------------------------------------------------------------------------- alert rules


def _labels(severity: str, team: str, scope: str, kind: str, **more: str) -> dict[str, str]:
    return {"severity": severity, "team": team, "scope": scope, "kind": kind, **more}


def alert_annotations(alert: str, texts: Texts, links: Links, board: str,
                **variables: str) -> dict[str, str]:
    return {
        "summary": texts[0], "description": texts[1],
        "runbook_url": links.runbook(alert),
        "dashboard_url": links.dashboard(board, **variables),
    }


def _rest_share(ind: Indicator, window: str, offset: str = "") -> str:
    """The over-limit share of the rest of the region, without the unit itself (per unit):
    a unit's own collapse must not raise the level it is compared with."""
    sel = selector(indicator=ind.id) + (f" offset {offset}" if offset else "")
    over, done = (f"({r_over_share(window, lv)}{sel} * {r_completed(window, lv)}{sel})"
                  for lv in (REGION, UNIT))
    rest_done = (f"({r_completed(window, REGION)}{sel}\n  - on (indicator) group_right ()"
                 f" {r_completed(window, UNIT)}{sel})")
    return (f"({over}\n  - on (indicator) group_right () {done})\n"
            f"/ ({rest_done} > 0)")


def _change(ind: Indicator, level: str) -> tuple[str, str]:
    """The recent over-limit share and the level it is compared with (for a unit: its own
    earlier share plus the worsening of the rest of the region, so that a change common to
    every unit, a holiday or the summer, does not page each of them)."""
    sel = selector(indicator=ind.id)
    now = r_over_share(CHANGE_WINDOW, level) + sel
    before = f"{r_over_share(BASELINE_WINDOW, level)}{sel} offset {CHANGE_WINDOW}"
    if level == REGION:
        return now, before
    common = (f"clamp_min({_rest_share(ind, CHANGE_WINDOW)}\n"
              f"- {_rest_share(ind, BASELINE_WINDOW, CHANGE_WINDOW)}, 0)")
    return now, f"({before}\n  + {common})"


def count_bar(expected: str, z: float) -> str:
    """The count `z` standard deviations above an expected count, on Anscombe's
    square-root scale (where a Poisson count is nearly normal even for small means)."""
    a = _num(ANSCOMBE)
    return f"(sqrt({expected} + {a})\n  + {_num(z / 2)}) ^ 2 - {a}"


def worse_expr(ind: Indicator, level: str) -> str:
    """The recent over-limit share, where the late completions behind it are clearly more
    than its earlier level makes expected."""
    now, level_before = _change(ind, level)
    done = r_completed(CHANGE_WINDOW, level) + selector(indicator=ind.id)
    late, expected = f"({now} * {done})", f"({level_before} * {done})"
    return (
        f"{now}\n> {level_before} + {_num(CHANGE_MARGIN)}\n"
        f"and\n{late} >= {CHANGE_MIN_LATE}\n"
        f"and\n{late}\n> {count_bar(expected, COUNT_Z)}"
    )


def _breaches(level: str, ind: Indicator) -> tuple[str, str]:
    """New breaches of the last BURST_DAYS, and the count usual before them."""
    b = R_BREACHES + level + selector(indicator=ind.id)
    recent = f"({b} - {b} offset {BURST_DAYS}d)"
    usual = (f"({b} offset {BURST_DAYS}d - {b} offset {BURST_DAYS + BURST_BASELINE_DAYS}d)"
             f" * {_num(BURST_DAYS / BURST_BASELINE_DAYS)}")
    return recent, usual


def burst_expr(ind: Indicator) -> str:
    """A unit's new breaches, far above its usual count (grown as the rest of the region's
    grew, where that growth is beyond chance)."""
    recent, usual = _breaches(UNIT, ind)
    region_recent, region_usual = _breaches(REGION, ind)
    rest_recent = f"({region_recent} - on (indicator) group_right ()\n  {recent})"
    rest_usual = f"({region_usual} - on (indicator) group_right ()\n  {usual})"
    growth = (f"(clamp_min({rest_recent} / clamp_min({rest_usual}, 1), 1)\n"
              f" and {rest_recent}\n  > {rest_usual}\n"
              f"  + {_num(REGION_GROWTH_Z)} * sqrt({rest_usual} + 1)\n"
              f" or {recent} * 0 + 1)")
    expected = f"({usual} * {growth})"
    return (f"{recent} >= {MIN_BURST}\nand\n"
            f"{recent} > {count_bar(expected, COUNT_Z)}")


def waiting_rising_expr(ind: Indicator) -> str:
    o = f"vardgaranti:waiting_over_limit{REGION}{selector(indicator=ind.id)}"
    then = f"{o} offset {WAITING_RISE_DAYS}d"
    return f"({o} - {then}) >= {MIN_CASES}\nand\n{o} > {_num(WAITING_RISE_FACTOR)} * {then}"


def report_hour() -> str:
    return (f"and on ()\n(day_of_week() == {REPORT_WEEKDAY} and on () "
            f"hour() == {REPORT_HOUR_UTC})")


def below_target_expr(ind: Indicator, *, region: bool) -> str:
    """Completed ratio below target with enough cases, in the weekly report hour."""
    suffix, on = (REGION, "indicator, window") if region else ("", "indicator, unit, window")
    sel = selector(indicator=ind.id, window=COMPLIANCE_WINDOW)
    return (
        f"{R_RATIO}{suffix}{sel} < {_num(ind.target)}\n"
        f"and on ({on})\n"
        f"{R_COMPLETED}{suffix}{sel} >= {MIN_CASES}\n"
        f"{report_hour()}"
    )


def below_last_year_expr(ind: Indicator, *, region: bool) -> str:
    """The share within the limit, clearly below the same days a year earlier, with enough
    cases in both periods, in the weekly report hour. Last year's share is summed from the
    app's metrics, not read from a record: it needs no record evaluated a year ago."""
    by = "indicator, window" if region else "indicator, unit, window"
    sel = selector(indicator=ind.id, window=COMPLIANCE_WINDOW)
    suffix = REGION if region else ""
    now, done = f"{R_RATIO}{suffix}{sel}", f"{R_COMPLETED}{suffix}{sel}"
    past = f"{sel} offset {LAST_YEAR_OFFSET}"
    within = _sum(by, "vardgaranti_completed_within", past)
    done_then = f"({within}\n  + {_sum(by, 'vardgaranti_completed_over', past)})"
    then = f"({within}\n  / ({done_then} > 0))"
    return (
        f"{now}\n< {then} - {_num(LAST_YEAR_MARGIN)}\n"
        f"and\n{now}\n< {then}\n"
        f"  - {_num(LAST_YEAR_Z)} * sqrt({then} * (1 - {then}) / {done})\n"
        f"and on ({by})\n{done} >= {MIN_CASES}\n"
        f"and on ({by})\n{done_then} >= {MIN_CASES}\n"
        f"{report_hour()}"
    )


def indicator_alerts(ind: Indicator, links: Links = DEFAULT_LINKS) -> list[Alert]:
    """Every alert of one indicator (the at-risk worklist only if it has at_risk_days)."""
    team, i = team_for(ind), ind.id
    unit_vars = {"indicator": i, "unit": T_UNIT}
    out = [
        Alert("VardgarantiUnitWorse", worse_expr(ind, UNIT), CHANGE_FOR,
              _labels("page", team, "unit", "change", indicator=i),
              alert_annotations("VardgarantiUnitWorse", texts_unit_worse(ind, T_PERCENT, T_UNIT),
                          links, UNIT_BOARD, **unit_vars), KEEP_FIRING),
        Alert("VardgarantiRegionWorse", worse_expr(ind, REGION), CHANGE_FOR,
              _labels("page", team, "region", "change", indicator=i),
              alert_annotations("VardgarantiRegionWorse", texts_region_worse(ind, T_PERCENT),
                          links, REGION_BOARD), KEEP_FIRING),
        Alert("VardgarantiBreachBurst", burst_expr(ind), CHANGE_FOR,
              _labels("page", team, "unit", "change", indicator=i),
              alert_annotations("VardgarantiBreachBurst", texts_breach_burst(ind, T_VALUE, T_UNIT),
                          links, WORKLIST_BOARD, **unit_vars), KEEP_FIRING),
        Alert("VardgarantiWaitingOverLimitRising", waiting_rising_expr(ind), CHANGE_FOR,
              _labels("page", team, "region", "waiting", indicator=i),
              alert_annotations("VardgarantiWaitingOverLimitRising",
                          texts_waiting_rising(ind, T_VALUE), links, WORKLIST_BOARD,
                          indicator=i), KEEP_FIRING),
        Alert("VardgarantiBelowTarget", below_target_expr(ind, region=True), "0m",
              _labels("report", team, "region", "compliance", indicator=i),
              alert_annotations("VardgarantiBelowTarget", texts_below_target(ind, T_PERCENT),
                          links, REGION_BOARD)),
        Alert("VardgarantiUnitBelowTarget", below_target_expr(ind, region=False), "0m",
              _labels("report", team, "unit", "compliance", indicator=i),
              alert_annotations("VardgarantiUnitBelowTarget",
                          texts_unit_below(ind, T_PERCENT, T_UNIT), links, UNIT_BOARD,
                          **unit_vars)),
        Alert("VardgarantiBelowLastYear", below_last_year_expr(ind, region=True), "0m",
              _labels("report", team, "region", "last_year", indicator=i),
              alert_annotations("VardgarantiBelowLastYear",
                                texts_below_last_year(ind, T_PERCENT), links, REGION_BOARD)),
        Alert("VardgarantiUnitBelowLastYear", below_last_year_expr(ind, region=False), "0m",
              _labels("report", team, "unit", "last_year", indicator=i),
              alert_annotations("VardgarantiUnitBelowLastYear",
                                texts_unit_below_last_year(ind, T_PERCENT, T_UNIT), links,
                                UNIT_BOARD, **unit_vars)),
    ]
    if ind.at_risk_days > 0:
        out.append(Alert(
            "VardgarantiAtRisk", f"{R_AT_RISK}{selector(indicator=i)} > 0", "10m",
            _labels("worklist", WORKLIST_TEAM, "unit", "worklist", indicator=i),
            alert_annotations("VardgarantiAtRisk", texts_at_risk(ind, T_VALUE, T_UNIT), links,
                        WORKLIST_BOARD, **unit_vars),
        ))
    out.append(Alert(
        "VardgarantiNewBreaches",
        f"sum by (indicator, unit) (increase(vardgaranti_breaches_total"
        f"{selector(indicator=i)}[{BREACH_LOOKBACK}])) > 0",
        "0m",
        _labels("worklist", WORKLIST_TEAM, "unit", "worklist", indicator=i),
        alert_annotations("VardgarantiNewBreaches", texts_breaches(ind, T_UNIT), links,
                    WORKLIST_BOARD, **unit_vars),
    ))
    return out


def pipeline_alerts(links: Links = DEFAULT_LINKS) -> list[Alert]:
    job = selector(job=JOB)
    events = f'{{__name__=~"vardgaranti_events_(processed|rejected)_total", job="{JOB}"}}'
    exprs: dict[str, tuple[str, str, str]] = {
        "VardgarantiWorkerDown": (
            f'up{selector(job=JOB, mode="streaming")} == 0', "5m", "page"),
        "VardgarantiNoEventsProcessed": (
            f"sum by (job) (rate(vardgaranti_events_processed_total{job}"
            f"[{NO_EVENTS_MINUTES}m])) == 0\n"
            f"or absent(vardgaranti_events_processed_total{job})",
            "5m", "ticket"),
        "VardgarantiWatermarkStalled": (
            f"changes(vardgaranti_watermark_timestamp_seconds{job}"
            f"[{WATERMARK_STALL_MINUTES}m]) == 0\n"
            f"and on (job, instance)\n"
            f"sum by (job, instance) (rate(vardgaranti_events_processed_total{job}"
            f"[{WATERMARK_STALL_MINUTES}m])) > 0",
            "15m", "ticket"),
        "VardgarantiDeadLetterRateHigh": (
            f"sum by (job) (rate(vardgaranti_events_rejected_total{job}[15m]))\n"
            f"/ (sum by (job) (rate({events}[15m])) > 0)\n"
            f"> {_num(DEAD_LETTER_RATIO)}",
            "15m", "ticket"),
        "VardgarantiConsumerLagHigh": (
            f"sum by (topic) (vardgaranti_consumer_lag_messages) > {CONSUMER_LAG_MESSAGES}",
            "30m", "page"),
    }
    return [
        Alert(name, expr, for_, _labels(sev, PIPELINE_TEAM, "pipeline", "pipeline"),
              alert_annotations(name, PIPELINE_TEXTS[name], links, PIPELINE_BOARD))
        for name, (expr, for_, sev) in exprs.items()
    ]


def rule_groups(links: Links = DEFAULT_LINKS) -> list[Group]:
    groups = [recording_rules()]
    groups += [Group(f"vardgaranti.{ind.id}", tuple(indicator_alerts(ind, links)))
               for ind in INDICATORS]
    groups.append(Group("vardgaranti.pipeline", tuple(pipeline_alerts(links))))
    return groups


def alert_rules(links: Links = DEFAULT_LINKS) -> list[Alert]:
    return [r for g in rule_groups(links) for r in g.rules if isinstance(r, Alert)]


def alert_names() -> list[str]:
    """Every alert name the rules define, sorted."""
    return sorted({a.name for a in alert_rules()})


# --------------------------------------------------------------------------- YAML output


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings; everything else as safe_dump does."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def dump(doc: Any) -> str:
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
        default_flow_style=False,
    )


def render_rules(links: Links = DEFAULT_LINKS) -> str:
    """The complete rules file, deterministic for a given indicator table."""
    return HEADER + dump({"groups": [g.as_dict() for g in rule_groups(links)]})


def write_rules(path: Path | str = RULES_PATH, links: Links = DEFAULT_LINKS) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_rules(links), encoding="utf-8")
    return p


def main(argv: Iterable[str] | None = None) -> int:
    from dashboards.alert_tests import write_tests

    parser = argparse.ArgumentParser(prog="python -m dashboards.alerts",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--grafana-url", default=GRAFANA_URL,
                        help=f"Grafana base URL in the dashboard links ({GRAFANA_URL})")
    parser.add_argument("--runbook-url", default=RUNBOOK_URL,
                        help=f"where docs/runbooks is published ({RUNBOOK_URL})")
    args = parser.parse_args(list(argv) if argv is not None else None)
    links = Links(args.grafana_url.rstrip("/"), args.runbook_url.rstrip("/"))
    print(write_rules(links=links))
    for p in write_tests(links=links):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
