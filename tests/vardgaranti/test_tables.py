"""The terminal tables: Swedish labels, unit names and numbers, and they fit the terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from models.measures import Row
from vardgaranti.output import Column, as_table, fitting_table

ROWS = [
    Row("besok_90", "ALL", completed=129_292, completed_within=114_294, waiting=2000,
        waiting_over_limit=120, paused=7, clocks=1),
    Row("besok_90", "vas-onh", completed=1000, completed_within=700, waiting=90,
        waiting_over_limit=12, clocks=1),
    Row("bup_utredning_30", "bup-vasteras", completed=40, completed_within=8, clocks=1),
]


def render(width: int) -> str:
    buf = io.StringIO()
    as_table("Vårdgaranti", ROWS, Console(file=buf, width=width, color_system=None))
    return buf.getvalue()


@pytest.mark.parametrize("width", [80, 100, 160])
def test_tables_fit_the_terminal_and_read_swedish(width: int) -> None:
    out = render(width)
    assert max(len(line) for line in out.splitlines()) <= width
    for text in ("Hela regionen", "129\u00a0292", "88,4\u00a0%", "Väntande",
                 "BUP utredning inom 30 dagar", "20,0\u00a0%"):
        assert text in out, text
    # the unit's name, whole words (wrapped, never cut)
    words = out.replace("│", " ").split()
    for word in ["Öron-,", "näs-", "och", "halskliniken", "Västerås"]:
        assert word in words, word
    assert "vas-onh" not in out and "…" not in out


def test_narrow_terminals_drop_the_least_needed_columns_first() -> None:
    wide, narrow = render(160), render(80)
    assert "Avbrutna" in wide and "Avbrutna" not in narrow
    assert "Över" in narrow and "Andel" in narrow  # the guarantee's own figures stay


def test_fitting_table_keeps_every_column_when_there_is_room() -> None:
    buf = io.StringIO()
    table = fitting_table("t", [Column("Enhet", numeric=False), Column("Antal", drop=1)],
                          [(["Vårdcentralen Mälarbacken", "1\u00a0234"], None)], 200)
    Console(file=buf, width=200).print(table)
    assert "Antal" in buf.getvalue() and "Vårdcentralen Mälarbacken" in buf.getvalue()
