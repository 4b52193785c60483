"""The sink's own pieces: batch lines for the log, consumer lag, readiness while it waits."""

from __future__ import annotations

import logging
import re
import threading
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from kafka import TopicPartition
from prometheus_client import generate_latest

from consumers.batches import describe, skipped
from consumers.retry import Backoff
from consumers.sink import Sink, _may_come_up, health_app
from consumers.store import StoreError
from models.settings import Settings


def test_a_batch_is_described_by_topic_partition_and_offsets() -> None:
    line = describe([("b", 1, 7), ("a", 3, 12), ("a", 3, 40), ("a", 0, 5), ("a", 3, 20)])
    assert line == "a p0 5-5, p3 12-40 (3 of 29); b p1 7-7"
    assert describe([("a", 0, n) for n in range(4, 9)]) == "a p0 4-8"


def test_offsets_passed_over_are_named_and_a_reread_is_not_a_skip() -> None:
    at: dict[tuple[str, int], int] = {}
    assert skipped(at, [("a", 0, 5), ("a", 0, 6), ("a", 1, 0)]) == []  # first sight
    assert skipped(at, [("a", 0, 7), ("a", 0, 10), ("a", 1, 1)]) == [("a", 0, 8, 9)]
    assert skipped(at, [("a", 0, 3), ("a", 0, 4)]) == []  # read again after a seek back
    assert at == {("a", 0): 5, ("a", 1): 2}


class FakeConsumer:
    def __init__(self, high: dict[TopicPartition, int | None], at: dict[TopicPartition, int]):
        self.high, self.at = high, at

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high[tp]

    def position(self, tp: TopicPartition, timeout_ms: int) -> int:
        return self.at[tp]

    def assignment(self) -> set[TopicPartition]:
        return set(self.high)


def test_lag_per_partition_from_the_last_fetch() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    sink = Sink(Settings(), store=SimpleNamespace(),  # type: ignore[arg-type]
                consumer=FakeConsumer({a0: 10, a1: None, b0: 4}, {a0: 7, a1: 0, b0: 4}))
    sink.assigned = frozenset({a0, a1, b0})
    sink._measure_lag()
    text = generate_latest(sink.metrics.registry).decode()
    assert 'vardgaranti_consumer_lag_messages{partition="0",topic="a"} 3.0' in text
    assert 'vardgaranti_consumer_lag_messages{partition="0",topic="b"} 0.0' in text
    assert 'partition="1",topic="a"' not in text  # never fetched: no figure, not a zero


def readyz(sink: Sink) -> tuple[int, str]:
    with TestClient(health_app(sink)) as client:
        assert client.get("/healthz").status_code == 200  # alive in every state
        r = client.get("/readyz")
        return r.status_code, r.text


def test_not_ready_while_waiting_then_ready_once_assigned() -> None:
    sink = Sink(Settings())
    assert readyz(sink) == (503, "store unavailable")
    sink.store, sink.store_ok = SimpleNamespace(), True  # type: ignore[assignment]
    assert readyz(sink) == (503, "broker unavailable")
    sink.consumer, sink.broker_ok = FakeConsumer({}, {}), True
    assert readyz(sink) == (503, "no partitions assigned")
    sink.assigned = frozenset({TopicPartition("a", 0)})
    assert readyz(sink) == (200, "ready")


def test_stopped_while_waiting_for_the_broker_returns() -> None:
    sink = Sink(Settings(kafka_bootstrap="127.0.0.1:1"), store=SimpleNamespace())  # type: ignore[arg-type]
    sink.stop.set()
    assert sink.connect() is False


def test_subscribes_once_every_topic_exists() -> None:
    """Not by pattern before the worker made its changelogs: such a subscription could
    miss them for good."""
    settings = Settings(app_id="vg")
    wanted = ["vg-cases-changelog", "vg-counts-changelog", settings.dlq_topic,
              settings.breaches_topic]

    class Consumer(FakeConsumer):
        def __init__(self) -> None:
            super().__init__({}, {})
            self.listed = 0
            self.subscribed: list[str] | None = None

        def topics(self) -> set[str]:
            self.listed += 1
            return set(wanted[2:]) if self.listed == 1 else set(wanted) | {"other"}

        def subscribe(self, pattern: str) -> None:
            assert self.listed == 2, "subscribed before the changelogs existed"
            self.subscribed = [t for t in [*wanted, "other"] if re.match(pattern, t)]

    consumer = Consumer()
    sink = Sink(settings, store=SimpleNamespace(), consumer=consumer)  # type: ignore[arg-type]
    assert sink.connect() is True
    assert consumer.subscribed == wanted


def test_only_an_unreachable_postgresql_is_waited_for() -> None:
    pg = "postgresql+psycopg://u@db:5432/vg"
    assert _may_come_up(pg, StoreError("cannot open the store at 'db:5432/vg': connection refused"))
    assert not _may_come_up(pg, StoreError("database URL 'x': no such driver"))
    assert not _may_come_up("sqlite:///nope/x.db", StoreError("cannot open the store at 'x'"))


def test_backoff_says_why_in_one_line_and_waits_longer_up_to_a_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    stop.set()  # no real pauses: wait() returns at once, saying it was stopped
    backoff = Backoff("broker", stop, logging.getLogger("test"), most_s=1.0)
    with caplog.at_level(logging.WARNING):
        assert all(backoff.wait("refused\nsecond line") for _ in range(3))
    assert caplog.messages == [f"broker unavailable (refused); retrying in {d} s"
                               for d in ("0.5", "1.0", "1.0")]
