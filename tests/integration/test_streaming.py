"""The streaming path end to end on the Kafka-protocol broker: replay → worker → sink → store.

The reference is `vardgaranti report` (the embedded core) on the same log: the stored
aggregates must equal it for every indicator and unit, through restarts (SIGTERM and
SIGKILL mid-stream), with two workers, and with every malformed line on the dead-letter topic.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.report import Report, build_report
from consumers.store import Store
from models.measures import Period
from tests.support.streaming import Proc, Stack, wait_until
from vardgaranti.generate import generate

pytestmark = pytest.mark.integration

YEAR = 2024
PERIODS = (  # (from, to = as of): a month, the year, a window ending mid-year
    (date(YEAR, 12, 1), date(YEAR, 12, 31)),
    (date(YEAR, 1, 1), date(YEAR, 12, 31)),
    (date(YEAR, 4, 3), date(YEAR, 7, 1)),
)
JOIN_PUBLISH_S = 12.0  # seconds over which the log is published while a worker joins


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few thousand events: every type, duplicates, late and malformed lines."""
    path = tmp_path_factory.mktemp("log") / "year.jsonl"
    generate(path, YEAR, seed=11, scale=0.0015, bad_rate=0.01, progress=False)
    return path


@pytest.fixture(scope="module")
def reports(log_file: Path) -> dict[tuple[date, date], Report]:
    return {(a, b): build_report([log_file], Period.of(a, b, b)) for a, b in PERIODS}


def assert_store_matches(stack: Stack, reports: dict[tuple[date, date], Report]) -> None:
    """Wait until the sink has written everything: the store must equal the report."""
    stack.wait_for_store({k: [r.as_dict() for r in rep.rows] for k, rep in reports.items()})


def processed(stack: Stack) -> float:
    return sum(p.metric("vardgaranti_events_processed_total") for p in stack.procs
               if p.name == "worker" and p.process.poll() is None)


def test_replay_worker_sink_equals_report(
    stack: Stack, log_file: Path, reports: dict[tuple[date, date], Report]
) -> None:
    stack.worker()
    stack.sink()
    lines = stack.publish(log_file)
    assert lines == reports[PERIODS[0]].stats.lines
    assert_store_matches(stack, reports)

    # every malformed line is on the dead-letter topic, with its reason and source offset
    rejected = reports[PERIODS[0]].stats.rejected
    dead = [orjson.loads(r.value) for r in stack.consume(stack.topics["dlq"],
                                                         sum(rejected.values()))]
    assert Counter(d["reason"] for d in dead) == rejected
    assert all(d["source"].startswith(stack.topics["events"] + "/") for d in dead)
    assert all(d["message"] for d in dead)


def test_a_sink_started_before_the_worker_reads_its_changelogs(
    stack: Stack, log_file: Path, reports: dict[tuple[date, date], Report]
) -> None:
    sink = stack.sink(wait=False)  # the worker has not created its changelogs yet
    wait_until("the sink to wait for the changelogs",
               lambda: "topics unavailable (not yet created" in sink.log.read_text(), 60,
               stack.logs)
    assert sink.get("/readyz")[0] == 503
    stack.worker()
    wait_until("the sink to be ready", sink.ready, logs=stack.logs)
    stack.publish(log_file)
    assert_store_matches(stack, reports)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_worker_restart_mid_stream_loses_and_doubles_nothing(
    stack: Stack, log_file: Path, reports: dict[tuple[date, date], Report], sig: int
) -> None:
    first = stack.worker()
    stack.sink()
    total = reports[PERIODS[0]].stats.events
    stack.publish(log_file)
    wait_until("the worker to be mid-stream", lambda: processed(stack) >= total // 3,
               logs=stack.logs)
    code = first.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), stack.logs()
    assert "Traceback" not in first.log.read_text(errors="replace"), first.tail()
    stack.worker()  # recovers the tables from their changelogs, resumes at the committed offsets
    assert_store_matches(stack, reports)


def test_two_workers_give_the_same_aggregates_as_one(
    kafka_bootstrap: str, tmp_path: Path, log_file: Path,
    reports: dict[tuple[date, date], Report],
) -> None:
    stack = Stack(kafka_bootstrap, tmp_path, partitions=4)
    stack.create_topics()
    try:
        workers = [stack.worker()]
        workers.append(stack.worker())  # the group rebalances: two partitions each
        stack.sink()
        stack.publish(log_file)
        assert_store_matches(stack, reports)
        # the work was shared: each worker processed part of the events
        shares = [w.metric("vardgaranti_events_processed_total") for w in workers]
        assert all(s > 0 for s in shares), shares
    finally:
        stack.close()


def test_a_worker_joining_mid_stream_loses_and_doubles_nothing(
    kafka_bootstrap: str, tmp_path: Path, log_file: Path,
    reports: dict[tuple[date, date], Report],
) -> None:
    """A second worker joins while the first is mid-way through the log: the group
    rebalances, partitions and their tables move, and the store must still equal `report`."""
    stack = Stack(kafka_bootstrap, tmp_path, partitions=4)
    stack.create_topics()
    try:
        first = stack.worker()
        stack.sink()
        joined: list[Proc] = []

        def join_a_third_in(count: int) -> None:
            if not joined and count >= lines // 3:
                joined.append(stack.worker(wait=False))
            elif len(joined) == 1 and count >= 2 * lines // 3:
                # the last third waits for the second worker to hold its partitions: on a
                # loaded machine it could otherwise join after the log ended, with none of
                # it to process
                wait_until("the second worker to be ready", joined[0].ready, logs=stack.logs)
                joined.append(joined[0])

        # published at a pace the first worker keeps up with, so that the second one joins
        # (and the group rebalances, maybe in several rounds) while events are flowing
        lines = reports[PERIODS[0]].stats.lines
        stack.publish(log_file, rate=lines / JOIN_PUBLISH_S, progress=join_a_third_in)
        second = joined[0]  # the rebalance moves half of the partitions to it
        assert_store_matches(stack, reports)
        assert second.metric("vardgaranti_events_processed_total") > 0, stack.logs()
        assert first.process.poll() is None
    finally:
        stack.close()


def breach_notices(stack: Stack) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in stack.consume(stack.topics["breaches"])
            if orjson.loads(r.value)["kind"] == "breach"]


def test_breach_notices_once_each_also_across_a_restart(
    stack: Stack, log_file: Path, reports: dict[tuple[date, date], Report]
) -> None:
    first = stack.worker()
    stack.sink()
    total = reports[PERIODS[0]].stats.events
    stack.publish(log_file)
    wait_until("the worker to be mid-stream", lambda: processed(stack) >= total // 2,
               logs=stack.logs)
    assert first.stop(signal.SIGTERM) == 0
    stack.worker()
    assert_store_matches(stack, reports)

    notices = breach_notices(stack)
    ids = Counter(n["notice_id"] for n in notices)
    assert notices, "a year of events breaches some clocks"
    assert [i for i, n in ids.items() if n > 1] == []
    # each notice is about a stored clock that was open past its deadline when the notice
    # went out; a late event may still fulfil it in time, or move its deadline on
    store = Store(stack.db_url)
    try:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT case_id, indicator, deadline FROM clocks").all()
            stored_notices = conn.exec_driver_sql("SELECT count(*) FROM notices").scalar()
    finally:
        store.engine.dispose()
    deadlines = {(r[0], r[1]): str(r[2]) for r in rows}
    for n in notices:
        assert n["days_left"] < 0 and n["deadline"] <= deadlines[(n["case_id"], n["indicator"])]
    assert stored_notices >= len(ids)
