"""The deploy/ configuration through the real tools: promtool and amtool.

Install them with `apt-get install prometheus prometheus-alertmanager`; without the
binaries these tests are skipped with that message.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboards import build

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

pytestmark = pytest.mark.integration


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install prometheus prometheus-alertmanager)")
    return path


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_promtool_check_rules() -> None:
    _run(_tool("promtool"), "check", "rules", str(PROM / "rules" / "vardgaranti.rules.yml"))


def test_promtool_test_rules() -> None:
    files = sorted(str(p) for p in (PROM / "tests").glob("*.yml"))
    assert files
    out = _run(_tool("promtool"), "test", "rules", *files, cwd=PROM / "tests")
    assert out.stdout.count("SUCCESS") == len(files)


def test_promtool_check_config() -> None:
    out = _run(_tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert "1 rule files found" in out.stdout


def test_amtool_check_config() -> None:
    _run(_tool("amtool"), "check-config", str(ALERTMANAGER))


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=page", "alertname=VardgarantiUnitWorse"], "page"),
    (["severity=worklist", "alertname=VardgarantiAtRisk"], "worklist"),
    (["severity=report", "alertname=VardgarantiBelowTarget"], "report"),
    (["severity=ticket", "alertname=VardgarantiWatermarkStalled"], "ticket"),
    (["alertname=Unlabelled"], "ticket"),
])
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    out = _run(_tool("amtool"), "config", "routes", "test",
               f"--config.file={ALERTMANAGER}", *labels)
    assert out.stdout.strip() == receiver


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL (variables replaced by sample values)."""
    subst = {"$min_cases": "20", "$__rate_interval": "5m", "$indicator": "besok_90",
             "$unit": "unit_a", "$window": "30d"}
    rules: list[dict[str, str]] = []
    for board in build.build_all().values():
        for p in board["panels"]:
            for t in p.get("targets", []):
                if "expr" in t:
                    expr = t["expr"]
                    for k, v in subst.items():
                        expr = expr.replace(k, v)
                    rules.append({"record": f"dashboard:check:{len(rules)}", "expr": expr})
    f = tmp_path / "dashboard-queries.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    _run(_tool("promtool"), "check", "rules", str(f))
