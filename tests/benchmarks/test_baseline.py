"""The DuckDB baseline of the benchmark suite agrees with the report on a small year, and
its comparison does catch a difference (the suite relies on both)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from benchmarks import baseline
from vardgaranti.generate import generate

AS_OF = date(2024, 12, 31)


@pytest.fixture(scope="module")
def small_year(tmp_path_factory: pytest.TempPathFactory) -> str:
    log = tmp_path_factory.mktemp("bench") / "year.jsonl.gz"
    generate(log, 2024, seed=3, scale=0.003, progress=False)
    return str(log)


@pytest.fixture(scope="module")
def engine_cells(small_year: str) -> tuple[baseline.Cells, dict[str, int]]:
    return baseline.engine_cells(small_year, AS_OF)


def test_duckdb_and_the_engine_agree_on_every_cell(
    small_year: str, engine_cells: tuple[baseline.Cells, dict[str, int]]
) -> None:
    theirs, _, _ = baseline.duckdb_cells(small_year, AS_OF)
    ours, stats = engine_cells
    summary, disagree = baseline.compare(ours, theirs)
    assert disagree == []
    # the comparison covers every indicator and figure, with something in each of them
    figures = {(s["indicator"], s["figure"]) for s in summary if s["ours"] > 0}
    assert {f for _, f in figures} >= {"completed month", "completed_within 365d", "waiting"}
    assert len({i for i, _ in figures}) == 7
    assert 0 < stats["cases left out"] < stats["cases"] / 10


def test_a_difference_is_reported_per_cell(
    engine_cells: tuple[baseline.Cells, dict[str, int]],
) -> None:
    ours, _ = engine_cells
    key = next(k for k in sorted(ours) if k[0] == "completed month")
    theirs = {**ours, key: ours[key] + 1}
    _, disagree = baseline.compare(ours, theirs)
    assert len(disagree) == 1
    assert key[2] in disagree[0] and "completed month" in disagree[0]


def test_pauses_and_transfers_are_left_out_on_both_sides(tmp_path: Path) -> None:
    """A case with a transfer counts for neither side; a plain case counts for both."""
    lines = [
        '{"event_id":"a1","type":"referral.issued","case_id":"a","occurred_at":'
        '"2024-12-02T09:00:00+01:00","unit_id":"u1","attributes":{"pathway":"specialist"}}',
        '{"event_id":"a2","type":"visit.completed","case_id":"a","occurred_at":'
        '"2024-12-10T09:00:00+01:00","unit_id":"u1"}',
        '{"event_id":"b1","type":"referral.issued","case_id":"b","occurred_at":'
        '"2024-12-02T09:00:00+01:00","unit_id":"u1","attributes":{"pathway":"specialist"}}',
        '{"event_id":"b2","type":"case.transferred","case_id":"b","occurred_at":'
        '"2024-12-03T09:00:00+01:00","unit_id":"u1","attributes":{"to_unit_id":"u2"}}',
        '{"event_id":"b3","type":"visit.completed","case_id":"b","occurred_at":'
        '"2024-12-10T09:00:00+01:00","unit_id":"u2"}',
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    theirs, _, _ = baseline.duckdb_cells(str(log), AS_OF)
    ours, stats = baseline.engine_cells(str(log), AS_OF)
    assert ours == theirs == {
        ("completed month", 2, "u1"): 1, ("completed_within month", 2, "u1"): 1,
        ("completed 365d", 2, "u1"): 1, ("completed_within 365d", 2, "u1"): 1,
    }
    assert stats["cases left out"] == 1
