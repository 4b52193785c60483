"""The generated Prometheus rules: up to date, complete per indicator, well labelled."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import alert_tests, alerts
from models.indicators import INDICATORS

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
PER_INDICATOR = {
    "VardgarantiUnitWorse", "VardgarantiRegionWorse", "VardgarantiBreachBurst",
    "VardgarantiWaitingOverLimitRising", "VardgarantiBelowTarget",
    "VardgarantiUnitBelowTarget", "VardgarantiBelowLastYear", "VardgarantiUnitBelowLastYear",
    "VardgarantiNewBreaches",
}
PIPELINE = {
    "VardgarantiWorkerDown", "VardgarantiNoEventsProcessed", "VardgarantiWatermarkStalled",
    "VardgarantiDeadLetterRateHigh", "VardgarantiConsumerLagHigh",
}
ALLOWED_LABELS = {"severity", "team", "scope", "kind", "indicator"}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(alerts.render_rules())
    return [r for g in doc["groups"] for r in g["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def test_rules_file_is_up_to_date() -> None:
    assert alerts.RULES_PATH.read_text(encoding="utf-8") == alerts.render_rules(), (
        "deploy/prometheus/rules/vardgaranti.rules.yml is stale: run python -m dashboards.alerts"
    )


def test_promtool_test_files_are_up_to_date() -> None:
    rendered = alert_tests.render_tests()
    on_disk = {p.name for p in alerts.TESTS_DIR.glob("*.yml")}
    assert on_disk == set(rendered), "unexpected or missing files in deploy/prometheus/tests"
    for name, text in rendered.items():
        assert (alerts.TESTS_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python -m dashboards.alerts"
        )


def test_render_is_deterministic() -> None:
    assert alerts.render_rules() == alerts.render_rules()
    assert alert_tests.render_tests() == alert_tests.render_tests()


@pytest.mark.parametrize("ind", INDICATORS, ids=lambda i: i.id)
def test_every_indicator_has_its_alerts(ind: Any) -> None:
    mine = [a for a in _alerts() if a["labels"].get("indicator") == ind.id]
    names = {a["alert"] for a in mine}
    expected = PER_INDICATOR | ({"VardgarantiAtRisk"} if ind.at_risk_days > 0 else set())
    assert names == expected
    by_name = {a["alert"]: a for a in mine}
    # the target comes from the table
    assert f"< {ind.target:g}\n" in by_name["VardgarantiBelowTarget"]["expr"]
    assert f"< {ind.target:g}\n" in by_name["VardgarantiUnitBelowTarget"]["expr"]
    # a minimum case count guards every alert on a share or a count of a unit
    for name in ("VardgarantiBelowTarget", "VardgarantiUnitBelowTarget",
                 "VardgarantiBelowLastYear", "VardgarantiUnitBelowLastYear",
                 "VardgarantiWaitingOverLimitRising"):
        assert f">= {alerts.MIN_CASES}" in by_name[name]["expr"], name
    for name in ("VardgarantiUnitWorse", "VardgarantiRegionWorse"):
        assert f">= {alerts.CHANGE_MIN_LATE}" in by_name[name]["expr"], name
    assert f">= {alerts.MIN_BURST}" in by_name["VardgarantiBreachBurst"]["expr"]
    for a in mine:
        assert f'indicator="{ind.id}"' in a["expr"]


def test_pages_are_on_change_with_hysteresis_and_reports_are_weekly() -> None:
    for a in _alerts():
        sev = a["labels"]["severity"]
        if sev == "page" and a["labels"]["kind"] != "pipeline":
            assert " offset " in a["expr"], a["alert"]  # compared with an earlier level
            assert a["keep_firing_for"] == alerts.KEEP_FIRING, a["alert"]
        if sev == "report":
            assert "day_of_week() ==" in a["expr"] and "hour() ==" in a["expr"], a["alert"]
        assert sev in alerts.SEVERITIES, a["alert"]


def test_pipeline_alerts_present() -> None:
    assert {a["alert"] for a in _alerts() if a["labels"]["kind"] == "pipeline"} == PIPELINE


def test_alert_labels_and_annotations() -> None:
    uids = {json.loads(p.read_text(encoding="utf-8"))["uid"]
            for p in (ROOT / "dashboards").glob("*.json")}
    for a in _alerts():
        labels, ann = a["labels"], a["annotations"]
        assert labels["team"], a["alert"]
        assert set(labels) <= ALLOWED_LABELS, a["alert"]
        assert set(ann) == {"summary", "description", "runbook_url", "dashboard_url"}
        # Swedish texts
        assert re.search("[åäöÅÄÖ]", ann["summary"] + ann["description"]), a["alert"]
        assert not re.search(r"\d\.\d+ ?%", ann["description"]), a["alert"]
        # the runbook exists in the repository, the dashboard link names a real board
        assert (ROOT / ann["runbook_url"]).is_file(), ann["runbook_url"]
        link = re.fullmatch(r"http://localhost:3000/d/([a-z-]+)(\?.*)?", ann["dashboard_url"])
        assert link and link.group(1) in uids, ann["dashboard_url"]
        if labels["scope"] == "unit":
            assert "var-unit={{ $labels.unit }}" in ann["dashboard_url"], a["alert"]


def test_runbooks_are_for_staff() -> None:
    for name in alerts.alert_names():
        text = (alerts.RUNBOOKS_DIR / f"{name}.md").read_text(encoding="utf-8")
        assert text.startswith("# "), name
        assert re.search("[åäö]", text) and len(text) > 400, name


def test_no_case_or_person_identifiers_in_rules() -> None:
    text = alerts.render_rules()
    assert not re.search(r"\b\d{6,8}[-+]?\d{4}\b", text), "something like a personnummer"
    for r in _rules():
        by = re.findall(r"by \(([^)]*)\)", r["expr"])
        for group in by:
            assert set(x.strip() for x in group.split(",")) <= {
                "indicator", "unit", "window", "job", "instance", "topic"}


def test_ratio_rules_are_guarded_against_zero() -> None:
    for r in _rules():
        if "record" in r and ("ratio" in r["record"] or "share" in r["record"]):
            assert re.search(r"\n/ \(.+ > 0\)$", r["expr"], re.S), r["record"]


def test_records_read_only_the_apps_metrics() -> None:
    """One pass of `promtool tsdb create-blocks-from rules` backfills them all."""
    for r in _rules():
        if "record" in r:
            assert "vardgaranti:" not in r["expr"], r["record"]


def test_severity_policy() -> None:
    sev = {(a["alert"]): a["labels"]["severity"] for a in _alerts()}
    assert sev["VardgarantiBelowTarget"] == sev["VardgarantiUnitBelowTarget"] == "report"
    assert sev["VardgarantiBelowLastYear"] == sev["VardgarantiUnitBelowLastYear"] == "report"
    assert sev["VardgarantiUnitWorse"] == sev["VardgarantiBreachBurst"] == "page"
    assert sev["VardgarantiWaitingOverLimitRising"] == "page"
    assert sev["VardgarantiAtRisk"] == sev["VardgarantiNewBreaches"] == "worklist"


def test_alertmanager_refers_to_existing_alerts_and_routes_every_severity() -> None:
    cfg = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    names = set(alerts.alert_names())
    text = ALERTMANAGER.read_text(encoding="utf-8")
    for ref in re.findall(r'alertname="([^"]+)"', text):
        assert ref in names, ref
    routes = {r["matchers"][0]: r for r in cfg["route"]["routes"]}
    for sev in alerts.SEVERITIES:
        assert f'severity="{sev}"' in routes, sev
    # the worklist: one notification per unit and day
    worklist = routes['severity="worklist"']
    assert worklist["group_by"] == ["unit"] and worklist["group_interval"] == "24h"
    # the report: one digest per team and week
    report = routes['severity="report"']
    assert report["group_by"] == ["team"] and report["repeat_interval"] == "168h"


@pytest.mark.parametrize("ind", INDICATORS, ids=lambda i: i.id)
def test_last_year_reports_need_cases_in_both_years(ind: Any) -> None:
    by_name = {a["alert"]: a for a in _alerts() if a["labels"].get("indicator") == ind.id}
    for name in ("VardgarantiBelowLastYear", "VardgarantiUnitBelowLastYear"):
        expr = by_name[name]["expr"]
        assert expr.count(f">= {alerts.MIN_CASES}") == 2, name
        assert f"offset {alerts.LAST_YEAR_OFFSET}" in expr, name


def test_burst_bar_is_a_count_test() -> None:
    """The Python re-doing of the rule: no page on one breach at a unit that expects none,
    a page on a handful, and a wave across the region raises every unit's bar."""
    z = alerts.COUNT_Z

    def b(recent: int, usual: int, region_recent: int, region_usual: int) -> bool:
        return alert_tests.burst(recent, usual, region_recent, region_usual, z)

    share = alerts.BURST_BASELINE_DAYS // alerts.BURST_DAYS
    assert not b(alerts.MIN_BURST - 1, 0, 0, 0)
    assert b(8, 0, 8, 0)  # 8 in two days where none is usual
    assert not b(8, 4 * share, 8 + 100, 4 * share + 100 * share)  # usual 4: 8 is chance
    # the same burst during a region-wide wave (the rest of the region tripled): no page
    assert b(12, 2 * share, 12 + 40, 2 * share + 40 * share)
    assert not b(12, 2 * share, 12 + 120, 2 * share + 40 * share)


def test_one_bar_for_every_count_test() -> None:
    """UnitWorse and BreachBurst hold their counts to the same bar (COUNT_Z), in every
    team: 7 breaches in two days where 1 is usual page, 6 do not."""
    share = alerts.BURST_BASELINE_DAYS // alerts.BURST_DAYS
    assert alert_tests.burst(7, share, 7 + 50, share + 50 * share, alerts.COUNT_Z)
    assert not alert_tests.burst(6, share, 6 + 50, share + 50 * share, alerts.COUNT_Z)
    bar = f"+ {alerts._num(alerts.COUNT_Z / 2)}) ^ 2"
    for ind in INDICATORS:
        assert bar in alerts.burst_expr(ind)
        assert bar in alerts.worse_expr(ind, alerts.UNIT)
