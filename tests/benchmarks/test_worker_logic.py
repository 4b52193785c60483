"""The in-process worker benchmark counts what it ran: every line, the records it wrote."""

from __future__ import annotations

from pathlib import Path

from benchmarks.worker_logic import run
from vardgaranti.generate import generate


def test_every_line_goes_through_and_the_records_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "year.jsonl"
    generate(path, 2024, seed=3, scale=0.0005, progress=False)
    lines = path.read_bytes().splitlines()
    figures = run(lines, batch=250)
    assert figures["lines"] == len(lines)
    # each event touches its case (one changelog record at most per case and batch) and
    # makes deltas, which become counter-group records
    assert 0 < figures["delta_records_per_event"] < 1
    assert 0.5 < figures["changelog_records_per_event"] < 3
