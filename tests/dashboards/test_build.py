"""The generated Grafana dashboards and the Grafana provisioning files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from consumers.sqlviews import READER_ROLE
from dashboards import build, sqlpanels
from dashboards.alerts import MIN_CASES
from models.indicators import INDICATORS

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

# The metric catalogue the app exposes (the contract with streams/ and consumers/).
CATALOGUE = {
    "vardgaranti_completed_within", "vardgaranti_completed_over", "vardgaranti_waiting",
    "vardgaranti_waiting_over_limit", "vardgaranti_paused", "vardgaranti_excluded",
    "vardgaranti_at_risk", "vardgaranti_breaches_total", "vardgaranti_target_ratio",
    "vardgaranti_reference_ratio", "vardgaranti_events_processed_total",
    "vardgaranti_events_rejected_total", "vardgaranti_events_ignored_total",
    "vardgaranti_watermark_timestamp_seconds", "vardgaranti_last_event_timestamp_seconds",
    "vardgaranti_processing_lag_seconds", "vardgaranti_consumer_lag_messages",
}
FUNCTIONS_AND_KEYWORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "time", "sort_desc",
    "and", "or", "unless", "bool", "offset", "by", "on", "without", "ignoring",
}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (without a PromQL parser: strip what is not one)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    s = re.sub(r"\{[^{}]*\}", " ", s)                     # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                     # range selectors
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+\w+", " ", s)
    s = re.sub(r"\$\w+", " ", s)                          # dashboard variables
    tokens = re.findall(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\()?", s)
    return {name for name, call in tokens if not call and name not in FUNCTIONS_AND_KEYWORDS}


def _boards() -> dict[str, dict[str, Any]]:
    return build.build_all()


def _prom_targets(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in board["panels"]:
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("type") == "prometheus":
                yield t


def test_metric_names_parser() -> None:
    assert metric_names(
        'sum by (unit) (rate(vardgaranti_breaches_total{unit=~"$unit"}[1d] offset 1y))\n'
        "/ (sum(vardgaranti_waiting) > 0) and on (unit) (x >= $min_cases)"
    ) == {"vardgaranti_breaches_total", "vardgaranti_waiting", "x"}
    assert metric_names("time() - min(vardgaranti_watermark_timestamp_seconds) * 1000") == {
        "vardgaranti_watermark_timestamp_seconds"}


def test_dashboards_are_up_to_date() -> None:
    boards = _boards()
    on_disk = {p.name for p in build.DASHBOARD_DIR.glob("*.json")}
    assert on_disk == set(boards)
    for name, board in boards.items():
        assert (build.DASHBOARD_DIR / name).read_text(encoding="utf-8") == build.render(board), (
            f"dashboards/{name} is stale: run python -m dashboards.build"
        )


def test_stable_uids() -> None:
    uids = {b["uid"] for b in _boards().values()}
    assert uids == {"vardgaranti-overview", "vardgaranti-unit", "vardgaranti-worklist",
                    "vardgaranti-pipeline"}


def test_promql_uses_only_catalogue_metrics() -> None:
    for board in _boards().values():
        n = 0
        for t in _prom_targets(board):
            names = metric_names(t["expr"])
            assert names, t["expr"]
            assert names <= CATALOGUE, (board["uid"], names - CATALOGUE)
            n += 1
        assert n > 0, board["uid"]
        for v in board["templating"]["list"]:
            if v["type"] == "query":
                inner = re.fullmatch(r"label_values\((.*), *(\w+)\)", v["query"])
                assert inner, v["query"]
                assert metric_names(inner.group(1)) <= CATALOGUE


def test_overview_has_every_indicator_against_its_target() -> None:
    board = _boards()["vardgaranti-overview.json"]
    text = json.dumps(board, ensure_ascii=False)
    for ind in INDICATORS:
        assert f'indicator=\\"{ind.id}\\"' in text
        mine = [p for p in board["panels"] if p["title"].startswith(ind.name_sv + " - ")
                and p["datasource"]["uid"] == "prometheus"]
        assert len(mine) == 3, ind.id
        stat = mine[0]
        steps = stat["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[-1] == {"color": "green", "value": ind.target}
        chart = mine[2]
        exprs = [t["expr"] for t in chart["targets"]]
        assert any("offset 1y" in e for e in exprs)
        assert any("vardgaranti_reference_ratio" in e for e in exprs)
        assert any("vardgaranti_target_ratio" in e for e in exprs)


def test_small_cell_suppression() -> None:
    for board in _boards().values():
        names = {v["name"]: v for v in board["templating"]["list"]}
        ratios = [t["expr"] for t in _prom_targets(board) if "/ (" in t["expr"] and (
            "vardgaranti_completed" in t["expr"] or "vardgaranti_waiting_over" in t["expr"])]
        for expr in ratios:
            assert ">= $min_cases" in expr, expr
        if ratios:
            assert names["min_cases"]["query"] == str(MIN_CASES)
            assert names["min_cases"]["current"]["value"] == str(MIN_CASES)
    unit = _boards()["vardgaranti-unit.json"]
    var_names = [v["name"] for v in unit["templating"]["list"]]
    assert {"indicator", "unit", "min_cases"} <= set(var_names)


def test_worklist_has_prometheus_tables_and_the_monthly_postgres_table() -> None:
    board = _boards()["vardgaranti-worklist.json"]
    tables = [p for p in board["panels"] if p["type"] == "table"]
    pg = [p for p in tables if p["datasource"]["uid"] == "postgres"]
    assert len(pg) == 1 and pg[0]["targets"][0]["rawSql"] == sqlpanels.MONTH_TABLE_SQL
    assert any("vardgaranti_at_risk" in t["expr"] for p in tables if p not in pg
               for t in p["targets"])


def test_overview_has_the_annual_report_chart_from_the_store_per_indicator() -> None:
    board = _boards()["vardgaranti-overview.json"]
    pg = [p for p in board["panels"] if p.get("datasource", {}).get("uid") == "postgres"]
    assert [p["targets"] for p in pg] == [sqlpanels.history_targets(i) for i in INDICATORS]
    legends = {s.legend for s in sqlpanels.HISTORY_SERIES}
    assert {"Mål", "Vårdgarantivärde, förra året"} <= legends
    for p in pg:  # a year back is the same query on the range a year earlier
        sqls = [t["rawSql"] for t in p["targets"]]
        assert all("window_counts" in q and "$__timeFrom()" in q for q in sqls)
        assert sum("interval '1 year'" in q for q in sqls) == 2


def test_panel_ids_unique_and_grid_fits() -> None:
    for board in _boards().values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for p in board["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24


def test_datasource_provisioning_matches_dashboards() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text("utf-8"))
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    pg = by_uid["postgres"]
    assert pg["url"] == "postgres:5432" and pg["user"] == READER_ROLE
    assert pg["jsonData"]["database"] == "vardgaranti"
    assert pg["secureJsonData"]["password"] == "$__env{GRAFANA_DB_PASSWORD}"
    used = set()
    for board in _boards().values():
        for p in board["panels"]:
            if "datasource" in p:
                used.add((p["datasource"]["type"], p["datasource"]["uid"]))
    assert used == {(d["type"], d["uid"]) for d in ds["datasources"]}
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text("utf-8"))
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
