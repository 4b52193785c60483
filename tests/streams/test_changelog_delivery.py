"""Issue 18, in process: a stop right after an offset commit must lose no table update.

The interleaving that lost fulfilments across a SIGTERM: a batch's events are processed,
its case and counter updates are handed to Faust's producer buffer, the consumer commits
the batch's offsets (its flush of that buffer gives up after 0.1 s), and the worker stops
before the buffer went out. The restarted worker recovers its tables from changelogs that
miss those updates and resumes after the committed offsets, so nothing repairs them.

Here the broker, the topics and the tables are fakes with the same contract: a send is
"on the broker" once acknowledged; the buffer of `send_changelog` is lost at the stop.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.transport.producer import ProducerBuffer
from faust.types import TP

from models.casestate import CaseState
from models.clocks import Fact
from models.countergroup import CounterGroup
from models.measures import Key
from models.settings import Settings
from streams.app import Monitor
from streams.worker import Worker
from tests.streams.fakes import FakeProducer, faust_producer
from vardgaranti.generate import generate

EVENTS, DELTAS = "ev", "vg-deltas"
BATCH = 25


class Broker:
    """Acknowledged records per topic (one partition each: offsets are list indexes)."""

    def __init__(self) -> None:
        self.logs: dict[str, list[tuple[bytes | None, Any]]] = {}
        self.unsent: list[tuple[str, bytes, Any]] = []  # Faust's producer buffer

    def append(self, topic: str, key: bytes | None, value: Any) -> None:
        self.logs.setdefault(topic, []).append((key, value))

    def records(self, topic: str, start: int = 0) -> list[Any]:
        return [_record(topic, offset, key, value)
                for offset, (key, value) in enumerate(self.logs.get(topic, [])) if offset >= start]

    def send_unsent(self) -> None:
        """The producer buffer goes out (some time after the batch that filled it)."""
        for topic, key, value in self.unsent:
            self.append(topic, key, value)
        self.unsent.clear()

    def stop(self) -> None:
        """The worker process ends: what was only buffered is gone."""
        self.unsent.clear()


def _record(topic: str, offset: int, key: bytes | None, value: Any) -> Any:
    return SimpleNamespace(topic=topic, partition=0, offset=offset, key=key, value=value)


class FakeTopic:
    def __init__(self, name: str, broker: Broker) -> None:
        self.name, self.broker = name, broker

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, key: bytes | None = None, value: Any = None, **_: Any) -> Any:
        self.broker.append(self.name, key, value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)  # acknowledged
        return done


class FakeTable:
    """A table recovered from its changelog on the broker (the last value of each key)."""

    key_serializer = value_serializer = None

    def __init__(self, name: str, broker: Broker) -> None:
        self.broker = broker
        self.changelog_topic = FakeTopic(f"{name}-changelog", broker)
        last = {key: value for key, value in broker.logs.get(self.changelog_topic.name, [])
                if key is not None}
        self.data: dict[bytes, Any] = {k: v for k, v in last.items() if v is not None}

    def send_changelog(self, partition: int, key: bytes, value: Any, **_: Any) -> None:
        """Faust's way: into the producer buffer, out some time later."""
        self.broker.unsent.append((self.changelog_topic.name, key, value))


def start_worker(broker: Broker, archive: Any = None) -> Worker:
    """A worker whose tables are recovered and partitions assigned (after a restart)."""
    recovered = asyncio.Event()
    recovered.set()
    app = SimpleNamespace(
        consumer=SimpleNamespace(assignment=lambda: {TP(EVENTS, 0), TP(DELTAS, 0)},
                                 highwater=lambda tp: None),
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=recovered)),
        producer=faust_producer(FakeProducer(
            lambda topic, _, key, value: broker.append(
                topic, key, orjson.loads(value)
                if topic.endswith("-changelog") and value is not None else value))))
    monitor = Monitor(
        app=app, settings=Settings(events_topic=EVENTS, partitions=1),  # type: ignore[arg-type]
        events=FakeTopic(EVENTS, broker), dlq=FakeTopic("dlq", broker),  # type: ignore[arg-type]
        breaches=FakeTopic("breaches", broker),  # type: ignore[arg-type]
        deltas=FakeTopic(DELTAS, broker),  # type: ignore[arg-type]
        cases=FakeTable("cases", broker), counts=FakeTable("counts", broker))
    return Worker(monitor, archive)


async def consume(worker: Worker, broker: Broker, topic: str, start: int,
                  end: int | None = None) -> int:
    """Batches from `start` (a committed offset) until `end`; the offset to commit after the
    last batch returned (Faust acks a batch's events when the agent takes the next one)."""
    step = worker.on_events if topic == EVENTS else worker.on_deltas
    records = broker.records(topic, start)[: None if end is None else end - start]
    for i in range(0, len(records), BATCH):
        broker.send_unsent()
        await step(records[i:i + BATCH])
    return start + len(records)


def counters(broker: Broker) -> Counter[Key]:
    """What the sink would store from the counts changelog."""
    table = FakeTable("counts", broker)
    out: Counter[Key] = Counter()
    for key, value in table.data.items():
        out.update(dict(CounterGroup.from_json(value).items(key)))
    return +out


def clocks(broker: Broker) -> dict[bytes, list[Any]]:
    return {k: CaseState.from_json(v).clocks for k, v in FakeTable("cases", broker).data.items()}


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("log") / "log.jsonl"
    generate(path, 2024, seed=5, scale=0.0004, bad_rate=0.0, progress=False)
    return path.read_bytes().splitlines()


def run_through(lines: Sequence[bytes], stop_at: int | None) -> Broker:
    """Publish `lines` and run a worker to the end; with `stop_at`, it is stopped after the
    batches up to there and restarted from the committed offsets and the changelogs."""
    broker = Broker()
    for line in lines:
        broker.append(EVENTS, None, line)

    async def main() -> None:
        worker = start_worker(broker)
        events_at = await consume(worker, broker, EVENTS, 0, stop_at)
        deltas_at = await consume(worker, broker, DELTAS, 0)
        if stop_at is None:
            broker.send_unsent()
            return
        # the commit at the stop: the batches' offsets are acked, so they are committed;
        # the stop then loses whatever had not reached the broker
        broker.stop()
        worker = start_worker(broker)
        await consume(worker, broker, EVENTS, events_at)
        await consume(worker, broker, DELTAS, deltas_at)
        broker.send_unsent()

    asyncio.run(main())
    return broker


def test_a_stop_after_the_commit_loses_no_case_and_no_counter(lines: list[bytes]) -> None:
    once = run_through(lines, stop_at=None)
    assert counters(once), "the log makes counters"
    stop_at = (len(lines) // 2 // BATCH) * BATCH
    restarted = run_through(lines, stop_at=stop_at)
    assert counters(restarted) == counters(once)
    assert clocks(restarted) == clocks(once)


def test_faust_flush_returns_with_records_still_in_the_buffer() -> None:
    """Why the worker does not rely on the producer buffer: its flush, which the consumer
    awaits before committing offsets, stops waiting after 0.1 s without a record sent."""

    class SlowSend(ProducerBuffer):
        def __post_init__(self) -> None:
            super().__post_init__()
            self.release = asyncio.Event()

        async def _send_pending(self, fut: Any) -> None:
            await self.release.wait()  # a busy producer: the first record is not out yet

    async def main() -> int:
        buffer = SlowSend()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        await buffer.start()
        try:
            for i in range(3):
                buffer.put(orjson.dumps(i))  # type: ignore[arg-type]
            await buffer.flush()
            return buffer.size
        finally:
            buffer.release.set()
            while buffer.size:  # drained, so that it stops cleanly
                await asyncio.sleep(0.01)
            await buffer.stop()

    assert asyncio.run(main()) > 0


class Archive:
    """The store as the sink fills it: every fact of the cases changelog on the broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.through: int | None = None  # the sink's position, if it stopped

    def facts_of(self, case_ids: Iterable[str]) -> dict[str, list[Fact]]:
        want = {c.encode() for c in case_ids}
        out: dict[str, dict[str, Fact]] = defaultdict(dict)
        for key, value in self.broker.logs.get("cases-changelog", [])[:self.through]:
            if key in want and value is not None:
                for f in CaseState.from_json(value).facts:
                    out[key.decode()][f.event_id] = f
        return {case: list(facts.values()) for case, facts in out.items()}


def test_a_late_event_right_after_its_case_left_is_the_last_record_of_the_case(
        lines: list[bytes]) -> None:
    """A final case leaves the table (a tombstone) and the next batch brings a late event
    for it, read back from the store and written again. Were the tombstone buffered, it
    could go out after the rewrite, and recovery would lose the case with the late fact."""
    broker = Broker()
    by_case: dict[bytes, bytes] = {}
    for line in lines:
        broker.append(EVENTS, None, line)
        by_case[str(orjson.loads(line)["case_id"]).encode()] = line

    async def main() -> bytes:
        archive = Archive(broker)
        worker = start_worker(broker, archive)
        records = broker.records(EVENTS)
        for i in range(0, len(records), BATCH):
            broker.send_unsent()  # what was buffered before goes out between batches
            before = set(worker.m.cases.data)
            await worker.on_events(records[i:i + BATCH])
            left = sorted(before - set(worker.m.cases.data))
            if left:  # the sink falls behind: the late fact stays in the table
                archive.through = len(broker.logs["cases-changelog"])
                late = orjson.dumps({**orjson.loads(by_case[left[0]]), "event_id": "late"})
                await worker.on_events([_record(EVENTS, len(records), None, late)])
                broker.send_unsent()
                return left[0]
        raise AssertionError("no case left the table")

    gone = asyncio.run(main())
    last = [value for key, value in broker.logs["cases-changelog"] if key == gone][-1]
    assert last is not None, "the tombstone overtook the rewrite"
    assert any(f.event_id == "late" for f in CaseState.from_json(last).facts)
    assert "late" in {f.event_id for f in CaseState.from_json(
        FakeTable("cases", broker).data[gone]).facts}
