"""What staff get, checked as they get it: a real worker on the test broker, a real
Prometheus scraping it with the repository's rules, a real Alertmanager with the
repository's routes, and a webhook receiver in the test.

A referral is published, Prometheus sees its unit with no breach; then a later event moves
the worker's watermark past the deadline, the breach counter rises, the worklist rule
fires, and Alertmanager delivers one notification grouped for the unit.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.alerts import RULES_PATH
from tests.support.alertmanager import Webhook, alertmanager_binary, running_alertmanager
from tests.support.events import ev
from tests.support.prometheus import running_prometheus, wait_for
from tests.support.streaming import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
UNIT = "bup-e2e"


def _log(path: Path, *events: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def test_a_breach_reaches_the_worklist_receiver(stack: Stack, tmp_path: Path) -> None:
    prometheus, alertmanager = shutil.which("prometheus"), alertmanager_binary()
    if prometheus is None or alertmanager is None:
        pytest.skip("apt-get install prometheus prometheus-alertmanager")
    worker = stack.worker()
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    with Webhook() as hook:
        for receiver in config["receivers"]:  # only where it delivers: the routes are the repo's
            for w in receiver["webhook_configs"]:
                w["url"] = f"{hook.url}/hooks/{receiver['name']}"
        with running_alertmanager(alertmanager, config, tmp_path / "am") as am_url:
            prom_config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES_PATH)],
                "alerting": {"alertmanagers": [{"static_configs": [
                    {"targets": [am_url.removeprefix("http://")]}]}]},
                "scrape_configs": [{"job_name": "vardgaranti", "static_configs": [
                    {"targets": [f"127.0.0.1:{worker.port}"],
                     "labels": {"mode": "streaming"}}]}],
            }
            with running_prometheus(prometheus, prom_config, tmp_path / "prom") as prom:
                stack.publish(_log(tmp_path / "a.jsonl", ev(
                    "referral.issued", "c-e2e-1", "2024-03-04T09:00:00+01:00", UNIT,
                    pathway="bup")))
                breaches = f'vardgaranti_breaches_total{{unit="{UNIT}"}}'
                wait_for(lambda: [s.value for s in prom.query(breaches)] == [0.0],
                         "Prometheus to scrape the unit with no breach", 120)
                time.sleep(3)  # a few scrapes at 0, so that the rise is an increase
                stack.publish(_log(tmp_path / "b.jsonl", ev(
                    "contact.requested", "c-e2e-2", "2024-04-12T09:00:00+02:00", "vc-e2e",
                    channel="phone")))
                wait_for(lambda: [s.value for s in prom.query(breaches)] == [1.0],
                         "the breach to be scraped", 120)

                def worklist() -> dict[str, Any] | None:
                    return next((n for n in hook.received if n["receiver"] == "worklist"),
                                None)

                note = wait_for(worklist, "the worklist notification", 180, every=1)
    assert note["path"] == "/hooks/worklist" and note["status"] == "firing"
    assert note["groupLabels"] == {"unit": UNIT}
    [alert] = note["alerts"]
    labels, ann = alert["labels"], alert["annotations"]
    assert labels["alertname"] == "VardgarantiNewBreaches"
    assert (labels["indicator"], labels["unit"], labels["severity"]) == (
        "bup_besok_30", UNIT, "worklist")
    assert ann["summary"].startswith(f"Arbetslista {UNIT}: ")
    assert "vårdgivare" in ann["description"]
    assert ann["dashboard_url"].endswith(f"var-indicator=bup_besok_30&var-unit={UNIT}")
    assert ann["runbook_url"].endswith("/VardgarantiNewBreaches.md")
    # what staff get names no case and no patient
    assert "c-e2e" not in json.dumps(note)
    assert not [n for n in hook.received if n["receiver"] == "page"]
