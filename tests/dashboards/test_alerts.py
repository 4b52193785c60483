"""The generated Prometheus rules: up to date, complete per indicator, well labelled."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import alerts
from models.indicators import INDICATORS

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
PER_INDICATOR = {
    "VardgarantiBelowTarget", "VardgarantiFarBelowTarget", "VardgarantiUnitBelowTarget",
    "VardgarantiWaitingOverLimitRising", "VardgarantiNewBreaches",
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
    rendered = alerts.render_tests()
    on_disk = {p.name for p in alerts.TESTS_DIR.glob("*.yml")}
    assert on_disk == set(rendered), "unexpected or missing files in deploy/prometheus/tests"
    for name, text in rendered.items():
        assert (alerts.TESTS_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python -m dashboards.alerts"
        )


def test_render_is_deterministic() -> None:
    assert alerts.render_rules() == alerts.render_rules()
    assert alerts.render_tests() == alerts.render_tests()


@pytest.mark.parametrize("ind", INDICATORS, ids=lambda i: i.id)
def test_every_indicator_has_its_alerts(ind: Any) -> None:
    mine = [a for a in _alerts() if a["labels"].get("indicator") == ind.id]
    names = {a["alert"] for a in mine}
    expected = PER_INDICATOR | ({"VardgarantiAtRisk"} if ind.at_risk_days > 0 else set())
    assert names == expected
    by_name = {a["alert"]: a for a in mine}
    # thresholds come from the table
    assert f"< {ind.target:g}\n" in by_name["VardgarantiBelowTarget"]["expr"]
    assert f"< {ind.target:g}\n" in by_name["VardgarantiUnitBelowTarget"]["expr"]
    assert f"< {alerts.far_threshold(ind):g}\n" in by_name["VardgarantiFarBelowTarget"]["expr"]
    # the minimum case count guards every compliance alert
    for name in ("VardgarantiBelowTarget", "VardgarantiFarBelowTarget",
                 "VardgarantiUnitBelowTarget"):
        assert f">= {alerts.MIN_CASES}" in by_name[name]["expr"]
    for a in mine:
        assert f'indicator="{ind.id}"' in a["expr"]


def test_far_threshold_is_below_target_and_last_year() -> None:
    for ind in INDICATORS:
        assert 0 <= alerts.far_threshold(ind) < min(ind.target, ind.result_2023)


def test_pipeline_alerts_present() -> None:
    assert {a["alert"] for a in _alerts() if a["labels"]["kind"] == "pipeline"} == PIPELINE


def test_alert_labels_and_annotations() -> None:
    for a in _alerts():
        labels, ann = a["labels"], a["annotations"]
        assert labels["severity"] in {"page", "ticket"}, a["alert"]
        assert labels["team"], a["alert"]
        assert set(labels) <= ALLOWED_LABELS, a["alert"]
        assert set(ann) == {"summary", "description", "runbook_sv", "runbook_en"}, a["alert"]
        assert all(v.strip() for v in ann.values()), a["alert"]
        # the Swedish runbook is Swedish, with å/ä/ö
        assert re.search("[åäöÅÄÖ]", ann["runbook_sv"]), a["alert"]


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
        if "record" in r and "ratio" in r["record"]:
            assert re.search(r"/ \([^()]+ > 0\)$", r["expr"]), r["record"]


def test_severity_policy() -> None:
    sev = {(a["alert"]): a["labels"]["severity"] for a in _alerts()}
    assert sev["VardgarantiBelowTarget"] == "ticket"
    assert sev["VardgarantiUnitBelowTarget"] == "ticket"
    assert sev["VardgarantiFarBelowTarget"] == "page"
    assert sev["VardgarantiWaitingOverLimitRising"] == "page"
    assert sev["VardgarantiAtRisk"] == "ticket"


def test_alertmanager_refers_to_existing_alerts_and_labels() -> None:
    cfg = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    names = set(alerts.alert_names())
    text = ALERTMANAGER.read_text(encoding="utf-8")
    for ref in re.findall(r'alertname="([^"]+)"', text):
        assert ref in names, ref
    assert cfg["route"]["group_by"] == ["alertname", "indicator"]
    receivers = {r["name"] for r in cfg["receivers"]}
    assert receivers == {"page", "ticket"}
    # region-wide compliance inhibits the same indicator's per-unit alerts
    assert any(
        'scope="region"' in r["source_matchers"] and 'scope="unit"' in r["target_matchers"]
        and r["equal"] == ["indicator"] for r in cfg["inhibit_rules"]
    )
    scopes_kinds = {(a["labels"]["scope"], a["labels"]["kind"]) for a in _alerts()}
    assert ("region", "compliance") in scopes_kinds and ("unit", "compliance") in scopes_kinds
