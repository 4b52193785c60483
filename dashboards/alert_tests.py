"""The `promtool test rules` files for the generated rules: every alert firing and not.

The expectations are computed here from the indicator table and the knobs of
dashboards/alerts.py (counts chosen around each threshold, the decision re-done in Python),
not copied from the rules: promtool then checks that the PromQL does what the table says.
Inputs are split over two workers, so the tests also prove the cross-worker sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from dashboards.alerts import (
    ANSCOMBE,
    BASELINE_WINDOW,
    BURST_BASELINE_DAYS,
    BURST_DAYS,
    CHANGE_MARGIN,
    CHANGE_MIN_LATE,
    CHANGE_WINDOW,
    COMPLIANCE_WINDOW,
    COUNT_Z,
    DEFAULT_LINKS,
    HEADER,
    JOB,
    LAST_YEAR_MARGIN,
    LAST_YEAR_OFFSET,
    LAST_YEAR_Z,
    MIN_BURST,
    MIN_CASES,
    PIPELINE_BOARD,
    PIPELINE_TEXTS,
    R_COMPLETED,
    R_RATIO,
    REGION,
    REGION_BOARD,
    REGION_GROWTH_Z,
    REPORT_HOUR_UTC,
    REPORT_WEEKDAY,
    RULES_PATH,
    T_INSTANCE,
    T_PERCENT,
    T_TOPIC,
    T_VALUE,
    TESTS_DIR,
    UNIT,
    UNIT_BOARD,
    WAITING_RISE_DAYS,
    WAITING_RISE_FACTOR,
    WORKLIST_BOARD,
    Alert,
    Links,
    Texts,
    alert_annotations,
    alert_rules,
    days,
    dump,
    r_over_share,
    rule_groups,
    selector,
    texts_at_risk,
    texts_below_last_year,
    texts_below_target,
    texts_breach_burst,
    texts_breaches,
    texts_region_worse,
    texts_unit_below,
    texts_unit_below_last_year,
    texts_unit_worse,
    texts_waiting_rising,
)
from models.indicators import INDICATORS, Indicator

W1, W2 = "worker-1:8000", "worker-2:8000"
BIG, SMALL, MILD, EMPTY = "unit_big", "unit_small", "unit_mild", "unit_empty"
OTHER = "unit_other"


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    lab = {"job": JOB, "instance": W1, **labels}
    return {"series": metric + selector(**lab), "values": values}


def _split(metric: str, values: Sequence[int], **labels: str) -> list[dict[str, str]]:
    """One value per step, split over two workers (run-length encoded for promtool)."""
    def rle(vs: Sequence[int]) -> str:
        out, i = [], 0
        while i < len(vs):
            j = i
            while j + 1 < len(vs) and vs[j + 1] == vs[i]:
                j += 1
            out.append(f"{vs[i]}x{j - i}" if j > i else str(vs[i]))
            i = j + 1
        return " ".join(out)

    a = [v // 2 for v in values]
    return [_series(metric, rle(a), **labels),
            _series(metric, rle([v - x for v, x in zip(values, a, strict=True)]),
                    instance=W2, **labels)]


def percent(v: float) -> str:
    """What T_PERCENT renders: humanizePercentage ("%.4g%%") in Swedish notation."""
    return ("%.4g" % (v * 100)).replace(".", ",") + " %"


def _rule(name: str, ind: Indicator | None, links: Links) -> Alert:
    return next(a for a in alert_rules(links) if a.name == name
                and a.labels.get("indicator") == (ind.id if ind else None))


def _exp(rule: Alert, texts: Texts, links: Links, board: str, extra: Mapping[str, str],
         **variables: str) -> dict[str, Any]:
    return {
        "exp_labels": dict(sorted({**rule.labels, **extra}.items())),
        "exp_annotations": dict(sorted(
            alert_annotations(rule.name, texts, links, board, **variables).items())),
    }


def _check(name: str, at: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": alerts}


# --------------------------------------------------------------------------- change pages


def count_above(count: float, expected: float, z: float) -> bool:
    """dashboards.alerts.count_bar, re-done in Python: `count` more than `z` standard
    deviations above `expected` on Anscombe's square-root scale."""
    return count > (math.sqrt(expected + ANSCOMBE) + z / 2) ** 2 - ANSCOMBE


def worse(now_over: int, now_done: int, base_over: int, base_done: int,
          common: float = 0.0) -> bool:
    """VardgarantiUnitWorse/RegionWorse, re-done in Python (`common`: the region's
    worsening, for a unit)."""
    if not now_done or not base_done:
        return False
    level = base_over / base_done + common
    return (now_over / now_done > level + CHANGE_MARGIN and now_over >= CHANGE_MIN_LATE
            and count_above(now_over, level * now_done, COUNT_Z))


Levels = dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]


def _worse_scenario(ind: Indicator, links: Links, name: str, units: Levels,
                    unit_fires: set[str], region_fires: bool) -> dict[str, Any]:
    """Daily samples: a long steady level, four bad days, back to normal. `units`: per unit
    (7-day over/completed normally, on the bad days, 90-day over/completed)."""
    steady, bad, after = 96, 4, 11  # days; the bad days are 96..99
    series: list[dict[str, str]] = []
    for unit, ((o, n), (bo, bn), (o90, n90)) in units.items():
        for metric, normal, during, long in (
            ("vardgaranti_completed_over", o, bo, o90),
            ("vardgaranti_completed_within", n - o, bn - bo, n90 - o90),
        ):
            vals = [normal] * steady + [during] * bad + [normal] * after
            series += _split(metric, vals, indicator=ind.id, unit=unit, window=CHANGE_WINDOW)
            series += _split(metric, [long] * (steady + bad + after), indicator=ind.id,
                             unit=unit, window=BASELINE_WINDOW)
    region = [sum(v[k][0] for v in units.values()) for k in range(3)]
    region_n = [sum(v[k][1] for v in units.values()) for k in range(3)]

    def common(u: str) -> float:  # the worsening of the rest of the region
        (_, (bo, bn), (o90, n90)) = units[u]
        return max((region[1] - bo) / (region_n[1] - bn)
                   - (region[2] - o90) / (region_n[2] - n90), 0.0)

    fires = {u for u, (_, (bo, bn), (o90, n90)) in units.items()
             if worse(bo, bn, o90, n90, common(u))}
    assert fires == unit_fires, fires
    assert worse(region[1], region_n[1], region[2], region_n[2]) == region_fires
    unit_rule = _rule("VardgarantiUnitWorse", ind, links)
    region_rule = _rule("VardgarantiRegionWorse", ind, links)
    unit_alerts = [_exp(unit_rule, texts_unit_worse(ind, percent(bo / bn), u), links,
                        UNIT_BOARD, {"unit": u}, indicator=ind.id, unit=u)
                   for u, (_, (bo, bn), _) in units.items() if u in fires]
    region_alerts = [_exp(region_rule,
                          texts_region_worse(ind, percent(region[1] / region_n[1])),
                          links, REGION_BOARD, {})] if region_fires else []
    keep = days(unit_rule.keep_firing_for)
    checks = []
    for rule, fired in ((unit_rule.name, unit_alerts), (region_rule.name, region_alerts)):
        checks += [
            _check(rule, f"{steady - 1}d", []),
            _check(rule, f"{steady}d", []),  # pending (for)
            _check(rule, f"{steady + 1}d", fired),
            _check(rule, f"{steady + bad + keep - 1}d", fired),  # kept firing (hysteresis)
            _check(rule, f"{steady + bad + keep + 1}d", []),
        ]
    return {"name": f"{ind.id}: {name}", "interval": "1d", "input_series": series,
            "alert_rule_test": checks}


def _worse_tests(ind: Indicator, links: Links) -> list[dict[str, Any]]:
    usual = ((10, 80), (10, 80), (100, 1000))
    return [
        _worse_scenario(ind, links, "a unit gets clearly worse than its own level", {
            BIG: ((10, 80), (50, 80), (100, 1000)),
            SMALL: ((2, 8), (5, 8), (20, 80)),  # as bad, but too few cases
            MILD: ((10, 80), (12, 80), (100, 1000)),  # worse, but not clearly
        }, {BIG}, True),
        _worse_scenario(ind, links, "every unit a little worse: the region pages, no unit", {
            BIG: ((10, 80), (40, 80), (100, 1000)),
            MILD: ((10, 80), (40, 80), (100, 1000)),
            SMALL: usual,
        }, set(), True),
    ]


def burst(recent: int, usual_window: int, region_recent: int, region_window: int,
          z: float) -> bool:
    """VardgarantiBreachBurst with the bar `z`, re-done in Python."""
    share = BURST_DAYS / BURST_BASELINE_DAYS
    usual = usual_window * share
    rest_recent, rest_usual = region_recent - recent, region_window * share - usual
    grew = rest_recent > rest_usual + REGION_GROWTH_Z * math.sqrt(rest_usual + 1)
    expected = usual * (max(rest_recent / max(rest_usual, 1), 1) if grew else 1)
    return recent >= MIN_BURST and count_above(recent, expected, z)


def _burst_scenario(ind: Indicator, links: Links, name: str,
                    rates: Mapping[str, tuple[int, int]], paged: str | None
                    ) -> dict[str, Any]:
    """Units' breaches a day (before, from day `steady` on): only `paged` pages."""
    lookback = BURST_DAYS + BURST_BASELINE_DAYS
    steady = lookback + 10
    total = steady + 12
    series: list[dict[str, str]] = []
    cum: dict[str, list[int]] = {}
    for unit, (before, now) in rates.items():
        vals = [0]
        for d in range(1, total):
            vals.append(vals[-1] + (before if d <= steady else now))
        cum[unit] = vals
        series += _split("vardgaranti_breaches_total", vals, indicator=ind.id, unit=unit)

    region = [sum(c[d] for c in cum.values()) for d in range(total)]

    def fires(unit: str, d: int) -> bool:
        c, r = cum[unit], region
        return burst(c[d] - c[d - BURST_DAYS], c[d - BURST_DAYS] - c[d - lookback],
                     r[d] - r[d - BURST_DAYS], r[d - BURST_DAYS] - r[d - lookback],
                     COUNT_Z)

    assert not any(fires(u, d) for u in rates if u != paged for d in range(lookback, total))
    rule = _rule("VardgarantiBreachBurst", ind, links)
    checks = [_check(rule.name, f"{steady}d", [])]
    if paged is None:
        checks += [_check(rule.name, f"{d}d", []) for d in range(steady + 1, total)]
    else:
        first = next(d for d in range(steady, total) if fires(paged, d))
        assert first <= steady + 2
        at = first + 2
        value = cum[paged][at] - cum[paged][at - BURST_DAYS]
        checks.append(_check(rule.name, f"{at}d", [_exp(
            rule, texts_breach_burst(ind, str(value), paged), links, WORKLIST_BOARD,
            {"unit": paged}, indicator=ind.id, unit=paged)]))
    return {"name": f"{ind.id}: {name}", "interval": "1d", "input_series": series,
            "alert_rule_test": checks}


# One breach every day before, five (four) a day after: 10 (8) in two days where 2 are
# usual lies 3.36 (2.71) standard deviations above (Anscombe): around the bar COUNT_Z.
MODERATE_BURSTS: Final = ((1, 5), (1, 4))


def _z(count: int, expected: float) -> float:
    return 2 * (math.sqrt(count + ANSCOMBE) - math.sqrt(expected + ANSCOMBE))


def _burst_tests(ind: Indicator, links: Links) -> list[dict[str, Any]]:
    moderate = [
        _burst_scenario(ind, links, f"{2 * now} breaches in two days where 2 are usual",
                        {MILD: (before, now), SMALL: (0, 1)},
                        MILD if _z(2 * now, 2 * before) > COUNT_Z else None)
        for before, now in MODERATE_BURSTS]
    return [
        _burst_scenario(ind, links, "a burst of new breaches at one unit",
                        {BIG: (1, 10), SMALL: (0, 1), MILD: (20, 25)}, BIG),
        # just above and just below the bar
        *moderate,
        # the rest of the region triples too (a holiday): every unit's bar rises with it
        _burst_scenario(ind, links, "a wave of breaches across the region",
                        {BIG: (2, 8), MILD: (20, 60), OTHER: (20, 60)}, None),
    ]


def _waiting_tests(ind: Indicator, links: Links) -> list[dict[str, Any]]:
    rule = _rule("VardgarantiWaitingOverLimitRising", ind, links)
    week, after = WAITING_RISE_DAYS + 1, 3
    at = f"{week + after - 1}d"

    def case(name: str, before: int, now: int) -> dict[str, Any]:
        a, b = before // 2, now // 2
        series = (_split("vardgaranti_waiting_over_limit", [a] * week + [b] * after,
                         indicator=ind.id, unit="unit_a")
                  + _split("vardgaranti_waiting_over_limit",
                           [before - a] * week + [now - b] * after, indicator=ind.id,
                           unit="unit_b"))
        rises = now - before >= MIN_CASES and now > WAITING_RISE_FACTOR * before
        exp = [_exp(rule, texts_waiting_rising(ind, str(now - before)), links,
                    WORKLIST_BOARD, {}, indicator=ind.id)] if rises else []
        return {"name": f"{ind.id}: {name}", "interval": "1d", "input_series": series,
                "alert_rule_test": [_check(rule.name, at, exp)]}

    return [
        case("waiting over limit rising", 100, 100 + 2 * MIN_CASES),
        case("small absolute rise", 100, 100 + MIN_CASES // 2),
        case("small relative rise", 1000, 1000 + MIN_CASES + 5),
    ]


# --------------------------------------------------------------------------- weekly report


def _completed_series(ind: Indicator, unit: str, within: int, over: int, steps: int,
                      window: str = COMPLIANCE_WINDOW) -> list[dict[str, str]]:
    return (_split("vardgaranti_completed_within", [within] * steps, indicator=ind.id,
                   unit=unit, window=window)
            + _split("vardgaranti_completed_over", [over] * steps, indicator=ind.id,
                     unit=unit, window=window))


def _report_tests(ind: Indicator, links: Links) -> list[dict[str, Any]]:
    # hourly samples from Thursday 1 January 1970 00:00 UTC; the report hour is Monday's
    monday = (REPORT_WEEKDAY - 4) % 7 * 24 + REPORT_HOUR_UTC
    steps, n = monday + 30, 1000
    names = ("VardgarantiBelowTarget", "VardgarantiUnitBelowTarget")
    win = {"window": COMPLIANCE_WINDOW}

    def case(name: str, ratio: float, small_over: int, fire: bool) -> dict[str, Any]:
        within = round(ratio * n)
        series = _completed_series(ind, BIG, within, n - within, steps)
        # a small unit, all late, under MIN_CASES: never in the report on its own
        series += _completed_series(ind, SMALL, 0, small_over, steps)
        # the month window is terrible but is not what the report judges
        series += _completed_series(ind, BIG, 0, n, steps, window="month")
        region = within / (n + small_over)
        region_rule = _rule(names[0], ind, links)
        unit_rule = _rule(names[1], ind, links)
        exp = {
            names[0]: [_exp(region_rule, texts_below_target(ind, percent(region)), links,
                            REGION_BOARD, win)] if fire else [],
            names[1]: [_exp(unit_rule, texts_unit_below(ind, percent(within / n), BIG),
                            links, UNIT_BOARD, {"unit": BIG, **win}, indicator=ind.id,
                            unit=BIG)] if fire else [],
        }
        checks = []
        for alert in names:
            checks += [_check(alert, f"{monday}h", exp[alert]),
                       _check(alert, f"{monday - 1}h", []),
                       _check(alert, f"{monday + 1}h", []),
                       _check(alert, f"{monday - 24}h", [])]
        return {"name": f"{ind.id}: {name}", "interval": "1h", "input_series": series,
                "alert_rule_test": checks}

    below = round(ind.target - CHANGE_MARGIN / 2, 3)
    return [
        case("below target: in the Monday report only", below, MIN_CASES - 1, True),
        case("at target", ind.target, 0, False),
        {
            "name": f"{ind.id}: too few cases region-wide",
            "interval": "1h",
            "input_series": _completed_series(ind, SMALL, 0, MIN_CASES - 1, steps),
            "alert_rule_test": [_check(a, f"{monday}h", []) for a in names],
        },
        {
            "name": f"{ind.id}: zero completed (zero denominator)",
            "interval": "1h",
            "input_series": _completed_series(ind, EMPTY, 0, 0, steps),
            "alert_rule_test": [_check(a, f"{monday}h", []) for a in names],
            "promql_expr_test": [
                {"expr": f"{R_RATIO}{selector(indicator=ind.id)}", "eval_time": f"{monday}h",
                 "exp_samples": []},
            ],
        },
    ]


def below_last_year(now_within: int, now_done: int, then_within: int, then_done: int) -> bool:
    """VardgarantiBelowLastYear / VardgarantiUnitBelowLastYear, re-done in Python."""
    if min(now_done, then_done) < MIN_CASES:
        return False
    now, then = now_within / now_done, then_within / then_done
    return (now < then - LAST_YEAR_MARGIN
            and now < then - LAST_YEAR_Z * math.sqrt(then * (1 - then) / now_done))


# The last-year tests evaluate every LAST_YEAR_STEP: a divisor of the hours from the start
# (Thursday 1 January 1970 00:00 UTC) to a Monday report hour a year later, so that a year
# takes 79 evaluations instead of thousands; the samples come every 6 hours.
LAST_YEAR_STEP: Final = 114
SAMPLE_HOURS: Final = 6


def _last_year_tests(ind: Indicator, links: Links) -> list[dict[str, Any]]:
    monday = (REPORT_WEEKDAY - 4) % 7 * 24 + REPORT_HOUR_UTC  # the first report hour
    week, step = 7 * 24, LAST_YEAR_STEP
    year = int(LAST_YEAR_OFFSET[:-1]) * week
    report_steps = [k for k in range(year // step + week) if (k * step - monday) % week == 0]
    early = report_steps[0]  # no year behind it
    at = next(k for k in report_steps if k * step > year)  # the first with a year behind
    switch = (early + 1) * step // SAMPLE_HOURS  # the values change after the early report
    samples = at * step // SAMPLE_HOURS + 2
    n = 1000
    # unit: (within, completed) a year earlier, then now
    units = {BIG: ((800, n), (500, n)),  # far below last year: in the report
             MILD: ((800, n), (750, n)),  # five points below: not
             SMALL: ((MIN_CASES - 1, MIN_CASES - 1), (0, MIN_CASES - 1)),  # too few cases
             EMPTY: ((0, 0), (0, n))}  # no cases last year (zero denominator)
    series: list[dict[str, str]] = []
    for unit, ((w0, d0), (w1, d1)) in units.items():
        within = [w0] * switch + [w1] * (samples - switch)
        done = [d0] * switch + [d1] * (samples - switch)
        series += _split("vardgaranti_completed_within", within, indicator=ind.id, unit=unit,
                         window=COMPLIANCE_WINDOW)
        series += _split("vardgaranti_completed_over",
                         [d - w for d, w in zip(done, within, strict=True)],
                         indicator=ind.id, unit=unit, window=COMPLIANCE_WINDOW)
    names = ("VardgarantiBelowLastYear", "VardgarantiUnitBelowLastYear")
    win = {"window": COMPLIANCE_WINDOW}
    unit_rule = _rule(names[1], ind, links)
    fired_units = [
        _exp(unit_rule, texts_unit_below_last_year(ind, percent(now[0] / now[1]), unit), links,
             UNIT_BOARD, {"unit": unit, **win}, indicator=ind.id, unit=unit)
        for unit, (then, now) in units.items() if below_last_year(*now, *then)]
    assert [a["exp_labels"]["unit"] for a in fired_units] == [BIG]
    then_in, then_done = (sum(u[0][k] for u in units.values()) for k in (0, 1))
    now_in, now_done = (sum(u[1][k] for u in units.values()) for k in (0, 1))
    assert below_last_year(now_in, now_done, then_in, then_done)
    region = [_exp(_rule(names[0], ind, links),
                   texts_below_last_year(ind, percent(now_in / now_done)), links,
                   REGION_BOARD, win)]
    checks = []
    for alert, fired in zip(names, (region, fired_units), strict=True):
        checks += [_check(alert, f"{at * step}h", fired),
                   _check(alert, f"{(at - 1) * step}h", []),  # not the report hour
                   _check(alert, f"{early * step}h", [])]  # no year behind it yet
    return [{"name": f"{ind.id}: below the same days a year earlier",
             "interval": f"{SAMPLE_HOURS}h", "input_series": series,
             "alert_rule_test": checks}]


# --------------------------------------------------------------------------- worklist


def _worklist_tests(ind: Indicator, links: Links) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if ind.at_risk_days > 0:
        rule = _rule("VardgarantiAtRisk", ind, links)
        series = [
            _series("vardgaranti_at_risk", "1x30", indicator=ind.id, unit="unit_a"),
            _series("vardgaranti_at_risk", "2x30", indicator=ind.id, unit="unit_a",
                    instance=W2),
            _series("vardgaranti_at_risk", "0x30", indicator=ind.id, unit="unit_b"),
        ]
        fired = _exp(rule, texts_at_risk(ind, "3", "unit_a"), links, WORKLIST_BOARD,
                     {"unit": "unit_a"}, indicator=ind.id, unit="unit_a")
        out.append({
            "name": f"{ind.id}: at-risk worklist", "interval": "1m", "input_series": series,
            "alert_rule_test": [_check(rule.name, "5m", []),
                                _check(rule.name, "20m", [fired])],
        })
    rule = _rule("VardgarantiNewBreaches", ind, links)
    series = [
        _series("vardgaranti_breaches_total", "0x20 1 2x10", indicator=ind.id, unit="unit_a"),
        _series("vardgaranti_breaches_total", "5x90", indicator=ind.id, unit="unit_b"),
    ]
    fired = _exp(rule, texts_breaches(ind, "unit_a"), links, WORKLIST_BOARD,
                 {"unit": "unit_a"}, indicator=ind.id, unit="unit_a")
    out.append({
        "name": f"{ind.id}: new breaches", "interval": "1m", "input_series": series,
        "alert_rule_test": [_check(rule.name, "15m", []), _check(rule.name, "25m", [fired]),
                            _check(rule.name, "90m", [])],
    })
    return out


# --------------------------------------------------------------------------- pipeline


def _fill(text: str, values: Mapping[str, str]) -> str:
    for k, v in values.items():
        text = text.replace(k, v)
    return text


def _pipeline_tests(links: Links) -> list[dict[str, Any]]:
    def fire(name: str, values: Mapping[str, str] | None = None,
             **extra: str) -> dict[str, Any]:
        s, d = (_fill(t, dict(values or {})) for t in PIPELINE_TEXTS[name])
        return _exp(_rule(name, None, links), (s, d), links, PIPELINE_BOARD, extra)

    proc = "vardgaranti_events_processed_total"
    rej = "vardgaranti_events_rejected_total"
    wm = "vardgaranti_watermark_timestamp_seconds"
    up_w1 = f'up{selector(job=JOB, instance=W1, mode="streaming")}'
    up_demo = f'up{selector(job=JOB, instance="host.docker.internal:8000", mode="demo")}'
    return [
        {
            "name": "pipeline: worker down (the demo target does not count)",
            "interval": "1m",
            "input_series": [{"series": up_w1, "values": "1x5 0x20"},
                             {"series": up_demo, "values": "0x25"}],
            "alert_rule_test": [
                _check("VardgarantiWorkerDown", "5m", []),
                _check("VardgarantiWorkerDown", "15m", [
                    fire("VardgarantiWorkerDown", {T_INSTANCE: W1}, instance=W1,
                         job=JOB, mode="streaming")]),
            ],
        },
        {
            "name": "pipeline: events flowing, then none",
            "interval": "1m",
            "input_series": [
                _series(proc, "0+10x60 600x60", type="referral.issued"),
                _series(wm, "1700000000+60x60 1700003600x60"),
            ],
            "alert_rule_test": [
                _check("VardgarantiNoEventsProcessed", "60m", []),
                _check("VardgarantiNoEventsProcessed", "100m",
                       [fire("VardgarantiNoEventsProcessed", job=JOB)]),
                # the watermark stops too, but no events are processed: not "stalled"
                _check("VardgarantiWatermarkStalled", "115m", []),
            ],
        },
        {
            "name": "pipeline: no worker at all",
            "interval": "1m",
            "input_series": [{"series": up_w1, "values": "0x20"}],
            "alert_rule_test": [
                _check("VardgarantiNoEventsProcessed", "10m",
                       [fire("VardgarantiNoEventsProcessed", job=JOB)]),
            ],
        },
        {
            "name": "pipeline: watermark stalled while events flow",
            "interval": "1m",
            "input_series": [
                _series(proc, "0+10x150", type="referral.issued"),
                _series(wm, "1700000000+60x30 1700001800x120"),
                _series(proc, "0+10x150", type="visit.completed", instance=W2),
                _series(wm, "1700000000+60x150", instance=W2),
            ],
            "alert_rule_test": [
                _check("VardgarantiWatermarkStalled", "60m", []),
                _check("VardgarantiWatermarkStalled", "110m",
                       [fire("VardgarantiWatermarkStalled", {T_INSTANCE: W1}, instance=W1,
                             job=JOB)]),
                _check("VardgarantiNoEventsProcessed", "110m", []),
            ],
        },
        {
            "name": "pipeline: dead-letter rate",
            "interval": "1m",
            "input_series": [
                _series(proc, "0+90x120", type="referral.issued"),
                _series(rej, "0+1x60 60+30x60", reason="missing_field"),
            ],
            "alert_rule_test": [
                _check("VardgarantiDeadLetterRateHigh", "55m", []),
                _check("VardgarantiDeadLetterRateHigh", "110m",
                       [fire("VardgarantiDeadLetterRateHigh", {T_PERCENT: percent(0.25)},
                             job=JOB)]),
            ],
        },
        {
            "name": "pipeline: consumer lag",
            "interval": "1m",
            "input_series": [
                _series("vardgaranti_consumer_lag_messages", "100x40 6000x60",
                        topic="vardgaranti.events", partition="0"),
                _series("vardgaranti_consumer_lag_messages", "100x40 6000x60",
                        topic="vardgaranti.events", partition="1", instance=W2),
            ],
            "alert_rule_test": [
                _check("VardgarantiConsumerLagHigh", "40m", []),
                _check("VardgarantiConsumerLagHigh", "60m", []),
                _check("VardgarantiConsumerLagHigh", "90m",
                       [fire("VardgarantiConsumerLagHigh",
                             {T_VALUE: "12000", T_TOPIC: "vardgaranti.events"},
                             topic="vardgaranti.events")]),
            ],
        },
    ]


# --------------------------------------------------------------------------- recording


def _recording_tests() -> list[dict[str, Any]]:
    ind, other = INDICATORS[0], INDICATORS[-1]
    steps, at = 10, "5m"
    series = (
        _completed_series(ind, "unit_a", 30, 10, steps)
        + _completed_series(ind, "unit_b", 15, 5, steps)
        + _completed_series(ind, EMPTY, 0, 0, steps)
        + _completed_series(other, "unit_a", 1, 3, steps)
        + _completed_series(ind, "unit_a", 6, 2, steps, window=CHANGE_WINDOW)
        + _completed_series(ind, "unit_b", 0, 0, steps, window=CHANGE_WINDOW)
    )
    for unit, i, w, o in (("unit_a", ind, 40, 10), ("unit_b", ind, 10, 0),
                          (EMPTY, ind, 0, 0), ("unit_a", other, 4, 4)):
        series += _split("vardgaranti_waiting", [w] * steps, indicator=i.id, unit=unit)
        series += _split("vardgaranti_waiting_over_limit", [o] * steps, indicator=i.id,
                         unit=unit)
        series += _split("vardgaranti_breaches_total", [o + 1] * steps, indicator=i.id,
                         unit=unit)
    win = COMPLIANCE_WINDOW

    def sample(metric: str, value: float, **labels: str) -> dict[str, Any]:
        return {"labels": metric + selector(**labels), "value": value}

    def expect(expr: str, *samples: dict[str, Any]) -> dict[str, Any]:
        return {"expr": expr, "eval_time": at, "exp_samples": list(samples)}

    w_ratio = "vardgaranti:waiting_ratio"
    share = r_over_share(CHANGE_WINDOW, UNIT)
    return [{
        "name": "recording rules: sums across workers, ratios, zero denominators",
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            expect(R_RATIO + selector(window=win),
                   sample(R_RATIO, 30 / 40, indicator=ind.id, unit="unit_a", window=win),
                   sample(R_RATIO, 15 / 20, indicator=ind.id, unit="unit_b", window=win),
                   sample(R_RATIO, 1 / 4, indicator=other.id, unit="unit_a", window=win)),
            expect(R_RATIO + REGION + selector(window=win),
                   sample(R_RATIO + REGION, 45 / 60, indicator=ind.id, window=win),
                   sample(R_RATIO + REGION, 1 / 4, indicator=other.id, window=win)),
            expect(f"{R_COMPLETED}{selector(indicator=ind.id, window=win)}",
                   sample(R_COMPLETED, 0, indicator=ind.id, unit=EMPTY, window=win),
                   sample(R_COMPLETED, 40, indicator=ind.id, unit="unit_a", window=win),
                   sample(R_COMPLETED, 20, indicator=ind.id, unit="unit_b", window=win)),
            expect(w_ratio + UNIT,
                   sample(w_ratio + UNIT, (40 - 10) / 40, indicator=ind.id, unit="unit_a"),
                   sample(w_ratio + UNIT, 1.0, indicator=ind.id, unit="unit_b"),
                   sample(w_ratio + UNIT, 0.0, indicator=other.id, unit="unit_a")),
            expect(w_ratio + REGION,
                   sample(w_ratio + REGION, (50 - 10) / 50, indicator=ind.id),
                   sample(w_ratio + REGION, 0.0, indicator=other.id)),
            expect(f"vardgaranti:waiting:region{selector(indicator=ind.id)}",
                   sample("vardgaranti:waiting:region", 50, indicator=ind.id)),
            expect(share, sample(share, 2 / 8, indicator=ind.id, unit="unit_a")),
            expect(f"vardgaranti:breaches:region{selector(indicator=ind.id)}",
                   sample("vardgaranti:breaches:region", 11 + 1 + 1, indicator=ind.id)),
        ],
    }]


# --------------------------------------------------------------------------- files


def _merged(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The indicators' tests of one scenario as one test (promtool evaluates every rule at
    every step of a test: seven small tests cost seven times one)."""
    by_name: dict[str, dict[str, Any]] = {}
    for t in tests:
        name = t["name"].split(": ", 1)[1]
        into = by_name.setdefault(name, {"name": name, "interval": t["interval"],
                                         "input_series": []})
        assert into["interval"] == t["interval"], name
        into["input_series"] += t["input_series"]
        checks = into.setdefault("alert_rule_test", [])
        for c in t.get("alert_rule_test", []):
            same = next((x for x in checks if (x["eval_time"], x["alertname"])
                         == (c["eval_time"], c["alertname"])), None)
            if same is None:
                checks.append({**c, "exp_alerts": list(c["exp_alerts"])})
            else:
                same["exp_alerts"] += c["exp_alerts"]
        if "promql_expr_test" in t:
            into.setdefault("promql_expr_test", []).extend(t["promql_expr_test"])
    return list(by_name.values())


def render_tests(links: Links = DEFAULT_LINKS) -> dict[str, str]:
    """The promtool test files, by file name (written to deploy/prometheus/tests/)."""
    rules_rel = "../rules/" + RULES_PATH.name
    per_indicator: dict[str, Callable[[Indicator, Links], list[dict[str, Any]]]] = {
        "change.test.yml": lambda i, lk: (_worse_tests(i, lk) + _burst_tests(i, lk)
                                          + _waiting_tests(i, lk)),
        "report.test.yml": _report_tests,
        "last-year.test.yml": _last_year_tests,
        "worklist.test.yml": _worklist_tests,
    }
    files: dict[str, list[dict[str, Any]]] = {
        "recording.test.yml": _recording_tests(),
        **{name: _merged([t for i in INDICATORS for t in make(i, links)])
           for name, make in per_indicator.items()},
        "pipeline.test.yml": _pipeline_tests(links),
    }
    intervals = {"change.test.yml": "1d", "report.test.yml": "1h",
                 "last-year.test.yml": f"{LAST_YEAR_STEP}h"}
    return {
        name: HEADER + dump({
            "rule_files": [rules_rel],
            "evaluation_interval": intervals.get(name, "1m"),
            # records first: an alert must see this step's records, not the last step's
            "group_eval_order": [g.name for g in rule_groups(links)],
            "tests": tests,
        })
        for name, tests in files.items()
    }


def write_tests(directory: Path | str = TESTS_DIR, links: Links = DEFAULT_LINKS) -> list[Path]:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for stale in d.glob("*.test.yml"):
        stale.unlink()
    out = []
    for name, text in render_tests(links).items():
        p = d / name
        p.write_text(text, encoding="utf-8")
        out.append(p)
    return out
