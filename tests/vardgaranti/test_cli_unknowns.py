"""`report` and `query` say what they do not know: an unknown unit, a date after the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.events import ev
from tests.vardgaranti.test_report_cli import write
from vardgaranti.cli import main


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write(tmp_path / "l.jsonl", [
        ev("referral.issued", "c1", "2024-03-01T10:00:00+01:00", "u1", pathway="specialist"),
        ev("visit.completed", "c1", "2024-03-20T10:00:00+01:00", "u1"),
    ])


def test_report_unknown_unit_exits_2_naming_it(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(log), "--as-of", "2024-03-31", "--unit", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_report_after_the_newest_event_says_so(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(log), "--as-of", "2024-03-31", "--format", "json"]) == 0
    assert "newest event's date 2024-03-20" in capsys.readouterr().err


def test_query_refuses_after_the_newest_event_and_unknown_units(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["replay", str(log), "--db", db]) == 0
    capsys.readouterr()
    assert main(["query", "--db", db, "--as-of", "2024-04-30", "--format", "json"]) == 2
    assert "2024-03-20" in capsys.readouterr().err
    assert main(["query", "--db", db, "--unit", "nope", "--format", "json"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["query", "--db", db, "--unit", "u1", "--format", "json"]) == 0
