"""OpenMetrics export: every day's figures equal what /metrics showed at that day's end."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.export import daily_series, export_openmetrics, read_counters, stamp
from consumers.store import COUNTS, Store
from models.calendar import TZ, end_of_day_micros
from models.indicators import ORDER
from models.live import LiveView
from models.measures import MEASURE_CODES, WINDOWS, Key
from models.tables import OPEN_END
from tests.consumers.test_store_replay import run, synthetic, write_log
from vardgaranti.cli import main

FIRST, LAST = date(2024, 2, 1), date(2024, 11, 30)


def _keys(store: Store) -> list[tuple[Key, int]]:
    """Every stored counter (the export reads only those it writes)."""
    c = COUNTS.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(c.indicator, c.unit_id, c.measure, c.day, c.until_day,
                                   c.count).where(c.indicator != "")).all()
    return [
        ((MEASURE_CODES[m], ORDER[ind], unit, day.toordinal(),
          0 if until == OPEN_END else until.toordinal()), n)
        for ind, unit, m, day, until, n in rows
    ]


def test_every_day_equals_the_live_figures(store: Store, tmp_path: Path) -> None:
    """The export and the live view (what /metrics reads) are two computations of the same
    figures: every day's end must agree."""
    run(store, write_log(tmp_path / "year.jsonl", synthetic(1200)))
    view = LiveView()
    view.apply(_keys(store))
    series = {(s.indicator, s.unit): s for s in daily_series(read_counters(store, LAST),
                                                            FIRST, LAST)}
    assert series
    for d in range(FIRST.toordinal(), LAST.toordinal() + 1):
        view.advance(end_of_day_micros(d))
        live = view.live()
        shown: set[tuple[int, str]] = set()
        for (ind, unit), s in series.items():
            k = d - s.first
            if k < 0:
                continue
            figures = ([s.within[w][k] for w in WINDOWS] + [s.over[w][k] for w in WINDOWS]
                       + [s.waiting[k], s.waiting_over_limit[k], s.paused[k], s.excluded[k],
                          s.breaches[k]])
            lv = live.get((ORDER[ind], unit))
            if lv is None:  # /metrics leaves out a unit with no clock yet: all zero here
                assert not any(figures), (d, ind, unit)
                continue
            shown.add((ORDER[ind], unit))
            assert figures == ([lv.within[w] for w in WINDOWS] + [lv.over[w] for w in WINDOWS]
                               + [lv.waiting, lv.waiting_over_limit, lv.paused, lv.excluded,
                                  lv.breaches]), (d, ind, unit)
        assert shown == set(live), date.fromordinal(d)


def test_stamp_is_the_end_of_the_local_day() -> None:
    for day in (date(2024, 3, 30), date(2024, 3, 31), date(2024, 10, 27), date(2024, 7, 1)):
        local = datetime.fromtimestamp(float(stamp(day.toordinal())), UTC).astimezone(TZ)
        assert (local.date(), local.hour, local.minute, local.second) == (day, 23, 59, 59)
        assert local.microsecond == 999_000


def test_exposition_shape(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    run(store, write_log(tmp_path / "year.jsonl", synthetic(300)))
    out = io.StringIO()
    samples = export_openmetrics(store, date(2024, 5, 1), date(2024, 5, 3), out)
    lines = out.getvalue().splitlines()
    assert lines[-1] == "# EOF" and out.getvalue().endswith("\n")
    assert samples == sum(not x.startswith("#") for x in lines) > 0
    assert "# TYPE vardgaranti_breaches counter" in lines
    assert any(x.startswith("vardgaranti_breaches_total{") for x in lines)
    assert not any(x.startswith("vardgaranti_breaches{") for x in lines)
    within = [x for x in lines if x.startswith('vardgaranti_completed_within{indicator="besok_90"')]
    assert {x.split('window="')[1].split('"')[0] for x in within} == set(WINDOWS)
    # each family's samples are together, each series' days in order
    families = [x.split()[2] for x in lines if x.startswith("# TYPE")]
    assert len(families) == len(set(families))
    one = within[0].split(" ")[0]
    stamps = [float(x.rsplit(" ", 1)[1]) for x in within if x.startswith(one + " ")]
    assert len(stamps) == 3 and stamps == sorted(stamps)


def test_cli_writes_a_file_and_refuses_bad_ranges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    run(Store(db), write_log(tmp_path / "year.jsonl", synthetic(200)))
    out = tmp_path / "history.om"
    assert main(["export", "openmetrics", "--from", "2024-03-01", "--to", "2024-03-31",
                 "--db", db, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").endswith("# EOF\n")
    assert "samples" in capsys.readouterr().err
    assert main(["export", "openmetrics", "--from", "2024-04-01", "--to", "2024-03-01",
                 "--db", db]) == 2
    err = capsys.readouterr().err
    assert "--from" in err and len(err.strip().splitlines()) == 1
    assert main(["export", "openmetrics", "--from", "2024-03-01", "--to", "2024-03-31",
                 "--db", db, "--out", str(tmp_path / "no" / "such" / "dir.om")]) == 2
    assert "--out" in capsys.readouterr().err
