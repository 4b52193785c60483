"""The HTTP API and /metrics over a real store, checked against `report`."""

from __future__ import annotations

import gc
import hmac
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers.logs import ingested
from consumers.replay import Pipeline, feed, replay
from consumers.report import build_report
from consumers.store import Store
from models.calendar import end_of_day_micros
from models.clocks import Rules
from models.deadletter import DeadLetter
from models.engine import Engine
from models.live import LiveView
from models.measures import WINDOWS, Period, window_first
from tests.consumers.test_store_replay import synthetic, write_log
from vardgaranti.serve import pipeline_snapshot, pipeline_source
from web.api import WORKLIST_PAGE, create_app
from web.metrics import MetricsSnapshot, exposition, registry_for
from web.reads import freeze_loaded

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    tmp = tmp_path_factory.mktemp("api")
    log = write_log(tmp / "year.jsonl", synthetic(1200), ("garbage",))
    store = Store(f"sqlite:///{tmp / 'api.db'}")
    pipeline = Pipeline.restore(store, Rules())
    replay([log], store, pipeline)
    assert pipeline.today() == date(2024, 12, 31)
    app = create_app(pipeline_source(pipeline, store),
                     registry_for(lambda: pipeline_snapshot(pipeline)), pipeline.today, TOKEN)
    yield TestClient(app), log


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_token_required_for_the_api(world: tuple[TestClient, Path]) -> None:
    client, _ = world
    assert client.get("/api/v1/aggregates").status_code == 401
    bad = client.get("/api/v1/aggregates", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/aggregates", headers=AUTH).status_code == 200
    assert client.get("/api/v1/at-risk", headers=AUTH).status_code == 200
    # health and metrics stay open for probes and Prometheus
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_refusal_is_logged_without_the_token(
    world: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = world
    with caplog.at_level("DEBUG"):
        client.get("/api/v1/aggregates", headers={"Authorization": "Bearer wrong-secret"})
    assert "refused" in caplog.text
    assert "wrong-secret" not in caplog.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"indicator": "dental"}, "indicator"),
        ({"window": "2d"}, "window"),
        ({"from": "2024-13-01", "to": "2024-12-31"}, "from"),
        ({"limit": "0"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_bad_parameters_422_naming_the_field(
    world: tuple[TestClient, Path], params: dict[str, str], field: str
) -> None:
    client, _ = world
    path = "/api/v1/at-risk" if {"limit", "offset"} & set(params) else "/api/v1/aggregates"
    response = client.get(path, params=params, headers=AUTH)
    assert response.status_code == 422
    assert field in response.text


def test_from_without_to_is_refused(world: tuple[TestClient, Path]) -> None:
    client, _ = world
    response = client.get("/api/v1/aggregates", params={"from": "2024-01-01"}, headers=AUTH)
    assert response.status_code == 422
    assert "go together" in response.json()["detail"]


def test_aggregates_equal_report(world: tuple[TestClient, Path]) -> None:
    client, log = world
    got = client.get("/api/v1/aggregates", params={"window": "90d"}, headers=AUTH).json()
    assert (got["from"], got["to"]) == ("2024-10-03", "2024-12-31")
    period = Period.of(date(2024, 10, 3), date(2024, 12, 31), date(2024, 12, 31))
    assert got["rows"] == [r.as_dict() for r in build_report([log], period).rows]
    one = client.get("/api/v1/aggregates", headers=AUTH,
                     params={"indicator": "besok_90", "unit": "u1", "from": "2024-06-01",
                             "to": "2024-06-30", "as_of": "2024-06-30"}).json()
    period = Period.of(date(2024, 6, 1), date(2024, 6, 30), date(2024, 6, 30))
    expected = [r.as_dict() for r in build_report([log], period, unit="u1").rows
                if r.indicator == "besok_90"]
    assert one["rows"] == expected and expected


def test_metrics_numbers_match_report(world: tuple[TestClient, Path]) -> None:
    client, log = world
    text = client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }
    period = Period.of(date(2024, 12, 1), date(2024, 12, 31), date(2024, 12, 31))
    checked = 0
    for row in build_report([log], period).rows:
        if row.unit_id == "ALL":
            continue
        base = (("indicator", row.indicator), ("unit", row.unit_id))
        month = tuple(sorted((*base, ("window", "month"))))
        assert samples[("vardgaranti_completed_within", month)] == row.completed_within
        assert samples[("vardgaranti_completed_over", month)] == (
            row.completed - row.completed_within
        )
        assert samples[("vardgaranti_waiting", base)] == row.waiting
        assert samples[("vardgaranti_waiting_over_limit", base)] == row.waiting_over_limit
        checked += 1
    assert checked > 10
    assert samples[("vardgaranti_events_rejected_total", (("reason", "invalid_json"),))] == 1
    assert samples[("vardgaranti_target_ratio", (("indicator", "besok_90"),))] == 0.95
    assert not any("case" in name or "patient" in str(labels) for name, labels in samples)


# ------------------------------------------------------------------ access (issue 7)

REFUSED_HEADERS: list[dict[str, str | bytes]] = [
    {},
    {"Authorization": "Bearer nope"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Basic {TOKEN}"},  # the right secret, the wrong scheme
    {"Authorization": f"Bearer {TOKEN[:-1]}"},  # a prefix of the token
    {"Authorization": f"Bearer {TOKEN}x"},  # the token and more
    {"Authorization": f"Bearer {TOKEN.upper()}"},
    {"Authorization": "Bearer å-token".encode()},  # not ASCII: still a clean 401
]


@pytest.mark.parametrize("path", ["/api/v1/aggregates", "/api/v1/at-risk"])
def test_every_api_route_refuses_a_missing_or_wrong_token(
    world: tuple[TestClient, Path], path: str
) -> None:
    client, _ = world
    for headers in REFUSED_HEADERS:
        response = client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in response.text
    # a token in the query string is no credential
    assert client.get(path, params={"token": TOKEN}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200


def test_refusals_are_logged_at_warning_without_the_token(
    world: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = world
    wrong = f"guess-{TOKEN}"  # holds the real token: neither may be logged
    with caplog.at_level(logging.DEBUG):
        client.get("/api/v1/at-risk", headers={"Authorization": f"Bearer {wrong}"})
        client.get("/api/v1/aggregates")
        client.get("/api/v1/aggregates", headers=AUTH)  # accepted: no refusal
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [(r.name, r.levelno) for r in refusals] == [("vardgaranti.api", logging.WARNING)] * 2
    assert "GET /api/v1/at-risk" in refusals[0].getMessage()
    assert "GET /api/v1/aggregates" in refusals[1].getMessage()
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and TOKEN not in repr(record.args)
    assert TOKEN not in caplog.text


def test_token_is_compared_in_constant_time(
    world: tuple[TestClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = world
    real = hmac.compare_digest
    calls: list[bool] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(real(a, b))
        return calls[-1]

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert client.get("/api/v1/at-risk", headers={"Authorization": "Bearer x"}).status_code == 401
    assert client.get("/api/v1/at-risk", headers=AUTH).status_code == 200
    assert calls == [False, True]


def test_metrics_and_health_are_open_and_without_a_token_configured_so_is_the_api(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'open.db'}")
    pipeline = Pipeline.restore(store, Rules())
    app = create_app(pipeline_source(pipeline, store),
                     registry_for(lambda: MetricsSnapshot(live={}, watermark_us=None)),
                     pipeline.today, None)
    client = TestClient(app)
    for path in ("/metrics", "/healthz", "/readyz"):
        assert client.get(path).status_code == 200, path
    # no events yet: nothing is known, for any date
    response = client.get("/api/v1/aggregates", params={"from": "2024-01-01", "to": "2024-01-31"})
    assert response.status_code == 503
    assert client.get("/api/v1/at-risk").status_code == 503
    store.engine.dispose()


# ------------------------------------------------------------------ what is not known (issue 11)


@pytest.mark.parametrize("window", WINDOWS)
def test_every_live_window_equals_report(world: tuple[TestClient, Path], window: str) -> None:
    client, log = world
    got = client.get("/api/v1/aggregates", params={"window": window}, headers=AUTH).json()
    as_of = date(2024, 12, 31)
    period = Period.of(window_first(window, as_of), as_of, as_of)
    assert got["rows"] == [r.as_dict() for r in build_report([log], period).rows]
    assert got["rows"]


@pytest.mark.parametrize("params", [{"as_of": "2025-01-01"},
                                    {"from": "2024-12-01", "to": "2025-01-31"}])
def test_a_date_after_the_newest_event_is_refused_naming_it(
    world: tuple[TestClient, Path], params: dict[str, str]
) -> None:
    client, _ = world
    response = client.get("/api/v1/aggregates", params=params, headers=AUTH)
    assert response.status_code == 422
    assert "2024-12-31" in response.json()["detail"]
    risk = client.get("/api/v1/at-risk", params={"as_of": "2025-01-01"}, headers=AUTH)
    assert risk.status_code == 422 and "2024-12-31" in risk.json()["detail"]


def test_an_unknown_unit_is_404_naming_it(world: tuple[TestClient, Path]) -> None:
    client, _ = world
    for path in ("/api/v1/aggregates", "/api/v1/at-risk"):
        response = client.get(path, params={"unit": "no-such-unit"}, headers=AUTH)
        assert response.status_code == 404
        assert "no-such-unit" in response.json()["detail"]
    ok = client.get("/api/v1/aggregates", params={"unit": "u1"}, headers=AUTH).json()
    assert ok["rows"] and {r["unit_id"] for r in ok["rows"]} == {"u1"}


def test_worklist_is_most_urgent_first_with_days_over(world: tuple[TestClient, Path]) -> None:
    client, _ = world
    body = client.get("/api/v1/at-risk", params={"limit": 10_000}, headers=AUTH).json()
    cases = body["cases"]
    assert body["as_of"] == "2024-12-31" and cases
    assert [c["deadline"] for c in cases] == sorted(c["deadline"] for c in cases)
    over = [c for c in cases if c["days_left"] < 0]
    assert over, "the synthetic year leaves clocks over their deadline"
    assert all(c["days_over"] == -c["days_left"] for c in over)
    assert all(c["days_over"] == 0 for c in cases if c["days_left"] >= 0)
    at = client.get("/api/v1/at-risk", params={"as_of": "2024-12-31"}, headers=AUTH)
    assert at.json()["cases"][:5] == cases[:5]



@pytest.mark.parametrize("as_of", [None, "2024-12-01"])
def test_the_worklist_comes_a_page_at_a_time(
    world: tuple[TestClient, Path], as_of: str | None
) -> None:
    """A page of WORKLIST_PAGE rows unless `limit` says otherwise, and `next_offset` for the
    next: the pages put together are the whole list, in order."""
    client, _ = world
    dated = {"as_of": as_of} if as_of else {}
    whole = client.get("/api/v1/at-risk", params={**dated, "limit": 10_000}, headers=AUTH).json()
    assert len(whole["cases"]) > WORKLIST_PAGE and whole["next_offset"] is None
    first = client.get("/api/v1/at-risk", params=dated, headers=AUTH).json()
    assert first["cases"] == whole["cases"][:WORKLIST_PAGE]
    assert first["next_offset"] == WORKLIST_PAGE
    pages: list[dict[str, object]] = []
    offset: int | None = 0
    while offset is not None:
        body = client.get("/api/v1/at-risk", params={**dated, "limit": 37, "offset": offset},
                          headers=AUTH).json()
        assert len(body["cases"]) <= 37
        pages += body["cases"]
        offset = body["next_offset"]
    assert pages == whole["cases"]


@pytest.mark.parametrize("day", [date(2024, 3, 15), date(2024, 12, 1)])
def test_a_past_worklist_is_the_live_one_of_that_date(
    world: tuple[TestClient, Path], tmp_path: Path, day: date,
) -> None:
    """`as_of` in the past: the clocks as they were at the end of that day, as a live view
    fed with the facts up to then would list them (one horizon rule, two paths)."""
    client, log = world
    end = end_of_day_micros(day.toordinal())
    engine = Engine(Rules())
    for got in ingested([log]):
        if not isinstance(got, DeadLetter) and got.fact.ts <= end:
            engine.add(got.case_id, got.fact)
    view = LiveView()
    feed(view, *engine.settle_clocks(), end)
    assert view.today_date() == day
    want = [r.as_dict() for r in view.worklist(limit=10_000)]
    assert want and any(r["days_over"] for r in want)
    body = client.get("/api/v1/at-risk", params={"as_of": day.isoformat(), "limit": 10_000},
                      headers=AUTH).json()
    assert body["as_of"] == day.isoformat() and body["cases"] == want
    one = client.get("/api/v1/at-risk", params={"as_of": day.isoformat(), "unit": "u1",
                                                "indicator": "besok_90"}, headers=AUTH).json()
    assert one["cases"] == [r for r in want
                            if r["unit_id"] == "u1" and r["indicator"] == "besok_90"]


def steady(text: bytes) -> list[bytes]:
    """The exposition without the one series that reads the wall clock."""
    return [line for line in text.splitlines()
            if not line.startswith(b"vardgaranti_processing_lag_seconds ")]


def test_fast_exposition_is_what_the_library_writes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    log = write_log(tmp_path / "x.jsonl", synthetic(300))
    pipeline = Pipeline.restore(store, Rules())
    replay([log], store, pipeline)
    snap = pipeline_snapshot(pipeline)
    odd = {(0, 'unit "quoted" \\ and\nnewline'): next(iter(snap.live.values()))}
    for live in (snap.live, {**snap.live, **odd}):
        registry = registry_for(lambda live=live: replace(snap, live=live))  # type: ignore[misc]
        assert steady(exposition(registry)) == steady(generate_latest(registry))
    empty = registry_for(lambda: MetricsSnapshot(live={}, watermark_us=None))
    assert exposition(empty) == generate_latest(empty)
    store.engine.dispose()


def test_what_a_server_loaded_is_kept_out_of_the_cycle_collector() -> None:
    """After `freeze_loaded` a full collection no longer walks the live view's objects (it
    walked them all inside whichever request it fell on); they are still there to read."""
    view = LiveView()
    view.advance(end_of_day_micros(date(2024, 12, 31).toordinal()))
    groups = view._groups
    try:
        freeze_loaded()
        assert not any(o is groups for o in gc.get_objects())
        assert view.today_date() == date(2024, 12, 31)
    finally:
        gc.unfreeze()
