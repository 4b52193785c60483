"""The streaming worker's logic in process, with fake topics and tables (no broker)."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.report import build_report
from consumers.store import Store, StoreError
from models.casestate import CaseState
from models.indicators import INDICATORS
from models.measures import WINDOWS, Period, arrange, window_first
from streams import worker as worker_module
from streams.worker import Worker
from tests.streams.fakes import TP, Driver, fake_worker
from tests.support.events import ev
from vardgaranti.generate import generate

YEAR = 2024


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("w") / "year.jsonl"
    generate(path, YEAR, seed=5, scale=0.001, bad_rate=0.01, progress=False)
    return path.read_bytes().splitlines()


@pytest.fixture(scope="module")
def log(lines: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("w") / "same.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def run(lines: list[bytes], batch: int = 400, twice: bool = False) -> Driver:
    driver = Driver(fake_worker())

    async def go() -> None:
        for _ in range(2 if twice else 1):
            for i in range(0, len(lines), batch):
                await driver.events(lines[i:i + batch])

    asyncio.run(go())
    return driver


def rows(driver: Driver, period: Period) -> list[dict[str, object]]:
    return [r.as_dict() for r in arrange(driver.worker.source().per_unit(period))]


def test_live_view_and_history_equal_report(lines: list[bytes], log: Path) -> None:
    driver = run(lines)
    today = driver.worker.today()
    assert today is not None and today.year == YEAR
    for window in WINDOWS:  # the live view
        period = Period.of(window_first(window, today), today, today)
        assert rows(driver, period) == [r.as_dict() for r in build_report([log], period).rows]
    past = Period.of(date(YEAR, 4, 3), date(YEAR, 7, 1), date(YEAR, 7, 1))  # the history
    assert rows(driver, past) == [r.as_dict() for r in build_report([log], past).rows]
    report = build_report([log], Period.of(today, today, today))
    assert driver.worker.rejected == report.stats.rejected
    dead = [orjson.loads(v) for _, v in driver.worker.m.dlq.sent]  # type: ignore[attr-defined]
    assert Counter(d["reason"] for d in dead) == report.stats.rejected


def test_redelivered_events_change_nothing_and_notices_go_out_once(
    lines: list[bytes],
) -> None:
    once, twice = run(lines), run(lines, batch=250, twice=True)
    today = once.worker.today()
    assert today is not None
    period = Period.of(window_first("365d", today), today, today)
    assert rows(twice, period) == rows(once, period)
    sent = [orjson.loads(v) for _, v in twice.worker.m.breaches.sent]  # type: ignore[attr-defined]
    ids = Counter(n["notice_id"] for n in sent)
    assert sent and max(ids.values()) == 1
    assert {n["kind"] for n in sent} == {"breach", "at_risk"}


def test_a_new_assignment_rebuilds_the_same_view(lines: list[bytes]) -> None:
    driver = run(lines)
    worker = driver.worker
    before = (worker.view.live(), worker.view.worklist(), worker.view.at_risk_counts())
    worker.m.app.consumer.tps = set(worker.m.app.consumer.tps)  # type: ignore[attr-defined]
    worker._assignment = None  # as after a rebalance
    worker.refresh()
    assert (worker.view.live(), worker.view.worklist(), worker.view.at_risk_counts()) == before
    # giving partition 1 away keeps only partition 0's clocks
    worker.m.app.consumer.tps = {TP("ev", 0), TP("deltas", 0)}  # type: ignore[attr-defined]
    worker.refresh()
    assert 0 < len(worker.view.worklist()) < len(before[1])



def test_a_rebuilt_view_is_kept_out_of_the_cycle_collector(lines: list[bytes]) -> None:
    """After a rebuild the worker freezes what it loaded (web.reads.freeze_loaded): a full
    collection walks none of it in the middle of a read."""
    worker = run(lines[:1000]).worker
    gc.unfreeze()  # what earlier code froze in this process
    worker._assignment = None  # as after a rebalance
    try:
        worker.refresh()
        assert gc.get_freeze_count() > 0
        assert not any(o is worker.view._groups for o in gc.get_objects())
    finally:
        gc.unfreeze()


def test_a_rebuild_runs_no_full_collection(lines: list[bytes]) -> None:
    """After a restart the view is rebuilt before the worker is ready: a full collection
    there walked every object of the recovered tables (web.reads.freeze_loaded)."""
    worker = run(lines[:1000]).worker
    full: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    worker._assignment = None  # as after a rebalance
    gc.callbacks.append(count)
    gc.disable()  # counted: the collections it asks for, not those its allocations set off
    try:
        worker.refresh()
    finally:
        gc.enable()
        gc.callbacks.remove(count)
        gc.unfreeze()
    assert worker._assignment is not None and full == []

START_TYPES = {i.start_type for i in INDICATORS}


def _parsed(line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def sink(worker: Worker, store: Store) -> None:
    """What the SQL sink does with the cases changelog: the facts into the store."""
    table: Any = worker.m.cases
    facts = [(key.decode(), f) for _, key, value in table.changelog if value is not None
             for f in CaseState.from_json(value).facts]
    table.changelog.clear()
    store.write_batch(facts, [], {}, [])


@pytest.mark.parametrize("outage", [0, 3], ids=["store_up", "store_down_at_first"])
def test_final_cases_leave_the_table_and_late_events_read_them_back(
    lines: list[bytes], tmp_path: Path, outage: int, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`outage`: the store does not answer the first lookups of the late event's batch; the
    batch waits for it rather than count the case that left as a new one."""
    store = Store(f"sqlite:///{tmp_path / 'archive.db'}")
    worker = fake_worker(archive=store)
    driver = Driver(worker)
    table: Any = worker.m.cases
    tombstones: list[bytes] = []

    async def feed(chunk: list[bytes]) -> None:
        await driver.events(chunk)
        tombstones.extend(k for _, k, v in table.changelog if v is None)
        sink(worker, store)

    async def go(all_lines: list[bytes]) -> None:
        for i in range(0, len(all_lines), 400):
            await feed(all_lines[i:i + 400])

    asyncio.run(go(lines))
    assert worker.evicted > 50 and len(tombstones) == worker.evicted
    gone = tombstones[0].decode()
    assert tombstones[0] not in table.data
    # a late start for a case that left: the case's clock exists, so it opens nothing
    start = next(e for e in map(_parsed, lines)
                 if e.get("case_id") == gone and e.get("type") in START_TYPES)
    late = orjson.dumps({**start, "event_id": "late-start"})
    monkeypatch.setattr(worker_module, "STORE_RETRY", (0.001, 0.004))
    answer, failures = store.facts_of, iter(range(outage))

    def down_at_first(case_ids: list[str]) -> Any:  # the lookup of the case that left
        if gone in case_ids and next(failures, None) is not None:
            raise StoreError("reading cases from the store failed: connection refused")
        return answer(case_ids)

    monkeypatch.setattr(store, "facts_of", down_at_first)
    asyncio.run(go([late, *lines[:300]]))  # and repeats of the first lines
    waits = [r.message for r in caplog.records if "the batch waits" in r.message]
    assert len(waits) == outage, waits
    everything = tmp_path / "all.jsonl"
    everything.write_bytes(b"\n".join([*lines, late]) + b"\n")
    today = worker.today()
    assert today is not None
    for window in ("month", "365d"):
        period = Period.of(window_first(window, today), today, today)
        assert rows(driver, period) == [
            r.as_dict() for r in build_report([everything], period).rows]
    store.engine.dispose()


def test_a_final_case_missing_from_the_store_is_looked_up_less_and_less_often(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog run ahead of its sink: a final case the store does not hold is asked for
    again after 7 days, the wait doubling up to 56 (not every week to the end of the log)."""
    store = Store(f"sqlite:///{tmp_path / 'archive.db'}")  # no sink: it stays empty
    worker = fake_worker(archive=store, grace_days=0)
    driver = Driver(worker)
    asked: list[int] = []
    answer = store.facts_of

    def facts_of(case_ids: list[str]) -> Any:
        today = worker.today()
        if "pvv" in case_ids and today is not None:  # not the read-back of its first batch
            asked.append(today.timetuple().tm_yday)
        return answer(case_ids)

    monkeypatch.setattr(store, "facts_of", facts_of)

    async def go() -> None:
        await driver.events([orjson.dumps(e) for e in (
            ev("referral.issued", "pvv", "2024-01-02T10:00:00+01:00", pathway="specialist"),
            ev("wait.paused", "pvv", "2024-01-05T10:00:00+01:00", reason="patient_choice"))])
        for day in range(6, 366):  # one new case a day moves the day on
            on = date.fromordinal(date(2024, 1, 1).toordinal() + day - 1)
            await driver.events([orjson.dumps(ev(
                "referral.issued", f"c{day}", f"{on}T10:00:00+01:00", pathway="specialist"))])

    asyncio.run(go())
    assert asked == [6, 13, 27, 55, 111, 167, 223, 279, 335], asked
    assert b"pvv" in worker.m.cases.data  # never in the store: kept
    store.engine.dispose()


def test_an_excluded_case_leaves_the_table_and_a_resume_reads_it_back(tmp_path: Path) -> None:
    """A clock the patient chose to leave (PVV) is at rest: the case leaves like a final one
    once the store holds it, and a resume months later restarts the clock exactly."""
    store = Store(f"sqlite:///{tmp_path / 'archive.db'}")
    worker = fake_worker(archive=store)
    driver = Driver(worker)
    events = [
        [ev("referral.issued", "pvv", "2024-01-02T10:00:00+01:00", pathway="specialist"),
         ev("wait.paused", "pvv", "2024-01-05T10:00:00+01:00", reason="patient_choice")],
        [ev("referral.issued", "other", "2024-06-01T10:00:00+02:00", pathway="specialist")],
        [ev("wait.resumed", "pvv", "2024-06-03T10:00:00+02:00")],
    ]
    table: Any = worker.m.cases

    async def feed(batch: list[dict[str, Any]]) -> None:
        await driver.events([orjson.dumps(e) for e in batch])
        sink(worker, store)

    asyncio.run(feed(events[0]))
    asyncio.run(feed(events[1]))
    assert b"pvv" not in table.data and worker.evicted == 1
    asyncio.run(feed(events[2]))
    assert b"pvv" in table.data
    everything = tmp_path / "all.jsonl"
    everything.write_bytes(b"".join(orjson.dumps(e) + b"\n" for b in events for e in b))
    today = worker.today()
    assert today == date(2024, 6, 3)
    period = Period.of(window_first("month", today), today, today)
    want = [r.as_dict() for r in build_report([everything], period).rows]
    assert rows(driver, period) == want
    assert {r["unit_id"]: r["waiting"] for r in want if r["indicator"] == "besok_90"} == {
        "ALL": 2, "u1": 2}
    store.engine.dispose()
