"""A streaming stack for integration tests: workers and a sink as real `vardgaranti` processes.

Each stack has its own app id, topics, sink group and SQLite store, so tests do not see
each other's data (or group members) on the session's broker. Processes are started with
`python -m vardgaranti`, stopped with SIGTERM (or killed with SIGKILL), and observed only
from outside: their /metrics and /readyz, the store, and the topics. A store that does not
catch up fails naming the first differing cell and the offsets each group got to.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.kafka import KAFKA_IS_MOCK, consumer_timeouts, create_topics

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 120.0,
               logs: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs()}")


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.process.poll() is None and self.get("/readyz")[0] == 200

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (0 when absent or the process is not answering)."""
        status, text = self.get("/metrics")
        if status != 200:
            return 0.0
        return sum(s.value for fam in text_string_to_metric_families(text)
                   for s in fam.samples if s.name == name)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            pytest.fail(f"{self.name} ignored signal {sig}; log:\n{self.tail()}")

    def tail(self, n: int = 6000) -> str:
        return f"--- {self.name} ---\n" + self.log.read_text(errors="replace")[-n:]


@dataclass
class Stack:
    bootstrap: str
    workdir: Path
    partitions: int = 3
    app_id: str = field(default_factory=lambda: f"vg-{uuid.uuid4().hex[:8]}")
    procs: list[Proc] = field(default_factory=list)
    _n: itertools.count[int] = field(default_factory=itertools.count)
    database_url: str | None = None  # the store; a SQLite file in the work dir when None

    @property
    def topics(self) -> dict[str, str]:
        return {"events": f"{self.app_id}.events", "dlq": f"{self.app_id}.events.dlq",
                "breaches": f"{self.app_id}.breaches"}

    @property
    def sink_group(self) -> str:
        return f"{self.app_id}-sink"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workdir / 'store.db'}"

    def env(self) -> dict[str, str]:
        timeouts = consumer_timeouts()
        env = {
            **os.environ,
            "VARDGARANTI_KAFKA_BOOTSTRAP": self.bootstrap,
            "VARDGARANTI_APP_ID": self.app_id,
            "VARDGARANTI_EVENTS_TOPIC": self.topics["events"],
            "VARDGARANTI_DLQ_TOPIC": self.topics["dlq"],
            "VARDGARANTI_BREACHES_TOPIC": self.topics["breaches"],
            "VARDGARANTI_PARTITIONS": str(self.partitions),
            "VARDGARANTI_DATABASE_URL": self.db_url,
            "VARDGARANTI_WORKER_DATA_DIR": str(self.workdir / "faust"),
            "VARDGARANTI_SINK_GROUP": self.sink_group,
        }
        env.pop("VARDGARANTI_API_TOKEN", None)
        if KAFKA_IS_MOCK:
            env["VARDGARANTI_KAFKA_SESSION_TIMEOUT"] = str(timeouts["session_timeout_ms"] / 1000)
            env["VARDGARANTI_KAFKA_HEARTBEAT_INTERVAL"] = str(
                timeouts["heartbeat_interval_ms"] / 1000)
        return env

    def create_topics(self) -> None:
        create_topics(self.bootstrap, {self.topics["events"]: self.partitions,
                                       self.topics["dlq"]: 1, self.topics["breaches"]: 1})

    def _start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        port = free_port()
        log = self.workdir / f"{name}-{next(self._n)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "vardgaranti", *args, "--port", str(port)],
                cwd=self.workdir, env={**self.env(), **(env or {})}, stdout=out,
                stderr=subprocess.STDOUT)
        proc = Proc(name, process, log, port)
        self.procs.append(proc)
        return proc

    def worker(self, wait: bool = True, database_url: str | None = None) -> Proc:
        """`database_url`: the worker's own way to the store, when not the sink's."""
        env = {"VARDGARANTI_DATABASE_URL": database_url} if database_url else None
        proc = self._start("worker", "worker", "--loglevel", "info", env=env)  # batch lines
        if wait:
            wait_until("the worker to be ready", proc.ready, logs=self.logs)
        return proc

    def sink(self, wait: bool = True) -> Proc:
        proc = self._start("sink", "sink")
        if wait:
            wait_until("the sink to be ready", proc.ready, logs=self.logs)
        return proc

    def publish(self, path: Path, rate: float = 0.0,
                progress: Callable[[int], None] | None = None) -> int:
        """Publish a log's lines (at most `rate` lines/s when given; `progress` gets the count
        of lines handed over every 50 lines); the number of lines."""
        from consumers.publish import TokenBucket, open_producer, publish
        from models.settings import Settings

        producer = open_producer(Settings(), self.bootstrap)
        try:
            stats = publish([path], producer, self.topics["events"],
                            limiter=TokenBucket(rate) if rate else None, progress=progress,
                            progress_every=50)
        finally:
            producer.close()
        assert stats.first_error is None, stats.first_error
        return stats.lines

    def consume(self, topic: str, expect_at_least: int = 0, timeout_s: float = 30) -> list[Any]:
        """Every record of a topic (read from the start, no group)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(parts)
            consumer.seek_to_beginning()
            end = consumer.end_offsets(parts)
            out: list[Any] = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for recs in consumer.poll(timeout_ms=500).values():
                    out.extend(recs)
                if all(consumer.position(tp) >= end[tp] for tp in parts) and (
                        len(out) >= expect_at_least):
                    break
            return out
        finally:
            consumer.close()

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def offsets(self) -> str:
        """Committed and end offsets of the worker's and the sink's topics, one line each:
        where each process got to, when the store does not match."""
        groups = {self.app_id: [self.topics["events"], f"{self.app_id}-deltas"],
                  self.sink_group: [f"{self.app_id}-{t}-changelog" for t in ("cases", "counts")]
                  + [self.topics["dlq"], self.topics["breaches"]]}
        try:
            return "\n".join(group_offsets(self.bootstrap, group, topics)
                             for group, topics in groups.items())
        except Exception as exc:  # a diagnosis, not the failure itself
            return f"offsets unavailable: {exc}"

    def wait_for_store(self, want: Cells, timeout_s: float = 180.0) -> None:
        """Wait until the store's aggregates equal `want` (from `report_cells`); on timeout
        fail naming the first differing cell and the offsets each group got to."""
        periods = list(want)
        got: Cells = {}
        error = ""

        def equal() -> bool:
            nonlocal got, error
            try:
                got, error = store_cells(self.db_url, periods), ""
            except Exception as exc:  # the sink has not created the tables yet
                error = f"store not readable: {str(exc).splitlines()[0]}"
                return False
            return got == want

        wait_until("the stored aggregates to equal the report", equal, timeout_s,
                   lambda: "\n".join((error or first_difference(want, got) or "",
                                      self.offsets(), self.logs())))

    def close(self) -> None:
        for proc in self.procs:
            if proc.process.poll() is None:
                proc.process.kill()
                proc.process.wait(10)


# ---------------------------------------------------------------- store against report

Cells = dict[tuple[date, date], list[dict[str, Any]]]  # (first, last = as of) -> rows


def report_cells(path: Path, periods: Iterable[tuple[date, date]]) -> Cells:
    """`vardgaranti report` on a log: the rows each period must have in the store."""
    from consumers.report import build_report
    from models.measures import Period

    return {(a, b): [r.as_dict() for r in build_report([path], Period.of(a, b, b)).rows]
            for a, b in periods}


def store_cells(db_url: str, periods: Iterable[tuple[date, date]]) -> Cells:
    from consumers.store import Store
    from models.measures import Period, arrange

    store = Store(db_url)
    try:
        return {(a, b): [r.as_dict() for r in arrange(store.per_unit(Period.of(a, b, b)))]
                for a, b in periods}
    finally:
        store.engine.dispose()


def first_difference(want: Cells, got: Cells) -> str | None:
    """The first cell (period, indicator, unit, measure) where the store differs."""
    for period, rows in want.items():
        stored = {(r["indicator"], r["unit_id"]): r for r in got.get(period, [])}
        where = f"period {period[0]}–{period[1]}"
        for row in rows:
            cell = (row["indicator"], row["unit_id"])
            seen = stored.pop(cell, None)
            if seen is None:
                return f"{where}, {cell[0]}, unit {cell[1]}: no row stored (want {row})"
            for measure, value in row.items():
                if seen[measure] != value:
                    return (f"{where}, {cell[0]}, unit {cell[1]}, {measure}: "
                            f"want {value}, got {seen[measure]}")
        if stored:
            extra = next(iter(stored))
            return f"{where}, {extra[0]}, unit {extra[1]}: stored but not in the report"
    return None


def group_offsets(bootstrap: str, group: str, topics: Iterable[str]) -> str:
    """`group: topic committed/end per partition, …`; `-` where nothing is committed."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in sorted(consumer.partitions_for_topic(t) or ())]
        end = consumer.end_offsets(parts) if parts else {}
        committed = admin.list_group_offsets({group: parts}).get(group, {}) if parts else {}
        out = []
        for topic in topics:
            mine = [tp for tp in parts if tp.topic == topic]
            if not mine:
                out.append(f"{topic} (no such topic)")
                continue
            cells = []
            for tp in mine:
                done = committed.get(tp)
                at = str(done.offset) if done is not None and done.offset >= 0 else "-"
                cells.append(f"{tp.partition}:{at}/{end[tp]}")
            out.append(f"{topic} {' '.join(cells)}")
        return f"offsets of group {group} (partition:committed/end): " + "; ".join(out)
    finally:
        consumer.close()
        admin.close()
