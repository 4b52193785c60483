"""`vardgaranti report` golden tests: small hand-made logs, expectations worked out by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.events import ev
from vardgaranti.cli import main


def write(path: Path, events: list[dict[str, Any]], extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    lines = [json.dumps(e) for e in events] + list(extra)
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main([*argv, "--format", "json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


MARCH = [
    # besok_90 at unit A: 3 clocks
    ev("referral.issued", "r1", "2023-12-20T10:00:00+01:00", "A", pathway="specialist"),
    ev("visit.completed", "r1", "2024-03-05T10:00:00+01:00", "A"),  # day 76: within
    ev("referral.issued", "r2", "2023-11-01T10:00:00+01:00", "A", pathway="specialist"),
    ev("visit.completed", "r2", "2024-03-06T10:00:00+01:00", "A"),  # day 126: over
    ev("referral.issued", "r3", "2023-12-15T10:00:00+01:00", "A", pathway="specialist"),
    # r3 still waiting on 31 March: day 107, over the limit (deadline 14 March)
    # besok_90 at unit B: one waiting within the limit, one cancelled in March
    ev("referral.issued", "r4", "2024-02-01T10:00:00+01:00", "B", pathway="specialist"),
    ev("referral.issued", "r5", "2024-02-01T10:00:00+01:00", "B", pathway="specialist"),
    ev("case.cancelled", "r5", "2024-03-10T10:00:00+01:00", "B"),
    # samma_dag at B: one within, one not
    ev("contact.requested", "k1", "2024-03-04T08:00:00+01:00", "B", channel="phone"),
    ev("contact.completed", "k1", "2024-03-04T09:00:00+01:00", "B"),
    ev("contact.requested", "k2", "2024-03-04T08:00:00+01:00", "B", channel="phone"),
    ev("contact.completed", "k2", "2024-03-05T09:00:00+01:00", "B"),
]


def test_report_golden_march(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path / "march.jsonl.gz", MARCH)
    doc = run_json(capsys, "report", str(log), "--as-of", "2024-03-31")
    assert (doc["as_of"], doc["from"], doc["to"]) == ("2024-03-31", "2024-03-01", "2024-03-31")
    row = {(r["indicator"], r["unit_id"]): r for r in doc["rows"]}
    assert [(r["indicator"], r["unit_id"]) for r in doc["rows"]] == [
        ("samma_dag", "ALL"), ("samma_dag", "B"),
        ("besok_90", "ALL"), ("besok_90", "A"), ("besok_90", "B"),
    ]
    assert row[("besok_90", "ALL")] == {
        "indicator": "besok_90", "unit_id": "ALL",
        "completed": 2, "completed_within": 1, "completed_ratio": 0.5,
        "waiting": 2, "waiting_over_limit": 1, "waiting_ratio": 0.5,
        "paused": 0, "excluded": 0, "cancelled": 1, "target": 0.95,
    }
    assert row[("besok_90", "A")]["waiting_ratio"] == 0.0
    assert row[("besok_90", "B")]["completed_ratio"] is None
    assert row[("besok_90", "B")]["waiting_ratio"] == 1.0
    assert row[("samma_dag", "B")]["completed_ratio"] == 0.5
    assert row[("samma_dag", "B")]["target"] == 1.0


def test_report_period_and_unit_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path / "march.jsonl", MARCH)
    doc = run_json(capsys, "report", str(log), "--as-of", "2024-03-31", "--from", "2024-03-06",
                   "--to", "2024-03-06", "--unit", "A")
    assert [(r["indicator"], r["unit_id"]) for r in doc["rows"]] == [("besok_90", "A")]
    assert doc["rows"][0]["completed"] == 1  # only r2 was fulfilled on 6 March
    assert doc["rows"][0]["completed_within"] == 0
    doc = run_json(capsys, "report", str(log), "--as-of", "2024-03-31", "--unit", "ALL")
    assert {r["unit_id"] for r in doc["rows"]} == {"ALL"}


def test_report_keeps_going_through_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = [
        "this is not json",
        json.dumps({**MARCH[0], "event_id": "b1", "occurred_at": "2024-03-04T09:00:00"}),
        json.dumps({**MARCH[0], "event_id": "b2", "event_id_x": 1, "type": "referral.sent"}),
        json.dumps({**MARCH[0], "event_id": "b3", "patient_ref": "19121212-1212"}),
        json.dumps({**MARCH[0], "event_id": "b4", "attributes": {"pathway": "dental"}}),
        json.dumps({k: v for k, v in MARCH[0].items() if k != "case_id"}),
    ]
    clean = write(tmp_path / "clean.jsonl", MARCH)
    dirty = write(tmp_path / "dirty.jsonl", MARCH[:6], bad)
    write(tmp_path / "rest.jsonl", MARCH[6:])
    expected = run_json(capsys, "report", str(clean), "--as-of", "2024-03-31")
    dead = tmp_path / "dead.jsonl"
    assert main(["report", str(dirty), str(tmp_path / "rest.jsonl"), "--as-of", "2024-03-31",
                 "--dead-letter", str(dead), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == expected
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [d["reason"] for d in letters] == [
        "invalid_json", "naive_timestamp", "unknown_type", "personnummer", "invalid_value",
        "missing_field",
    ]
    assert [d["source"] for d in letters] == [f"{dirty}:{n}" for n in range(7, 13)]
    assert "19121212-1212" not in dead.read_text()
    assert letters[3]["raw"].count("<masked>") == 1
    assert "rejected:" in err and "personnummer 1" in err


def test_report_lists_orphans_and_inconsistent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write(tmp_path / "odd.jsonl", [
        ev("visit.completed", "x", "2024-03-02T10:00:00+01:00", "A"),
        ev("visit.completed", "y", "2024-03-02T10:00:00+01:00", "A"),
        ev("referral.issued", "y", "2024-03-03T10:00:00+01:00", "A", pathway="specialist"),
    ])
    dead = tmp_path / "dead.jsonl"
    run_json(capsys, "report", str(log), "--as-of", "2024-03-31", "--dead-letter", str(dead))
    reasons = sorted(json.loads(line)["reason"] for line in dead.read_text().splitlines())
    assert reasons == ["inconsistent", "orphan"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "missing.jsonl", "--as-of", "2024-03-31"], "no such file"),
        (["report", "{log}", "--as-of", "2024-02-30"], "is not a date"),
        (["report", "{log}", "--as-of", "2024-03-01", "--to", "2024-03-05"], "after the snapshot"),
        (["report", "{log}", "--as-of", "2024-03-31", "--from", "2024-03-10", "--to",
          "2024-03-05"], "after to"),
        (["report", "{log}"], "--as-of"),
        (["report", "{gz}", "--as-of", "2024-03-31"], "cannot read"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    log = write(tmp_path / "ok.jsonl", MARCH)
    fake_gz = tmp_path / "fake.jsonl.gz"
    fake_gz.write_text("not gzip")
    argv = [a.format(log=log, gz=fake_gz) for a in argv]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_csv_and_table_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path / "march.jsonl", MARCH)
    assert main(["report", str(log), "--as-of", "2024-03-31", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("indicator,unit_id,completed,completed_within,completed_ratio")
    assert lines[1].startswith("samma_dag,ALL,2,1,0.5,")
    assert main(["report", str(log), "--as-of", "2024-03-31"]) == 0
    assert "Första besök specialiserad vård inom 90 dagar" in capsys.readouterr().out
