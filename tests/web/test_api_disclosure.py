"""`/api/v1/aggregates` says whether its figures are final and which cells to suppress."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from models.disclosure import Disclosure
from models.indicators import INDICATORS
from models.measures import Period, Row


class _Rows:
    """A source with one big and one small unit for besok_90."""

    def per_unit(self, period: Period, indicator: str | None = None) -> dict[tuple[int, str], Row]:
        ind = next(n for n, i in enumerate(INDICATORS) if i.id == "besok_90")
        return {(ind, "big"): Row("besok_90", "big", completed=30, completed_within=25,
                                  waiting=40, clocks=70),
                (ind, "small"): Row("besok_90", "small", completed=3, completed_within=3,
                                    waiting=25, clocks=28)}

    def at_risk(self, *args: object, **kwargs: object) -> list[object]:
        return []

    def ping(self) -> bool:
        return True


def client(watermark: date, rule: Disclosure) -> TestClient:
    from web.api import create_app

    return TestClient(create_app(_Rows(), CollectorRegistry(), lambda: watermark,
                                 disclosure=rule))


def test_final_and_suppressed_beside_the_rows() -> None:
    march = {"from": "2024-03-01", "to": "2024-03-31"}
    got = client(date(2024, 4, 26), Disclosure()).get("/api/v1/aggregates", params=march).json()
    assert got["final"] is True and got["min_cases"] == 20
    assert got["suppressed"] == [
        {"indicator": "besok_90", "unit_id": "small", "measures": ["completed"]}]
    # the rows keep the shape of `report`
    assert [r["unit_id"] for r in got["rows"]] == ["ALL", "big", "small"]
    assert got["rows"][2]["completed"] == 3 and "suppressed" not in got["rows"][2]

    strict = client(date(2024, 4, 25), Disclosure(grace_days=25, min_cases=40))
    got = strict.get("/api/v1/aggregates", params=march).json()
    assert got["final"] is False
    assert {(s["unit_id"], tuple(s["measures"])) for s in got["suppressed"]} == {
        ("ALL", ("completed",)), ("big", ("completed",)), ("small", ("completed", "waiting"))}
