"""The SVG month chart, the cached monthly reads and the Swedish formats, without a server."""

from __future__ import annotations

import re
from datetime import date

from models.measures import Period, Row
from web import format as fmt
from web.charts import Series, month_chart
from web.figures import Figures, monthly_shares


def test_swedish_and_english_formats() -> None:
    assert fmt.number(129_292) == "129\u00a0292"
    assert fmt.share(0.884) == "88,4\u00a0%"
    assert fmt.share(0.884, "en") == "88.4%"
    assert fmt.share(None) == "–"
    assert fmt.whole_share(0.8) == "80\u00a0%"
    assert fmt.decimal(88.44) == "88,4" and fmt.decimal(None) == ""
    assert fmt.day(date(2025, 12, 31)) == "31 december 2025"
    # 22:59:41 UTC on New Year's Eve is 23:59 in Stockholm (CET, UTC+1)
    assert fmt.moment(1_767_221_981_000_000) == "31 december 2025 23:59"
    assert fmt.local_time("2025-07-01T06:30:00+00:00") == "2025-07-01 08:30"  # CEST
    assert fmt.month_names()[:3] == ["jan", "feb", "mars"]


def test_month_chart_breaks_at_gaps_and_draws_the_target() -> None:
    svg = month_chart(
        "Besök <90 dagar>", [f"m{i}" for i in range(1, 13)],
        [Series("2025", [0.5, 0.6, None, 0.7] + [None] * 8, "this-year")],
        0.95, "Mål 95 %", fmt.share, fmt.whole_share,
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "Besök &lt;90 dagar&gt;" in svg and "<90" not in svg  # escaped
    assert len(re.findall(r'<polyline class="this-year"', svg)) == 2  # a gap splits the line
    assert len(re.findall(r'<circle class="this-year"', svg)) == 3
    assert "2025 m2: 60,0\u00a0%" in svg  # tooltips in the locale's format
    grid = [float(y) for y in re.findall(r'<line class="grid" [^>]*y1="([\d.]+)"', svg)]
    target = re.search(r'<line class="target" [^>]*y1="([\d.]+)"', svg)
    assert target is not None and len(grid) == 6  # 0, 20 … 100 %
    assert grid[5] < float(target.group(1)) < grid[4]  # 95 % lies between 100 % and 80 %


class CountingSource:
    def __init__(self, rows: dict[tuple[int, str], Row]) -> None:
        self.rows = rows
        self.calls: list[Period] = []

    def per_unit(self, period: Period, indicator: str | None = None) -> dict[tuple[int, str], Row]:
        self.calls.append(period)
        return self.rows if date.fromordinal(period.first).year == 2025 else {}


def test_figures_keep_answers_a_while_and_skip_empty_years() -> None:
    rows = {(2, "u1"): Row("besok_90", "u1", completed=10, completed_within=8, clocks=12)}
    source = CountingSource(rows)
    now = [0.0]
    today = date(2025, 3, 15)
    figures = Figures(source, lambda: today, ttl=60, ttl_closed=600,  # type: ignore[arg-type]
                      clock=lambda: now[0])
    months = figures.months(2025, today)
    assert [m is not None for m in months] == [True] * 3 + [False] * 9
    # the year query, then January .. March (March up to today)
    assert len(source.calls) == 4
    assert source.calls[-1] == Period.of(date(2025, 3, 1), today, today)
    figures.months(2025, today)
    assert len(source.calls) == 4  # kept
    now[0] = 61.0
    figures.months(2025, today)
    assert len(source.calls) == 6  # the periods up to today expired; January and February not
    now[0] = 601.0
    figures.months(2025, today)
    assert len(source.calls) == 10
    assert figures.months(2024, today) == [None] * 12
    assert len(source.calls) == 11  # an empty year costs one query
    assert figures.whole_year(2024, today) is None
    assert len(source.calls) == 12  # … and its January tells it is no year to compare with
    shares = monthly_shares(months, "u1")
    assert shares["besok_90"][:4] == [0.8, 0.8, 0.8, None]
    assert monthly_shares(months, "ALL")["besok_90"][0] == 0.8
    assert shares["samma_dag"][0] is None


def test_names_sort_in_swedish_order() -> None:
    from web.format import swedish_key

    names = ["Östra", "Ängen", "Åby", "Zeta", "aby", "Västerås"]
    assert sorted(names, key=swedish_key) == ["aby", "Västerås", "Zeta", "Åby", "Ängen", "Östra"]
