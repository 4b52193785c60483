"""History into Prometheus with its own tools: export, promtool, a real Prometheus.

A small generated year is replayed into a store and exported for two months
(`vardgaranti export openmetrics`); `promtool tsdb create-blocks-from openmetrics` makes
the blocks, `... from rules` backfills the repository's recording rules, and a real
Prometheus answers for a past month what `vardgaranti query` answers.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from benchmarks.alerts import backfill_records, blocks_from_openmetrics, history_prometheus
from consumers.export import stamp
from dashboards.alerts import RULES_PATH
from vardgaranti.cli import main

pytestmark = pytest.mark.integration

FIRST, LAST = date(2024, 2, 1), date(2024, 3, 31)


@pytest.fixture(scope="module")
def tools() -> None:
    for tool in ("promtool", "prometheus"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install prometheus)")


def _query(db: str, as_of: date, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["query", "--db", db, "--window", "month", "--as-of", as_of.isoformat(),
                 "--format", "json"]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)["rows"]
    return rows


def test_a_replayed_month_in_prometheus_equals_query(
    tools: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, db = tmp_path / "year.jsonl.gz", f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["generate", "--year", "2024", "--scale", "0.01", "--out", str(log)]) == 0
    assert main(["replay", str(log), "--db", db]) == 0
    om = tmp_path / "history.om"
    assert main(["export", "openmetrics", "--from", FIRST.isoformat(), "--to",
                 LAST.isoformat(), "--db", db, "--out", str(om)]) == 0
    capsys.readouterr()
    blocks_from_openmetrics(om, tmp_path)
    feb = date(2024, 2, 29)
    expected = _query(db, feb, capsys)
    region = {r["indicator"]: r for r in expected if r["unit_id"] == "ALL"}
    assert len(region) == 7 and all(r["completed"] for r in region.values())
    backfill_records(tmp_path, FIRST, LAST)
    with history_prometheus(tmp_path, [RULES_PATH]) as prom:
        at = float(stamp(feb.toordinal()))
        got = {s.labels["indicator"]: s.value for s in prom.query(
            'vardgaranti:completed_ratio:window:region{window="month"}', at)}
        assert got.keys() == region.keys()
        for ind, row in region.items():
            assert got[ind] == pytest.approx(row["completed_ratio"], abs=5e-5), ind
        # a unit's figure, raw and recorded, at the same past instant
        unit_row = next(r for r in expected if r["unit_id"] != "ALL" and r["waiting"])
        sel = f'{{indicator="{unit_row["indicator"]}", unit="{unit_row["unit_id"]}"}}'
        assert prom.query(f"vardgaranti:waiting:unit{sel}", at)[0].value == unit_row["waiting"]
        assert prom.query(f"vardgaranti_waiting_over_limit{sel}", at)[0].value == (
            unit_row["waiting_over_limit"])
        # the repository's rules load and evaluate on the backfilled history
        assert all(r["health"] != "err" for r in prom.rules())
