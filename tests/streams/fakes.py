"""In-memory stand-ins for the Faust app, topics and tables: the worker's logic runs in a
test without a broker (as bytewax's TestingSource/TestingSink do for a dataflow)."""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

import orjson

from consumers.store import Store
from models.settings import Settings
from streams.app import Monitor
from streams.worker import Worker


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class Record:
    """A fetched record, as streams.intake hands it to an agent."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class FakeTopic:
    name: str
    sent: list[tuple[bytes | None, bytes]] = field(default_factory=list)  # via FakeProducer

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class FakeTable:
    name: str = "table"
    data: dict[bytes, Any] = field(default_factory=dict)
    changelog: list[tuple[int, bytes, Any]] = field(default_factory=list)
    key_serializer: str | None = None
    value_serializer: str | None = None

    # no `send_changelog`: the worker writes every record, tombstones too, through the
    # Outbox (the fake producer), never into Faust's buffer; a use of it fails the tests

    @property
    def changelog_topic(self) -> _Changelog:
        return _Changelog(self)


@dataclass
class _Changelog:
    """The table's changelog topic: its name, which the Outbox sends to (FakeProducer)."""

    table: FakeTable

    def get_topic_name(self) -> str:
        return f"{self.table.name}-changelog"


class FakeProducer:
    """aiokafka's producer as streams.changelog.Outbox uses it: every record is acknowledged
    at once and handed to `deliver(topic, partition, key, value)`."""

    def __init__(self, deliver: Callable[[str, int, bytes | None, bytes | None], None]
                 ) -> None:
        self.deliver = deliver

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *,
                         partition: int) -> asyncio.Future[None]:
        for key, value in batch.records:
            self.deliver(topic, partition, key, value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def _partition(self, topic: str, partition: int | None, key: bytes | None,
                   value: bytes | None, serialized_key: bytes | None,
                   serialized_value: bytes | None) -> int:
        return 0


class _Batch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None) -> bool:
        self.records.append((key, value))
        return True


def faust_producer(producer: FakeProducer) -> Any:
    """What `app.producer` is to streams.changelog.producer_of."""
    return SimpleNamespace(_ensure_producer=lambda: producer)


class _Consumer:
    def __init__(self, tps: set[TP]) -> None:
        self.tps = tps

    def assignment(self) -> set[TP]:
        return self.tps

    def highwater(self, tp: TP) -> int:
        return 0


class _Recovery:
    def __init__(self) -> None:
        self.completed = threading.Event()
        self.completed.set()


class _Tables:
    recovery = _Recovery()


class FakeApp:
    def __init__(self, tps: set[TP], producer: FakeProducer | None = None) -> None:
        self.consumer = _Consumer(tps)
        self.tables = _Tables()
        self.producer = faust_producer(producer or FakeProducer(lambda *_: None))


def fake_worker(partitions: int = 2, archive: Store | None = None, **settings: Any) -> Worker:
    s = Settings(events_topic="ev", partitions=partitions, **settings)
    topics = {name: FakeTopic(name) for name in ("ev", "dlq", "breaches", "deltas")}
    tables = {t.changelog_topic.get_topic_name(): t
              for t in (FakeTable("cases"), FakeTable("counts"))}

    def deliver(topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        if topic in tables:
            tables[topic].changelog.append(
                (partition, key or b"", None if value is None else orjson.loads(value)))
        else:
            assert value is not None, "a tombstone only goes to a changelog"
            topics[topic].sent.append((key, value))

    tps = {TP(t, p) for t in ("ev", "deltas") for p in range(partitions)}
    monitor = Monitor(app=FakeApp(tps, FakeProducer(deliver)),  # type: ignore[arg-type]
                      settings=s, events=topics["ev"], dlq=topics["dlq"],  # type: ignore[arg-type]
                      breaches=topics["breaches"], deltas=topics["deltas"],  # type: ignore[arg-type]
                      cases=tables["cases-changelog"],  # type: ignore[arg-type]
                      counts=tables["counts-changelog"])  # type: ignore[arg-type]
    return Worker(monitor, archive)


class Driver:
    """Feeds lines to a fake worker in batches, and its deltas back to it, like the broker."""

    def __init__(self, worker: Worker, partitions: int = 2) -> None:
        self.worker = worker
        self.partitions = partitions
        self.offsets = [0] * partitions
        self.delta_offset = 0

    async def events(self, lines: list[bytes]) -> None:
        batch = []
        for line in lines:
            p = zlib.crc32(_case_id(line)) % self.partitions
            batch.append(Record("ev", p, self.offsets[p], None, line))
            self.offsets[p] += 1
        await self.worker.on_events(batch)
        await self.deltas()

    async def deltas(self) -> None:
        topic: Any = self.worker.m.deltas
        sent, topic.sent = topic.sent, []
        batch = []
        for key, value in sent:
            batch.append(Record("deltas", 0, self.delta_offset, key, value))
            self.delta_offset += 1
        if batch:
            await self.worker.on_deltas(batch)


def _case_id(line: bytes) -> bytes:
    """The record key a producer would use (the bytes themselves for a broken line)."""
    try:
        value = orjson.loads(line)
        return str(value.get("case_id", "")).encode() if isinstance(value, dict) else line
    except orjson.JSONDecodeError:
        return line
