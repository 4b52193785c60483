"""Old days of the worker's counters fold into checkpoints: the table stops growing with the
days, and every figure it still answers is the report's (in process, no broker)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.report import build_report
from consumers.store import Store
from models.countergroup import CounterGroup, is_checkpoint
from models.measures import WINDOWS, Key, Period, arrange, window_first
from streams.worker import Worker
from tests.streams.fakes import Driver, fake_worker
from vardgaranti.generate import generate
from web.reads import NotKept


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Two years (other seeds, so other ids): more days than the worker keeps."""
    out: list[bytes] = []
    for seed, year in ((7, 2023), (8, 2024)):
        path = tmp_path_factory.mktemp("f") / f"{year}.jsonl"
        generate(path, year, seed=seed, scale=0.001, progress=False)
        out += path.read_bytes().splitlines()
    return out


def run(lines: list[bytes], worker: Worker | None = None, batch: int = 300,
        twice: bool = False, after: Any = None) -> Driver:
    driver = Driver(worker or fake_worker())

    async def go() -> None:
        for _ in range(2 if twice else 1):
            for i in range(0, len(lines), batch):
                await driver.events(lines[i:i + batch])
                if after is not None:
                    after()

    asyncio.run(go())
    return driver


def report(lines: list[bytes], period: Period, tmp: Path) -> list[dict[str, object]]:
    path = tmp / "all.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return [r.as_dict() for r in build_report([path], period).rows]


def rows(worker: Worker, period: Period) -> list[dict[str, object]]:
    return [r.as_dict() for r in arrange(worker.source().per_unit(period))]


def folded_through(worker: Worker) -> date:
    data: Any = worker.m.counts.data
    return date.fromordinal(max(v["t"] for k, v in data.items() if is_checkpoint(k)))


def late_start(lines: list[bytes], day: date) -> bytes:
    """A new case whose clock started on `day` (long folded by now)."""
    start = next(orjson.loads(x) for x in lines if b'"referral.issued"' in x)
    return orjson.dumps({**start, "event_id": "late-1", "case_id": "late-case",
                         "occurred_at": f"{day.isoformat()}T10:00:00+01:00"})


def test_old_days_fold_and_every_figure_kept_is_the_reports(
    lines: list[bytes], tmp_path: Path,
) -> None:
    driver = run(lines)
    worker = driver.worker
    data: Any = worker.m.counts.data
    today = worker.today()
    assert today is not None and worker.folded > 100
    through = folded_through(worker)
    # what stays per day: the longest window and the grace period
    assert through == window_first("365d", today) - timedelta(days=1 + worker.grace_days)
    assert min(int(k.split(b"|")[1]) for k in data if not is_checkpoint(k)) > \
        through.toordinal()
    late = late_start(lines, through - timedelta(days=40))
    asyncio.run(driver.events([late]))
    everything = [*lines, late]
    for window in WINDOWS:  # the live view, fed incrementally
        period = Period.of(window_first(window, today), today, today)
        assert rows(worker, period) == report(everything, period, tmp_path)
    last = today - timedelta(days=20)  # a past period after the folded days: the counters
    period = Period.of(through + timedelta(days=1), last, last)
    assert rows(worker, period) == report(everything, period, tmp_path)
    # a rebuild after a rebalance reads the checkpoints and the days after them
    before = (worker.view.live(), worker.view.worklist(), worker.view.at_risk_counts())
    worker._assignment = None
    worker.refresh()
    assert (worker.view.live(), worker.view.worklist(), worker.view.at_risk_counts()) == before
    # a period reaching into the folded days: said plainly, not summed wrong
    with pytest.raises(NotKept, match=f"keeps the days after {through}"):
        worker.source().per_unit(Period.of(through, last, last))
    # the worker keeps the clocks as they are now: an earlier worklist is refused
    assert worker.source().at_risk(as_of=today) == worker.view.worklist()
    with pytest.raises(NotKept, match=f"clocks at the watermark {today} only, not at {last}"):
        worker.source().at_risk(as_of=last)


def test_redelivered_events_and_deltas_after_a_fold_count_once(lines: list[bytes]) -> None:
    once, twice = run(lines), run(lines, batch=211, twice=True)
    today = once.worker.today()
    assert today is not None and twice.worker.folded > 100
    for window in ("month", "365d"):
        period = Period.of(window_first(window, today), today, today)
        assert rows(twice.worker, period) == rows(once.worker, period)
    assert once.worker.view.live() == twice.worker.view.live()
    # every delta record delivered again (as after a crash before its offsets were
    # committed): the checkpoints and the days skip what they hold
    worker = fake_worker()
    delivered: list[Any] = []
    on_deltas = worker.on_deltas

    async def keep(batch: Any) -> None:
        delivered.extend(batch)
        await on_deltas(batch)

    worker.on_deltas = keep  # type: ignore[method-assign]
    run(lines, worker)
    counts: Any = worker.m.counts
    saved = {k: dict(v) for k, v in counts.data.items()}
    live = worker.view.live()
    asyncio.run(on_deltas(delivered))
    assert counts.data == saved and worker.view.live() == live


def test_a_folded_period_is_read_from_the_store(lines: list[bytes], tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'archive.db'}")
    worker = fake_worker(archive=store)
    counts: Any = worker.m.counts

    def sink() -> None:  # what the SQL sink does with the counts changelog
        moved: dict[Key, int] = {}
        for _, key, value in counts.changelog:
            if value is not None and not is_checkpoint(key):
                moved.update(CounterGroup.from_json(value).items(key))
        counts.changelog.clear()
        store.write_batch([], [], moved, [])

    run(lines, worker, after=sink)
    through = folded_through(worker)
    period = Period.of(through - timedelta(days=60), through, through)
    assert rows(worker, period) == report(lines, period, tmp_path)
    store.engine.dispose()


def test_no_fold_before_the_deltas_in_flight_at_assignment_are_done(
    lines: list[bytes],
) -> None:
    """Until the worker has processed the deltas that were on the topic when it got its
    partitions (a crash may have left a day behind), it folds nothing."""
    worker = fake_worker()
    consumer: Any = worker.m.app.consumer
    consumer.highwater = lambda tp: 10**9  # far ahead of anything processed
    run(lines, worker)
    assert worker.folded == 0
    consumer.highwater = lambda tp: 0
    worker._assignment = None  # a new assignment, nothing in flight
    worker.refresh()
    worker._folded_on = None
    asyncio.run(worker._fold())
    assert worker.folded > 100


def test_days_recovered_from_the_changelog_fold_too(lines: list[bytes]) -> None:
    """A fold reads the day groups the worker knows of: those it wrote, and those a new
    assignment brought in from the changelogs (here copied in, as a recovery fills them)."""
    once = fake_worker()
    consumer: Any = once.m.app.consumer
    consumer.highwater = lambda tp: 10**9  # deltas still in flight: nothing folded
    run(lines, once)
    assert once.folded == 0
    worker = fake_worker()
    cases: Any = worker.m.cases
    counts: Any = worker.m.counts
    cases.data.update(once.m.cases.data)
    counts.data.update(once.m.counts.data)
    worker.refresh()
    asyncio.run(worker._fold())
    assert worker.folded > 100
    through = folded_through(worker).toordinal()
    assert min(int(k.split(b"|")[1]) for k in counts.data if not is_checkpoint(k)) > through
