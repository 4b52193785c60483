"""`vardgaranti sink`: the streaming worker's output into the store of the embedded mode.

It reads, with kafka-python, the worker's table changelogs (cases: facts and clocks; counts:
absolute per-day counters), the breach/at-risk notices and the dead letters, and writes them
with the store's idempotent upserts. Offsets are committed only after the write, so a sink
killed at any point writes the same rows again on restart, which changes nothing.

It answers /healthz from the start. Until the broker answers (and, for PostgreSQL, the
database), it says so in one line per attempt, retries with backoff and reports not-ready on
/readyz; likewise when the store or the broker goes away later. Each batch is logged at INFO
(topics, partitions, offsets, rows) and /metrics shows the consumer lag per partition.
`vardgaranti query` then reads what it wrote. See docs/streaming.md.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from consumers.batches import describe
from consumers.kafka_config import (
    BROKER_MAX_BACKOFF_S,
    client_kwargs,
    new_consumer,
    wait_for_broker,
)
from consumers.retry import Backoff
from consumers.store import Store, StoreError
from models.casestate import CaseState
from models.clocks import ClockView, Fact
from models.countergroup import CounterGroup, is_checkpoint
from models.deadletter import DeadLetter
from models.measures import Key
from models.settings import Settings

log = logging.getLogger("vardgaranti.sink")

MAX_BACKOFF_S = 30.0
COMMIT_TIMEOUT_MS = 5_000


def topics(settings: Settings) -> dict[str, str]:
    """What the sink reads, by role (the changelog names are Faust's: app id, table)."""
    return {
        "cases": f"{settings.app_id}-cases-changelog",
        "counts": f"{settings.app_id}-counts-changelog",
        "dead": settings.dlq_topic,
        "notices": settings.breaches_topic,
    }


@dataclass
class Batch:
    """One poll's records, decoded; the last value of a changelog key wins."""

    cases: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    counts: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    notices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def case_rows(self) -> tuple[list[tuple[str, Fact]], list[tuple[str, ClockView]]]:
        """The facts (the store's `events`) and the clocks of the cases in the batch."""
        facts: list[tuple[str, Fact]] = []
        clocks: list[tuple[str, ClockView]] = []
        for key, value in self.cases.items():
            case_id, state = key.decode(), CaseState.from_json(value)
            facts.extend((case_id, f) for f in state.facts)
            clocks.extend((case_id, c) for c in state.clocks)
        return facts, clocks

    def summary(self) -> str:
        return (f"{len(self.cases)} cases, {len(self.counts)} counter groups, "
                f"{len(self.dead)} dead letters, {len(self.notices)} notices written")

    def counters(self) -> dict[Key, int]:
        out: dict[Key, int] = {}
        for k, v in self.counts.items():
            out.update(CounterGroup.from_json(v).items(k))
        return out


def decode(records: Iterable[Any], names: dict[str, str]) -> Batch:
    """Records of the four topics into one batch (tombstones, counter checkpoints and
    foreign topics ignored: the store keeps every day)."""
    role = {topic: r for r, topic in names.items()}
    batch = Batch()
    for rec in records:
        if rec.value is None:
            continue
        kind = role.get(rec.topic)
        if kind == "cases":
            batch.cases[bytes(rec.key)] = orjson.loads(rec.value)
        elif kind == "counts":
            if not is_checkpoint(bytes(rec.key)):  # the store keeps every day's rows
                batch.counts[bytes(rec.key)] = orjson.loads(rec.value)
        elif kind == "dead":
            batch.dead.append(DeadLetter.from_json(rec.value))
        elif kind == "notices":
            notice = orjson.loads(rec.value)
            for day in ("deadline", "as_of"):
                notice[day] = date.fromisoformat(notice[day])
            batch.notices[notice["notice_id"]] = notice
    return batch


class SinkMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records = Counter("vardgaranti_sink_records", "Records written to the store",
                               ["topic"], registry=self.registry)
        self.retries = Counter("vardgaranti_sink_write_retries",
                               "Store writes retried after a failure", registry=self.registry)
        self.last_write = Gauge("vardgaranti_sink_last_write_timestamp_seconds",
                                "Wall-clock time of the last successful write (unix seconds)",
                                registry=self.registry)
        self.store_up = Gauge("vardgaranti_sink_store_up",
                              "1 when the last store write succeeded", registry=self.registry)
        self.lag = Gauge("vardgaranti_consumer_lag_messages",
                         "Messages not yet consumed (the sink's topics)", ["topic", "partition"],
                         registry=self.registry)


class Sink:
    def __init__(self, settings: Settings, store: Store | None = None,
                 consumer: Any | None = None) -> None:
        self.settings = settings
        self.store = store
        self.names = topics(settings)
        self.metrics = SinkMetrics()
        self.stop = threading.Event()
        self.store_ok = store is not None
        self.broker_ok = consumer is not None
        self.consumer = consumer
        # what /readyz reads: the consumer itself belongs to the sink thread
        self.assigned: frozenset[Any] = frozenset()

    def connect(self) -> bool:
        """Open the store, the consumer and its subscription, waiting for each; False when
        stopped meanwhile."""
        from kafka.errors import KafkaError

        if self.store is None:
            self.store = self._open_store()
        backoff = Backoff("broker", self.stop, log, BROKER_MAX_BACKOFF_S)
        while self.store is not None and self.consumer is None and wait_for_broker(
                self.settings, self.stop, log):
            try:
                self.consumer = self._consumer()
            except KafkaError as exc:  # it answered the probe, then stopped answering
                backoff.wait(str(exc))
        self.broker_ok = self.consumer is not None
        return self.store is not None and self.consumer is not None and self._subscribe()

    def _subscribe(self) -> bool:
        """Subscribe to the four topics once they all exist. The worker creates its
        changelogs at its first start; a sink subscribed before that could stay without
        them for good: kafka-python did not always rejoin the group when they appeared
        (docs/streaming.md)."""
        from kafka.errors import KafkaError

        assert self.consumer is not None
        wanted = list(self.names.values())
        backoff = Backoff("topics", self.stop, log, BROKER_MAX_BACKOFF_S)
        while not self.stop.is_set():
            try:
                existing = self.consumer.topics()
            except KafkaError as exc:
                backoff.wait(str(exc))
                continue
            missing = [t for t in wanted if t not in existing]
            if not missing:  # by pattern, as before, but only now that every topic exists
                self.consumer.subscribe(pattern="^(" + "|".join(
                    t.replace(".", r"\.") for t in wanted) + ")$")
                return True
            backoff.wait(f"not yet created: {', '.join(missing)}; the worker creates its "
                         "changelogs when it first starts")
        return False

    def _open_store(self) -> Store | None:
        """The store; a PostgreSQL server that does not answer yet is waited for, anything
        else wrong with the database URL is the user's to mend (StoreError)."""
        backoff = Backoff("store", self.stop, log, MAX_BACKOFF_S)
        while not self.stop.is_set():
            try:
                store = Store(self.settings.database_url, self.settings.sqlite_cache_mb)
            except StoreError as exc:
                if not _may_come_up(self.settings.database_url, exc):
                    raise
                backoff.wait(str(exc))
                continue
            self.store_ok = True
            self.metrics.store_up.set(1)
            return store
        return None

    def _consumer(self) -> Any:
        return new_consumer(
            self.settings, "vardgaranti-sink", bootstrap_timeout_ms=10_000,
            group_id=self.settings.sink_group, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=5000,
            session_timeout_ms=int(self.settings.kafka_session_timeout * 1000),
            heartbeat_interval_ms=int(self.settings.kafka_heartbeat_interval * 1000),
        )

    def ready(self) -> bool:
        return self.store_ok and self.broker_ok and bool(self.assigned)

    def run(self) -> None:
        assert self.store is not None and self.consumer is not None, "connect() first"
        log.info("sink reading %s into %s", ", ".join(self.names.values()),
                 self.store.url.split("@")[-1])
        while not self.stop.is_set():
            records = self._poll()
            self._measure_lag()
            if not records:
                continue
            batch = decode(records, self.names)
            self.write(batch)
            if self.stop.is_set() and not self.store_ok:
                break  # stopped while the store was down: do not commit what was not written
            try:  # bounded: without a timeout kafka-python retries a commit until the broker
                # is back, and a blocked sink could not tell /readyz that it is not
                self.consumer.commit(timeout_ms=COMMIT_TIMEOUT_MS)
            except Exception as exc:  # a rebalance: the records come again, writes are idempotent
                log.warning("offset commit failed (%s); the records will be written again", exc)
            for rec in records:
                self.metrics.records.labels(rec.topic).inc()
            log.info("%s: %s", describe((r.topic, r.partition, r.offset) for r in records),
                     batch.summary())
        self.consumer.close(autocommit=False)
        log.info("sink stopped")

    def _poll(self) -> list[Any]:
        """One poll's records; while the broker is unreachable, retry with backoff."""
        from kafka.errors import KafkaError

        assert self.consumer is not None
        backoff = Backoff("broker", self.stop, log, BROKER_MAX_BACKOFF_S)
        while not self.stop.is_set():
            try:
                polled = self.consumer.poll(timeout_ms=500)
            except KafkaError as exc:  # kafka-python raises when it cannot reach the broker
                self.broker_ok = False
                backoff.wait(str(exc))
                continue
            if self.assigned and _coordinator_lost(self.consumer):
                # poll returns empty-handed rather than raising when the broker went away
                self.broker_ok = False
                backoff.wait("the group coordinator cannot be reached")
                continue
            if not self.broker_ok:
                log.warning("broker reachable again")
                self.broker_ok = True
            assigned = frozenset(self.consumer.assignment())
            if assigned != self.assigned:
                log.info("partitions assigned: %s", _partitions(assigned) or "none")
                self.assigned = assigned
            return [r for recs in polled.values() for r in recs]
        return []

    def _measure_lag(self) -> None:
        """Lag per assigned partition: the high watermark of the last fetch minus the next
        offset to read (a partition not fetched from yet shows no figure)."""
        assert self.consumer is not None
        self.metrics.lag.clear()
        for tp in self.assigned:
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            try:
                at = self.consumer.position(tp, timeout_ms=100)
            except Exception:  # no position yet (being reset): no figure this round
                continue
            if at is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - at))

    def write(self, batch: Batch) -> None:
        """Write a batch, retrying with backoff until it is written or the sink is stopped."""
        assert self.store is not None
        backoff = Backoff("store", self.stop, log, MAX_BACKOFF_S)
        while True:
            try:
                facts, clocks = batch.case_rows()
                self.store.write_batch(facts, clocks, batch.counters(), batch.dead)
                self.store.write_notices(batch.notices.values())
            except StoreError as exc:
                self.store_ok = False
                self.metrics.store_up.set(0)
                self.metrics.retries.inc()
                if backoff.wait(str(exc)):
                    return
                continue
            if not self.store_ok:
                log.warning("store reachable again; batch written")
            self.store_ok = True
            self.metrics.store_up.set(1)
            self.metrics.last_write.set(time.time())
            return


def _may_come_up(url: str, exc: StoreError) -> bool:
    """A PostgreSQL server that could not be reached (it may be starting); a SQLite file or
    a malformed URL will not mend itself."""
    return url.startswith("postgresql") and str(exc).startswith("cannot open the store")


def _partitions(assigned: Iterable[Any]) -> str:
    by_topic: dict[str, list[int]] = {}
    for tp in assigned:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{t} {sorted(ps)}" for t, ps in sorted(by_topic.items()))


def health_app(sink: Sink) -> FastAPI:
    app = FastAPI(title="vårdgaranti sink", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    def readyz() -> PlainTextResponse:
        if not sink.store_ok:
            return PlainTextResponse("store unavailable", status_code=503)
        if not sink.broker_ok:
            return PlainTextResponse("broker unavailable", status_code=503)
        if not sink.assigned:
            return PlainTextResponse("no partitions assigned", status_code=503)
        return PlainTextResponse("ready")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(sink.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def run(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM: finish the batch at hand, commit, exit 0. A bad setting
    raises KafkaConfigError or StoreError (one line for the user) before anything starts."""
    client_kwargs(settings)
    logging.basicConfig(level=logging.INFO,
                        format="[%(asctime)s] [%(levelname)s] %(name)s: %(message)s")
    # kafka-python logs each reconnection attempt; the sink says once per retry what is wrong
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    sink = Sink(settings)
    server = uvicorn.Server(uvicorn.Config(
        health_app(sink), host=settings.http_host, port=settings.sink_port,
        log_level="warning", access_log=False))
    threading.Thread(target=server.run, name="sink-http", daemon=True).start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sink.stop.set())
    try:
        if sink.connect():
            sink.run()
    finally:
        server.should_exit = True
    return 0


def _coordinator_lost(consumer: Any) -> bool:
    """The consumer has lost its group coordinator: kafka-python marks it dead as soon as a
    heartbeat or a fetch cannot reach the broker (no public accessor; the worker asks
    aiokafka the same question)."""
    coordinator = getattr(consumer, "_coordinator", None)
    return coordinator is not None and bool(coordinator.coordinator_unknown())
