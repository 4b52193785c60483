"""The pages over HTTP: sign-in, the figures against `report`, units, the worklist and its
Excel export, the English switch, /docs without any other host."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consumers.replay import Pipeline, replay
from consumers.report import build_report
from consumers.store import Store
from models.clocks import Rules
from models.measures import Period, Row
from models.worklist import AtRisk
from tests.consumers.test_store_replay import synthetic, write_log
from vardgaranti.serve import pipeline_source
from web import format as fmt
from web.api import create_app
from web.auth import SESSION_COOKIE, local_path
from web.metrics import MetricsSnapshot, registry_for

TOKEN = "pages-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TODAY = date(2024, 12, 31)
WEB = Path(__file__).parents[2] / "web"


def app_for(source: Any, today: date | None = TODAY, token: str | None = TOKEN,
            synthetic_data: bool = False) -> TestClient:
    registry = registry_for(lambda: MetricsSnapshot(live={}, watermark_us=None))
    return TestClient(create_app(source, registry, lambda: today, token,
                                 synthetic=synthetic_data))


class FakeSource:
    """Fixed rows and a fixed worklist; counts the aggregate queries."""

    def __init__(self, rows: dict[tuple[int, str], Row], cases: list[AtRisk]) -> None:
        self.rows = rows
        self.cases = cases
        self.calls: list[Period] = []

    def per_unit(self, period: Period, indicator: str | None = None) -> dict[tuple[int, str], Row]:
        self.calls.append(period)
        return dict(self.rows)

    def at_risk(self, indicator: str | None = None, unit: str | None = None,
                limit: int = 1000, as_of: date | None = None) -> list[AtRisk]:
        return [c for c in self.cases if (indicator in (None, c.indicator))
                and unit in (None, c.unit_id)][:limit]

    def units(self) -> set[str]:
        return {u for _, u in self.rows} | {c.unit_id for c in self.cases}

    def ping(self) -> bool:
        return True


ROWS = {
    (2, "vas-ortopedi"): Row("besok_90", "vas-ortopedi", completed=1200, completed_within=1061,
                             waiting=40, waiting_over_limit=3, clocks=1300),
    (2, "kop-kirurgi"): Row("besok_90", "kop-kirurgi", completed=300, completed_within=290,
                            waiting=10, clocks=320),
    (0, "vc-glasbruket"): Row("samma_dag", "vc-glasbruket", completed=129_292,
                              completed_within=114_294, clocks=129_300),
}
CASES = [
    AtRisk("c-1", "besok_90", "vas-ortopedi", "2024-10-02T06:55:01+00:00", "2024-12-31", 0,
           "p-48770a11"),
    AtRisk("c-2", "atgard_90", "kop-kirurgi", "2024-10-03T12:00:00+00:00", "2025-01-02", 2,
           "p-16472b2e"),
]


@pytest.fixture()
def fake() -> FakeSource:
    return FakeSource(ROWS, CASES)


@pytest.fixture(scope="module")
def store_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    tmp = tmp_path_factory.mktemp("pages")
    log = write_log(tmp / "year.jsonl", synthetic(900))
    store = Store(f"sqlite:///{tmp / 'pages.db'}")
    pipeline = Pipeline.restore(store, Rules())
    replay([log], store, pipeline)
    yield app_for(pipeline_source(pipeline, store)), log


def fields(html: str, indicator: str) -> dict[str, str]:
    """The data-field cells of one indicator's row."""
    row = re.search(rf'<tr data-indicator="{indicator}">(.*?)</tr>', html, re.S)
    assert row is not None, indicator
    return dict(re.findall(r'data-field="(\w+)">([^<]*)<', row.group(1)))


# ------------------------------------------------------------------ access


def test_pages_send_a_browser_to_sign_in_and_accept_a_bearer_token(fake: FakeSource) -> None:
    client = app_for(fake)
    for path in ("/", "/enheter", "/enheter/vas-ortopedi", "/arbetslista", "/arbetslista.csv"):
        refused = client.get(path + "?lang=en", follow_redirects=False)
        assert refused.status_code == 303, path
        assert refused.headers["location"].startswith("/logga-in?next=" + path)
        assert client.get(path, headers=AUTH).status_code == 200, path
    wrong = client.get("/", headers={"Authorization": "Bearer nope"}, follow_redirects=False)
    assert wrong.status_code == 303
    for open_path in ("/metrics", "/healthz", "/readyz", "/logga-in", "/docs", "/redoc"):
        assert client.get(open_path).status_code == 200, open_path


def test_sign_in_once_gives_a_strict_httponly_cookie_that_is_not_the_token(
    fake: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_for(fake)
    with caplog.at_level("WARNING"):
        bad = client.post("/logga-in", data={"token": "guess", "next": "/enheter"})
    assert bad.status_code == 401 and "Fel token" in bad.text
    assert "guess" not in caplog.text and "refused sign-in" in caplog.text
    good = client.post("/logga-in", data={"token": TOKEN, "next": "/enheter"},
                       follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/enheter"
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie
    # the cookie alone opens the pages and the API: no token in any URL
    assert client.get("/arbetslista").status_code == 200
    assert client.get("/api/v1/at-risk").status_code == 200
    client.post("/logga-ut")
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, "forged")
    assert client.get("/api/v1/aggregates").status_code == 401


def test_sign_in_only_returns_to_a_path_on_this_server() -> None:
    assert local_path("/arbetslista?enhet=u1") == "/arbetslista?enhet=u1"
    for outside in ("//example.org/x", "https://example.org", "javascript:alert(1)", "",
                    None, "/\\example.org"):
        assert local_path(outside) == "/"


def test_without_a_token_configured_everything_is_open(fake: FakeSource) -> None:
    client = app_for(fake, token=None)
    assert client.get("/").status_code == 200
    assert "Logga ut" not in client.get("/").text
    assert client.get("/logga-in", follow_redirects=False).status_code == 303


# ------------------------------------------------------------------ figures


def test_overview_shows_the_year_as_report_computes_it(
    store_world: tuple[TestClient, Path],
) -> None:
    client, log = store_world
    html = client.get("/", headers=AUTH).text
    period = Period.of(date(2024, 1, 1), TODAY, TODAY)
    region = [r for r in build_report([log], period).rows if r.unit_id == "ALL"]
    assert len(region) == 6  # the synthetic log has no bup_behandling_30
    for row in region:
        d = row.as_dict()
        assert fields(html, row.indicator) == {
            "completed": fmt.number(row.completed),
            "completed_ratio": fmt.share(d["completed_ratio"]),
            "waiting": fmt.number(row.waiting),
            "waiting_over_limit": fmt.number(row.waiting_over_limit),
            "waiting_ratio": fmt.share(d["waiting_ratio"]),
        }
    assert html.count('<svg class="chart"') == 7
    assert "Syntetiska data" not in html  # only the demo says its data are made up


def test_unit_page_shows_the_units_window(store_world: tuple[TestClient, Path]) -> None:
    client, log = store_world
    html = client.get("/enheter/u1?window=90d", headers=AUTH).text
    period = Period.of(date(2024, 10, 3), TODAY, TODAY)
    rows = [r for r in build_report([log], period, unit="u1").rows if r.unit_id == "u1"]
    assert rows
    for row in rows:
        assert fields(html, row.indicator)["completed"] == fmt.number(row.completed)
    assert client.get("/enheter/no-such-unit", headers=AUTH).status_code == 404


def test_swedish_numbers_and_names_and_the_english_switch(fake: FakeSource) -> None:
    client = app_for(fake, synthetic_data=True)
    html = client.get("/", headers=AUTH).text
    assert '<html lang="sv">' in html and "Syntetiska data" in html
    assert fields(html, "samma_dag")["completed"] == "129\u00a0292"
    assert fields(html, "samma_dag")["completed_ratio"] == "88,4\u00a0%"
    english = client.get("/?lang=en", headers=AUTH)
    assert "vardgaranti_lang=en" in english.headers["set-cookie"]
    assert fields(english.text, "samma_dag")["completed_ratio"] == "88.4%"
    assert "Synthetic data" in english.text
    # the choice sticks: the next page without ?lang is English too
    assert "Worklist" in client.get("/arbetslista", headers=AUTH).text


def test_units_are_listed_by_name_and_group_and_searchable(fake: FakeSource) -> None:
    client = app_for(fake)
    html = client.get("/enheter", headers=AUTH).text
    assert "Ortopedkliniken Västerås" in html and "Sjukhuset i Köping" in html
    assert "Vårdcentraler Köping" in html
    found = client.get("/enheter", params={"q": "köping"}, headers=AUTH).text
    assert "Kirurgmottagningen Köping" in found and "Ortopedkliniken Västerås" not in found
    clinics = client.get("/enheter", params={"grupp": "vardcentral"}, headers=AUTH).text
    assert "Familjeläkarna Glasbruket" in clinics and "Ortopedkliniken" not in clinics


def test_pages_before_the_first_event(fake: FakeSource) -> None:
    client = app_for(fake, today=None)
    for path in ("/", "/enheter", "/enheter/u1", "/arbetslista"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 200 and "Inga händelser ännu" in response.text


# ------------------------------------------------------------------ worklist and export


def test_worklist_most_urgent_first_filtered_patient_ref_only(fake: FakeSource) -> None:
    client = app_for(fake)
    html = client.get("/arbetslista", headers=AUTH).text
    assert html.index('data-case="c-1"') < html.index('data-case="c-2"')
    assert "p-48770a11" in html and "Ortopedkliniken Västerås" in html
    only = client.get("/arbetslista", params={"indikator": "atgard_90"}, headers=AUTH).text
    assert 'data-case="c-2"' in only and 'data-case="c-1"' not in only
    by_unit = client.get("/arbetslista", params={"enhet": "vas-ortopedi"}, headers=AUTH).text
    assert 'data-case="c-1"' in by_unit and 'data-case="c-2"' not in by_unit
    assert "2024-10-02 08:55" in html  # started, in Stockholm time


def test_exports_open_right_in_a_swedish_excel(fake: FakeSource) -> None:
    client = app_for(fake)
    got = client.get("/arbetslista.csv", params={"indikator": "besok_90"}, headers=AUTH)
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Per" and rows[1][0] == TODAY.isoformat()
    assert rows[1][1:3] == ["0", "2024-12-31"] and "p-48770a11" in rows[1]
    assert len(rows) == 2
    agg = client.get("/aggregat.csv", params={"enhet": "vas-ortopedi", "window": "30d"},
                     headers=AUTH)
    table = list(csv.reader(io.StringIO(agg.content.decode("utf-8-sig")), delimiter=";"))
    assert table[0][:3] == ["Från", "Till", "Per"]
    assert len(table) == 2  # the unit only, no region-wide row
    line = dict(zip(table[0], table[1], strict=True))
    assert (line["Från"], line["Till"], line["Per"]) == ("2024-12-02", "2024-12-31",
                                                         "2024-12-31")
    assert line["Enhet"] == "Ortopedkliniken Västerås"
    assert line["Andel inom gränsen (%)"] == "88,4"  # decimal comma, a number for Excel
    assert line["Mål (%)"] == "95,0"


# ------------------------------------------------------------------ offline


def test_docs_and_pages_load_nothing_from_another_host(fake: FakeSource) -> None:
    client = app_for(fake)
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'",
                                                                           html)
        assert assets and all(a.startswith("/") for a in assets), assets
        for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
        assert "googleapis" not in html and "cdn" not in html
    for path in ("/", "/enheter", "/arbetslista", "/logga-in"):
        html = client.get(path, headers=AUTH).text
        links = re.findall(r'(?:src|href|action)="([^"]+)"', html)
        assert all(not re.match(r"\w+://", link) for link in links), links
    shipped = [p for p in (WEB / "templates").iterdir()] + [p for p in (WEB / "static").iterdir()]
    for path in shipped:
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path
