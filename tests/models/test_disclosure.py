"""Final months and suppressed small cells (models.disclosure)."""

from __future__ import annotations

from datetime import date

import pytest

from models.disclosure import Disclosure
from models.measures import Row


@pytest.mark.parametrize(
    ("as_of", "watermark", "final"),
    [
        (date(2024, 3, 31), date(2024, 4, 25), False),  # 31 March + 25 days: still grace
        (date(2024, 3, 31), date(2024, 4, 26), True),
        (date(2024, 3, 5), date(2024, 4, 26), True),  # the month counts, not the day
        (date(2024, 2, 10), date(2024, 3, 25), False),  # 29 Feb (leap year) + 25 = 25 Mar
        (date(2024, 2, 10), date(2024, 3, 26), True),
        (date(2024, 3, 31), None, False),  # no events yet
    ],
)
def test_a_month_is_final_once_the_watermark_is_past_its_end_plus_grace(
    as_of: date, watermark: date | None, final: bool
) -> None:
    assert Disclosure(grace_days=25).final(as_of, watermark) is final


def test_no_grace_means_final_the_day_after_the_month() -> None:
    rule = Disclosure(grace_days=0)
    assert not rule.final(date(2024, 12, 15), date(2024, 12, 31))
    assert rule.final(date(2024, 12, 15), date(2025, 1, 1))
    assert rule.final_after(date(2024, 12, 15)) == date(2024, 12, 31)


def test_measures_on_fewer_than_min_cases_are_suppressed() -> None:
    rule = Disclosure(min_cases=20)
    assert rule.suppressed(Row("besok_90", "u", completed=19, waiting=20)) == ["completed"]
    assert rule.suppressed(Row("besok_90", "u", completed=1, waiting=3)) == [
        "completed", "waiting"]
    # nothing at all is no secret (and its ratio is null anyway)
    assert rule.suppressed(Row("besok_90", "u", completed=0, waiting=0)) == []
    assert rule.label == "< 20"
    assert Disclosure(min_cases=1).suppressed(Row("besok_90", "u", completed=1)) == []


def test_listing_names_the_cells() -> None:
    rows = [Row("besok_90", "ALL", completed=40, waiting=40),
            Row("besok_90", "a", completed=5, waiting=25)]
    assert Disclosure().listing(rows) == [
        {"indicator": "besok_90", "unit_id": "a", "measures": ["completed"]}]
