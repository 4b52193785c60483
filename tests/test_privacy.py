"""Privacy (issue 7): personnummer-shaped values never come out of the monitor.

Events whose free text (extra attributes, a cancellation's reason, a profession, unknown
fields) carries personnummer-shaped values are valid and counted; ids and `patient_ref`
shaped like one are rejected, and their dead letters hold them masked. The embedded
pipeline, the API, `/metrics`, the command line, every log record at DEBUG (SQLAlchemy's
statements and parameters included), every table of the store and the dashboards are then
searched for each value, in every spelling (with or without century, separator or none).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlmodel import SQLModel

from consumers.replay import Pipeline, replay
from consumers.store import DEAD, Store
from models.clocks import Rules
from models.events import PERSONNUMMER
from tests.support.events import ev
from vardgaranti.cli import main
from vardgaranti.serve import pipeline_snapshot, pipeline_source
from web.api import create_app
from web.metrics import registry_for

ROOT = Path(__file__).parents[1]
TOKEN = "privacy-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Each value distinct, so that a leak says where it came from.
IN_FREE_TEXT = {
    "contact note": "19480317-4471",
    "cancel reason": "480317-4472",
    "profession": "194803174473",
    "unknown field": "4803174474",
    "nested extra": "480317+4475",
    "referral text": "19480317+4476",
}
IN_IDS = {
    "patient_ref": "19480317-4477",
    "case_id": "480317-4478",
    "unit_id": "4803174479",
    "to_unit_id": "194803174480",
    "event_id": "480317+4483",
    "patient_ref escaped": "4803174482",
    "patient_ref after å": "480317-4484",  # json.dumps writes \u00e5480317-4484
}
IN_BROKEN_LINE = "480317-4481"
ALL_VALUES = [*IN_FREE_TEXT.values(), *IN_IDS.values(), IN_BROKEN_LINE]


def spellings(value: str) -> set[str]:
    """Every way the number could show: as given, digits only, 10 digits, with - or +."""
    digits = re.sub(r"\D", "", value)
    core = digits[-10:]
    return {value, digits, core, core[:6] + "-" + core[6:], core[:6] + "+" + core[6:]}


def assert_no_leak(where: str, text: str) -> None:
    # JSON escapes (\u0034 is "4", also when repr doubles the backslash) put back: an
    # escaped number is still the number
    plain = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)
    for value in ALL_VALUES:
        for form in spellings(value):
            assert form not in text and form not in plain, f"{form} ({value}) in {where}"


def escaped(value: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in value)


def valid_events() -> list[dict[str, Any]]:
    pnr = IN_FREE_TEXT
    events = [
        # r1: a specialist referral whose deadline (31 March) is 1 day after the watermark
        ev("referral.issued", "r1", "2024-01-01T10:00:00+01:00", "ort", pathway="specialist",
           remiss=f"remiss för {pnr['referral text']}"),
        ev("contact.requested", "k1", "2024-03-29T09:00:00+01:00", "vc", channel="phone",
           note=f"ring {pnr['contact note']}"),
        ev("contact.completed", "k1", "2024-03-29T10:00:00+01:00", "vc"),
        ev("assessment.needed", "a1", "2024-03-28T09:00:00+01:00", "vc"),
        ev("assessment.completed", "a1", "2024-03-29T09:00:00+01:00", "vc",
           profession=f"lakare {pnr['profession']}"),
        ev("referral.issued", "r2", "2024-02-01T10:00:00+01:00", "ort", pathway="specialist"),
        ev("case.cancelled", "r2", "2024-03-10T10:00:00+01:00", "ort",
           reason=f"patient {pnr['cancel reason']} moved"),
        ev("decision.made", "d1", "2024-01-15T10:00:00+01:00", "ort", pathway="specialist",
           kind="treatment"),
        ev("wait.paused", "d1", "2024-02-01T10:00:00+01:00", "ort", reason="medical",
           free={"nested": [pnr["nested extra"]]}),
        ev("wait.resumed", "d1", "2024-02-10T10:00:00+01:00", "ort"),
        ev("case.transferred", "d1", "2024-03-30T08:00:00+01:00", "ort", to_unit_id="ort-2"),
    ]
    events[0]["patient_ref"] = "p-r1"
    events[2]["comment"] = f"uppringd {pnr['unknown field']}"  # unknown top-level field
    return events


def rejected_lines() -> list[str]:
    base = ev("referral.issued", "x1", "2024-03-01T10:00:00+01:00", "ort", pathway="bup")
    ids = IN_IDS
    lines = [
        json.dumps({**base, "patient_ref": ids["patient_ref"]}),
        json.dumps({**base, "case_id": ids["case_id"]}),
        json.dumps({**base, "unit_id": f"vc-{ids['unit_id']}"}),
        json.dumps(ev("case.transferred", "x2", "2024-03-01T10:00:00+01:00", "ort",
                      to_unit_id=ids["to_unit_id"])),
        json.dumps({**base, "event_id": f"e-{ids['event_id']}"}),
        json.dumps({**base, "patient_ref": "@"}).replace(
            '"@"', f'"{escaped(ids["patient_ref escaped"])}"'),
        json.dumps({**base, "patient_ref": "å" + ids["patient_ref after å"]}),
    ]
    return [*lines, f'{{"event_id": "e", "note": "{IN_BROKEN_LINE}", ']  # not JSON


@dataclass
class World:
    log: Path
    store: Store
    pipeline: Pipeline
    responses: dict[str, tuple[int, str]] = field(default_factory=dict)  # what the API said
    logs: str = ""  # every log record, at DEBUG, formatted with its arguments
    output: str = ""  # stdout and stderr of the command line
    dead_letter_file: str = ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Everything runs here, with every logger at DEBUG; the tests read what came out."""
    tmp = tmp_path_factory.mktemp("privacy")
    log = tmp / "log.jsonl"
    log.write_text("\n".join([json.dumps(e) for e in valid_events()] + rejected_lines()) + "\n")
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    # every logger at DEBUG, those that set their own level (SQLAlchemy's) included
    levels = {name: logging.getLogger(name).level for name in ["", *root.manager.loggerDict]}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        store = Store(f"sqlite:///{tmp / 'store.db'}")
        pipeline = Pipeline.restore(store, Rules())
        replay([log], store, pipeline)
        world = World(log, store, pipeline)
        client = TestClient(create_app(
            pipeline_source(pipeline, store),
            registry_for(lambda: pipeline_snapshot(pipeline)), pipeline.today, TOKEN))
        requests: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
            "metrics": ("/metrics", {}, {}),
            "at-risk": ("/api/v1/at-risk", {}, AUTH),
            "aggregates": ("/api/v1/aggregates", {}, AUTH),
            "aggregates 365d": ("/api/v1/aggregates", {"window": "365d"}, AUTH),
            "aggregates custom": ("/api/v1/aggregates", {"from": "2024-01-01",
                                                         "to": "2024-03-01"}, AUTH),
            "aggregates unit": ("/api/v1/aggregates", {"unit": "ort"}, AUTH),
            "refused": ("/api/v1/at-risk", {}, {"Authorization": "Bearer wrong"}),
            "readyz": ("/readyz", {}, {}),
        }
        for name, (path, params, headers) in requests.items():
            response = client.get(path, params=params, headers=headers)
            world.responses[name] = (response.status_code, response.text)
        out = io.StringIO()
        url = f"sqlite:///{tmp / 'cli.db'}"
        dead_file = tmp / "dead.jsonl"
        with redirect_stdout(out), redirect_stderr(out):
            assert main(["report", str(log), "--as-of", "2024-03-31", "--format", "json",
                         "--dead-letter", str(dead_file)]) == 0
            assert main(["report", str(log), "--as-of", "2024-03-31"]) == 0
            assert main(["replay", str(log), "--db", url]) == 0
            assert main(["query", "--db", url, "--format", "csv"]) == 0
        world.output = out.getvalue()
        world.dead_letter_file = dead_file.read_text()
    finally:
        root.removeHandler(records)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    world.logs = records.text()
    yield world
    store.engine.dispose()


def test_free_text_is_counted_and_ids_are_rejected(world: World) -> None:
    assert world.pipeline.processed.total() == len(valid_events())
    assert world.pipeline.rejected == {"personnummer": len(IN_IDS), "invalid_json": 1}
    with world.store.engine.connect() as conn:
        rows = list(conn.execute(select(DEAD)))
    assert sorted(r.reason for r in rows) == ["invalid_json"] + ["personnummer"] * len(IN_IDS)
    for row in rows:  # stored masked, with the reason and the position
        assert row.source.startswith(f"{world.log}:")
        if row.reason == "personnummer":
            assert "<masked>" in row.raw
            assert "personal identity number" in row.message


def test_store_tables_hold_no_identity_number(world: World) -> None:
    read = 0
    with world.store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            text = "\n".join(repr(tuple(r)) for r in conn.execute(select(table)))
            assert_no_leak(f"table {table.name}", text)
            read += len(text)
    assert read > 1000  # the tables were read, not empty


def test_api_and_metrics_show_no_identity_number(world: World) -> None:
    for name, (status, text) in world.responses.items():
        assert status == (401 if name == "refused" else 200), name
        assert_no_leak(name, text)
    metrics = world.responses["metrics"][1]
    labels = {name for family in text_string_to_metric_families(metrics)
              for sample in family.samples for name in sample.labels}
    assert labels <= {"indicator", "unit", "window", "type", "reason", "year", "topic",
                      "partition"}, labels
    assert f'vardgaranti_events_rejected_total{{reason="personnummer"}} {len(IN_IDS)}.0' in metrics
    cases = json.loads(world.responses["at-risk"][1])["cases"]
    assert [(c["case_id"], c["patient_ref"]) for c in cases] == [("r1", "p-r1")]


def test_logs_at_debug_hold_no_identity_number(world: World) -> None:
    # the channel was live: SQL statements with their parameters, the masked dead letters
    # among them, and the API's refusal
    assert "INSERT INTO dead_letters" in world.logs
    assert "<masked>" in world.logs
    assert "refused GET /api/v1/at-risk" in world.logs
    assert_no_leak("the logs", world.logs)


def test_command_line_output_and_dead_letter_file(world: World) -> None:
    assert f"rejected: invalid_json 1, personnummer {len(IN_IDS)}" in world.output
    assert_no_leak("the command line's output", world.output)
    letters = [json.loads(line) for line in world.dead_letter_file.splitlines()]
    assert sorted(d["reason"] for d in letters) == ["invalid_json"] + ["personnummer"] * len(
        IN_IDS)
    assert all(d["source"].startswith(f"{world.log}:") for d in letters)
    assert all("<masked>" in d["raw"] for d in letters if d["reason"] == "personnummer")
    assert_no_leak("the dead-letter file", world.dead_letter_file)


def test_dashboards_and_alert_rules_carry_no_identity() -> None:
    files = sorted((ROOT / "dashboards").glob("*.json"))
    files += sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        assert not PERSONNUMMER.search(text), path.name
        queries = re.findall(r'"expr": "((?:[^"\\]|\\.)*)"|expr: (.*)', text)
        assert queries, path.name
        for query in ("".join(q) for q in queries):
            for identity in ("patient", "case_id", "event_id"):
                assert identity not in query, (path.name, query)


class _Records(logging.Handler):
    """Keeps every record formatted with its arguments, as any log handler would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name} {record.getMessage()}")

    def text(self) -> str:
        return "\n".join(self.lines)
