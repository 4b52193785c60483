"""`generate --incident`: a deterministic collapse of one unit's clocks."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from vardgaranti.cli import main
from vardgaranti.generate import Incident, generate

UNIT = "bup-vasteras"


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def _late_share(path: Path, first: date, last: date) -> tuple[int, int]:
    """(visits after the 30-day limit, visits) of UNIT's BUP referrals due in [first, last]."""
    started: dict[str, date] = {}
    late = total = 0
    for line in _lines(path):
        e = json.loads(line)
        if e["unit_id"] != UNIT:
            continue
        day = date.fromisoformat(e["occurred_at"][:10])
        if e["type"] == "referral.issued" and e["attributes"].get("pathway") == "bup":
            started[e["case_id"]] = day
        elif e["type"] == "visit.completed" and e["case_id"] in started:
            due = date.fromordinal(started[e["case_id"]].toordinal() + 30)
            if first <= due <= last:
                total += 1
                late += day > due
    return late, total


def test_incident_collapses_the_unit_and_is_deterministic(tmp_path: Path) -> None:
    inc = Incident.parse(f"{UNIT}:bup_besok_30:2024-05-01:2024-06-15:0.1")
    a, b, plain = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "p.jsonl.gz"
    generate(a, 2024, seed=3, scale=0.05, progress=False, incidents=[inc])
    generate(b, 2024, seed=3, scale=0.05, progress=False, incidents=[inc])
    generate(plain, 2024, seed=3, scale=0.05, progress=False)
    assert a.read_bytes() == b.read_bytes()
    late, total = _late_share(a, inc.first, inc.last)
    base_late, base_total = _late_share(plain, inc.first, inc.last)
    assert total >= 10 and late / total >= 0.8
    assert base_late / base_total < 0.7


@pytest.mark.parametrize(("text", "needle"), [
    ("bup-vasteras:bup_besok_30:2024-05-01:0.1", "UNIT:INDICATOR:FROM:TO:RATE"),
    ("nowhere:bup_besok_30:2024-05-01:2024-06-01:0.1", "no unit 'nowhere'"),
    ("bup-vasteras:bup:2024-05-01:2024-06-01:0.1", "no indicator 'bup'"),
    ("bup-vasteras:bup_besok_30:2024-06-01:2024-05-01:0.1", "FROM is after TO"),
    ("bup-vasteras:bup_besok_30:2024-05-01:2024-06-01:2", "between 0 and 1"),
    ("bup-vasteras:bup_besok_30:May:2024-06-01:0.1", "YYYY-MM-DD"),
])
def test_bad_incident_is_one_line_exit_2(
    text: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["generate", "--year", "2024", "--out", str(tmp_path / "x.jsonl"),
                 "--incident", text])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "--incident" in err
    assert len(err.strip().splitlines()) == 1
