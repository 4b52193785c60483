"""`python -m benchmarks.streaming`: events/s and event-to-metric latency through the broker
and one worker (issue 6), with an optional py-spy profile of the worker.

Every pass has its own app id, topics and store (tests/support/streaming.py `Stack`), on a
mock broker started for the run or on the Kafka named by VARDGARANTI_BENCH_KAFKA_BOOTSTRAP:

0. `vardgaranti report` over the same log, in this process before anything else runs (best
   of three): the embedded path's rate, which the worker's is compared with.
1. backlog: the whole generated log is published first (the publish rate), then ONE
   `vardgaranti worker` is started and timed from ready until its /metrics account for every
   line (processed + rejected + duplicates = lines) with no consumer lag on the events or
   deltas topics: events/s through the worker.
2. latency: with that worker caught up, probe events (new same-day contact requests, later
   than everything else) are sent one at a time at a steady rate; for each, the time from
   the producer's acknowledgement until /metrics shows it processed, and until the
   aggregate it moves (`vardgaranti_waiting`, after the deltas topic and the counters) does.
3. the backlog again with a sink: timed until the sink has committed every record of the
   changelogs, dead letters and notices (it commits after writing): events/s into the store.
4. with --profile, the backlog once more under `py-spy record --idle`, summarised by where
   the worker's time goes (Faust, the Kafka client, the core, JSON, /metrics…).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.suite import Context, Figure, StepResult
from tests.support.kafka import MOCK_HEARTBEAT_INTERVAL_MS, MOCK_SESSION_TIMEOUT_MS
from tests.support.streaming import Proc, Stack

ENV_BOOTSTRAP = "VARDGARANTI_BENCH_KAFKA_BOOTSTRAP"
CACHE = Path(".cache/bench")
TZ = ZoneInfo("Europe/Stockholm")
PY_SPY = Path(sys.executable).with_name("py-spy")

PROCESSED = "vardgaranti_events_processed_total"
REJECTED = "vardgaranti_events_rejected_total"
IGNORED = "vardgaranti_events_ignored_total"
LAG = "vardgaranti_consumer_lag_messages"
WAITING = "vardgaranti_waiting"
WATERMARK = "vardgaranti_watermark_timestamp_seconds"
_SCRAPED = (PROCESSED, REJECTED, IGNORED, LAG, WAITING, WATERMARK)


class BenchError(RuntimeError):
    """A pass could not complete (a process died or a wait timed out): one line + logs."""


# ---------------------------------------------------------------- the broker and the stack


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, bool]]:
    """(bootstrap, is_mock): $VARDGARANTI_BENCH_KAFKA_BOOTSTRAP or a mock broker of our own."""
    real = os.environ.get(ENV_BOOTSTRAP)
    if real:
        yield real, False
        return
    from tests.support.kafka import start_mock_broker

    mock = start_mock_broker()
    try:
        yield mock.bootstrap, True
    finally:
        mock.stop()


@dataclass
class BenchStack(Stack):
    """A test Stack whose group timeouts follow the broker in use, with a sink group of its own
    (so the sink's committed offsets can be read back)."""

    mock: bool = True

    @property
    def sink_group(self) -> str:
        return f"{self.app_id}-sink"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["VARDGARANTI_SINK_GROUP"] = self.sink_group
        if self.mock:
            env["VARDGARANTI_KAFKA_SESSION_TIMEOUT"] = str(MOCK_SESSION_TIMEOUT_MS / 1000)
            env["VARDGARANTI_KAFKA_HEARTBEAT_INTERVAL"] = str(MOCK_HEARTBEAT_INTERVAL_MS / 1000)
        else:  # a real Kafka refuses the mock's short session timeout
            env.pop("VARDGARANTI_KAFKA_SESSION_TIMEOUT", None)
            env.pop("VARDGARANTI_KAFKA_HEARTBEAT_INTERVAL", None)
        return env

    def worker(self, wait: bool = False, database_url: str | None = None) -> Proc:
        """A worker at the default log level (as deployed), not yet waited for.

        (At `--loglevel warning` Faust's terminal spinner sets the root logger to DEBUG, and
        every debug call in faust/aiokafka then builds a record: not what users run.)
        """
        env = {"VARDGARANTI_DATABASE_URL": database_url} if database_url else None
        proc = self._start("worker", "worker", env=env)
        if wait:
            wait_ready(proc, self)
        return proc

    def sink(self, wait: bool = True) -> Proc:
        proc = self._start("sink", "sink")
        if wait:
            wait_ready(proc, self)
        return proc

    def changelogs(self) -> list[str]:
        return [f"{self.app_id}-cases-changelog", f"{self.app_id}-counts-changelog"]

    def internal_topics(self) -> list[str]:
        """What the worker writes per event besides notices and dead letters."""
        return [f"{self.app_id}-deltas", *self.changelogs()]

    def sink_topics(self) -> list[str]:
        return [*self.changelogs(), self.topics["dlq"], self.topics["breaches"]]


def wait(what: str, check: Callable[[], bool], timeout_s: float, stack: Stack,
         every_s: float = 0.25) -> float:
    """Poll `check` until true; the monotonic time it was first seen true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        dead = [p.name for p in stack.procs if p.process.poll() is not None]
        if dead:
            raise BenchError(f"{', '.join(dead)} exited while waiting for {what}\n{stack.logs()}")
        time.sleep(every_s)
    raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{stack.logs()}")


def wait_ready(proc: Proc, stack: Stack) -> float:
    return wait(f"the {proc.name} to be ready", proc.ready, 180, stack, every_s=0.02)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, from /proc (0 when it is gone).
    On a shared machine this, not the wall clock, says what a worker costs per event."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """Resident memory of a process from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ---------------------------------------------------------------- /metrics, cheaply


class Scraper:
    """Reads a process's /metrics over one keep-alive connection, keeping only the series of
    the metrics asked for (the full Prometheus parser costs more than the render)."""

    def __init__(self, port: int, names: Sequence[str] = _SCRAPED) -> None:
        self.port = port
        self.prefixes = tuple(n.encode() for n in names)
        self.conn: http.client.HTTPConnection | None = None
        self.last_s = 0.0  # duration of the last scrape (render + transfer)

    def scrape(self) -> dict[str, float]:
        """{series: value}; empty when the process does not answer."""
        # a kept-alive connection the server has since closed (uvicorn: after 5 s) fails
        # once: then a fresh one is tried
        for _ in range(2):
            started = time.perf_counter()
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.request("GET", "/metrics")
                response = self.conn.getresponse()
                body = response.read()
                break
            except (OSError, http.client.HTTPException):
                self.close()
        else:
            return {}
        self.last_s = time.perf_counter() - started
        if response.status != 200:
            return {}
        out: dict[str, float] = {}
        for line in body.split(b"\n"):
            if line.startswith(self.prefixes):
                series, _, value = line.rpartition(b" ")
                out[series.decode()] = float(value)
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def total(series: dict[str, float], name: str, labels: str = "") -> float:
    """Sum of a metric's series (those whose labels contain `labels`, when given)."""
    return sum(v for k, v in series.items()
               if (k == name or k.startswith(name + "{")) and labels in k)


def accounted(series: dict[str, float]) -> float:
    """Lines the worker is done with: processed, rejected, or repeated ids (an orphan or
    inconsistent event is a processed one, ignored only by the measures)."""
    return (total(series, PROCESSED) + total(series, REJECTED)
            + total(series, IGNORED, 'reason="duplicate"'))


def drained(series: dict[str, float], partitions: int) -> bool:
    """Lag known and zero on every partition of the events and deltas topics."""
    lags = [v for k, v in series.items() if k.startswith(LAG + "{")]
    return len(lags) >= 2 * partitions and not any(lags)


# ---------------------------------------------------------------- the log and publishing


def log_file(scale: float, year: int, console: Console, seed: int = 1) -> Path:
    """The generated log, cached under .cache/bench (named as `make bench` names its own;
    another seed gives other ids, so logs of several years can follow each other)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"year-{year}-s{scale:g}{'' if seed == 1 else f'-seed{seed}'}.jsonl.gz"
    if not path.exists():
        from vardgaranti.generate import generate

        console.print(f"generating {path} …")
        generate(path, year, seed=seed, scale=scale, progress=sys.stderr.isatty())
    return path


def publish(stack: Stack, path: Path) -> tuple[int, float]:
    """(lines, seconds until every line was acknowledged)."""
    from consumers.publish import open_producer
    from consumers.publish import publish as send_all
    from models.settings import Settings

    producer = open_producer(Settings(), stack.bootstrap)
    try:
        stats = send_all([path], producer, stack.topics["events"])
    finally:
        producer.close()
    if stats.first_error is not None:
        raise BenchError(f"publishing failed: {stats.first_error}")
    return stats.lines, stats.seconds


def end_offsets(bootstrap: str, topics: Sequence[str]) -> int:
    """Records written to these topics (all are the run's own, so they start at offset 0)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in consumer.partitions_for_topic(t) or ()]
        return sum(consumer.end_offsets(parts).values()) if parts else 0
    finally:
        consumer.close()


def settled_end_offsets(bootstrap: str, topics: Sequence[str], every_s: float = 0.5,
                        timeout_s: float = 30.0) -> int:
    """`end_offsets` once it stops growing: the worker's last changelog writes may still be in
    flight when its consumer lag is gone."""
    last, deadline = -1, time.monotonic() + timeout_s
    while (now := end_offsets(bootstrap, topics)) != last and time.monotonic() < deadline:
        last = now
        time.sleep(every_s)
    return now


def bare_consumer(stack: Stack, rounds: int = 3,
                  timeout_s: float = 900.0) -> tuple[int, float, float]:
    """(records, seconds, CPU seconds) for a bare aiokafka consumer, no group and no
    processing, to read the events topic from its start: the ceiling for any Python consumer
    on this broker. The best of a few rounds: one takes well under a second, so the others'
    load shows."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = stack.topics["events"]
    records = end_offsets(stack.bootstrap, [topic])

    async def drain() -> tuple[float, float]:
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(stack.partitions)]
            consumer.assign(parts)
            best, best_cpu = float("inf"), float("inf")
            for _ in range(rounds):
                await consumer.seek_to_beginning(*parts)
                started, cpu, seen = time.monotonic(), time.process_time(), 0
                while seen < records:
                    batches = await consumer.getmany(timeout_ms=1000)
                    seen += sum(len(batch) for batch in batches.values())
                best = min(best, time.monotonic() - started)
                best_cpu = min(best_cpu, time.process_time() - cpu)
            return best, best_cpu
        finally:
            await consumer.stop()

    try:
        return records, *asyncio.run(asyncio.wait_for(drain(), timeout_s))
    except TimeoutError:
        raise BenchError(f"the bare consumer did not read {records} records in "
                         f"{timeout_s:.0f} s") from None


def counters_of(stack: BenchStack) -> Counter[tuple[object, ...]]:
    """The per-day counters the workers left, from the counts changelog (the last value of
    each key, as the sink and a restarted worker read it): what must not depend on how
    many workers there were."""
    from models.countergroup import CounterGroup

    topic = stack.changelogs()[1]
    last: dict[bytes, bytes] = {}
    for record in stack.consume(topic, end_offsets(stack.bootstrap, [topic])):
        if record.key is not None:
            last[bytes(record.key)] = record.value
    out: Counter[tuple[object, ...]] = Counter()
    for key, value in last.items():
        if value:
            out.update(dict(CounterGroup.from_json(orjson.loads(value)).items(key)))
    return +out


class SinkProgress:
    """How far the sink is behind: records of its topics its group has not committed."""

    def __init__(self, stack: BenchStack) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self.stack = stack
        self.consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap)
        self.admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)

    def behind(self) -> int:
        """Records not yet committed (-1 while the changelogs do not exist)."""
        from kafka import TopicPartition

        topics = self.stack.sink_topics()
        self.consumer.topics()  # refresh the metadata: the changelogs appear with the worker
        parts = [TopicPartition(t, p) for t in topics
                 for p in self.consumer.partitions_for_topic(t) or ()]
        if {tp.topic for tp in parts} != set(topics):
            return -1
        end = self.consumer.end_offsets(parts)
        group = self.stack.sink_group
        committed = self.admin.list_group_offsets({group: parts}).get(group, {})
        behind = 0
        for tp in parts:
            done = committed.get(tp)
            behind += end[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
        return behind

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


# ---------------------------------------------------------------- pass 1/2: the backlog


@dataclass
class Backlog:
    lines: int
    publish_s: float
    startup_s: float  # process start until /readyz
    worker_s: float  # ready until every line is accounted for and nothing lags
    bare_s: float  # a bare consumer reading the events topic, before the worker starts
    bare_cpu_s: float = 0.0  # its CPU time (the same round)
    worker_cpu_s: float = 0.0  # the worker's CPU time from ready until done
    messages: int = 0  # records the worker wrote to its deltas topic and changelogs
    accounted: float = 0.0  # lines the workers say they are done with
    sink_s: float | None = None  # ready until the sink has committed everything
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    sink_rss_mb: float = 0.0
    profile: Path | None = None
    startup_cpu_s: float = 0.0  # the workers' CPU time until the first was ready
    worker: Proc | None = field(default=None, repr=False)


def backlog(stack: BenchStack, path: Path, *, with_sink: bool = False,
            profile: Path | None = None, profile_s: float = 20.0,
            timeout_s: float = 900.0, workers: int = 1) -> Backlog:
    """Publish the whole log, then start `workers` workers at once (and a sink) and time the
    catch-up, from the first worker's /readyz (so a rebalance as the others join counts)."""
    stack.create_topics()
    lines, publish_s = publish(stack, path)
    bare_records, bare_s, bare_cpu_s = bare_consumer(stack)
    if bare_records != lines:
        raise BenchError(f"{lines} lines published but {bare_records} records on the topic")
    started = time.monotonic()
    procs = [stack.worker() for _ in range(workers)]
    ready = min(wait_ready(w, stack) for w in procs)
    cpu_at_ready = sum(cpu_s(w.process.pid) for w in procs)
    worker = procs[0]
    # after the worker has created its changelogs: the sink subscribes by pattern, and
    # kafka-python sees new topics only at its next metadata refresh (5 minutes by default)
    sink = stack.sink() if with_sink else None
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [str(PY_SPY), "record", "--idle", "-p", str(worker.process.pid),
             "-d", f"{profile_s:g}", "-r", "100", "-f", "raw", "-o", str(profile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    scrapers = [Scraper(w.port) for w in procs]
    peak = seen = 0.0
    settled: list[float] = []

    def done() -> bool:
        nonlocal peak, seen
        peak = max(peak, rss_mb(worker.process.pid))
        series: dict[str, float] = {}
        seen = 0.0
        for scraper in scrapers:  # each worker counts its own partitions' events and lag
            mine = scraper.scrape()
            seen += accounted(mine)
            series.update((k, v) for k, v in mine.items() if k.startswith(LAG + "{"))
        if workers == 1:
            return seen >= lines and drained(series, stack.partitions)
        # after a rebalance mid-stream some lines may be processed by no worker (see
        # docs/streaming.md): done once nothing lags and the count stopped moving
        settled.append(seen)
        return (drained(series, stack.partitions) and len(settled) >= 3
                and settled[-1] == settled[-3])

    # /metrics renders every series inside the worker: scrape every 2 s until 90 % of the
    # lines are in, then every 0.5 s (the figure's resolution) until the lag is gone too
    wait("the workers to process most lines", lambda: done() or seen >= 0.9 * lines,
         timeout_s, stack, every_s=2.0)
    finished = wait("the workers to process every line", done, timeout_s, stack, every_s=0.5)
    if workers > 1:  # the count was seen unchanged over the last second
        finished -= 1.0
    result = Backlog(lines, publish_s, ready - started, finished - ready, bare_s, bare_cpu_s,
                     sum(cpu_s(w.process.pid) for w in procs) - cpu_at_ready,
                     messages=settled_end_offsets(stack.bootstrap, stack.internal_topics()),
                     worker=worker, accounted=seen, startup_cpu_s=cpu_at_ready)
    if sink is not None:
        progress = SinkProgress(stack)
        caught_up: list[float] = []

        def sunk() -> bool:
            # twice in a row: the worker's last changelog writes may still be in flight
            if progress.behind() != 0:
                caught_up.clear()
                return False
            caught_up.append(time.monotonic())
            return len(caught_up) >= 2

        try:
            wait("the sink to commit everything", sunk, timeout_s, stack, every_s=0.25)
        finally:
            progress.close()
        result.sink_s = caught_up[0] - ready
        result.sink_rss_mb = rss_mb(sink.process.pid)
    result.rss_mb = rss_mb(worker.process.pid)
    result.peak_rss_mb = max(peak, rss_mb(worker.process.pid, "VmHWM"))
    for scraper in scrapers:
        scraper.close()
    if spy is not None:
        _, err = spy.communicate(timeout=profile_s + 60)
        if spy.returncode != 0:
            raise BenchError(f"py-spy failed: {err.decode(errors='replace')[-2000:]}")
        result.profile = profile
    return result


# ---------------------------------------------------------------- ready in seconds


def readiness(stack: BenchStack, worker: Proc) -> dict[str, float]:
    """Seconds from process start to /readyz 200: the worker restarted (SIGTERM, then its
    tables recovered from their changelogs), a sink started fresh, and restarted."""
    def stop(proc: Proc) -> None:
        proc.stop(signal.SIGTERM)
        stack.procs.remove(proc)  # an exit the waits below expect

    stop(worker)
    started = time.monotonic()
    restarted = stack.worker()
    worker_restart = wait_ready(restarted, stack) - started
    # its CPU time until then: what the restart costs apart from the machine's load
    worker_restart_cpu = cpu_s(restarted.process.pid)
    started = time.monotonic()
    sink = stack.sink(wait=False)
    sink_fresh = wait_ready(sink, stack) - started
    stop(sink)
    started = time.monotonic()
    sink_restart = wait_ready(stack.sink(wait=False), stack) - started
    return {"worker_restart_ready_s": worker_restart,
            "worker_restart_ready_cpu_s": worker_restart_cpu, "sink_ready_s": sink_fresh,
            "sink_restart_ready_s": sink_restart}


# ---------------------------------------------------------------- pass 3: latency


_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def probe_event(n: int, run: str, occurred: datetime, unit: str) -> tuple[bytes, bytes]:
    """(key, value) of a same-day contact request that opens one new clock."""
    case_id = f"probe-{run}-{n}"
    value = orjson.dumps({
        "event_id": f"ev-{case_id}", "type": "contact.requested", "case_id": case_id,
        "occurred_at": occurred.isoformat(timespec="seconds"), "unit_id": unit,
        # digits spelt as letters: a run id of digits would look like a personnummer
        "patient_ref": f"p-{run.translate(_LETTERS)}-{n:x}", "attributes": {"channel": "phone"},
    })
    return case_id.encode(), value


@dataclass
class Latency:
    processed_s: list[float]  # ack → visible in events_processed_total
    metric_s: list[float]  # ack → visible in the aggregate it moves (vardgaranti_waiting)
    ack_s: list[float]  # send → producer acknowledgement
    scrape_s: list[float]  # /metrics render + transfer, as the poller saw it


def latency(stack: BenchStack, worker: Proc, rate: float = 20.0, seconds: float = 15.0,
            poll_s: float = 0.01) -> Latency:
    """Probes at `rate` per second for `seconds`, each timed from its ack to /metrics."""
    from consumers.publish import open_producer
    from models.events import Rejection, parse_event
    from models.region import VARDCENTRALER
    from models.settings import Settings

    settings = Settings()
    scraper = Scraper(worker.port)
    base = scraper.scrape()
    if WATERMARK not in base:
        raise BenchError("the worker has no watermark: run the backlog pass first")
    # later than every event so far (the watermark trails the newest one by the lateness)
    occurred = datetime.fromtimestamp(
        base[WATERMARK] + settings.allowed_lateness + 1, TZ).replace(microsecond=0)
    unit, run = VARDCENTRALER[0].id, stack.app_id.removeprefix("vg-")
    producer = open_producer(settings, stack.bootstrap, compression="none", linger_ms=0)
    topic = stack.topics["events"]

    def send(n: int) -> tuple[float, float]:
        key, value = probe_event(n, run, occurred, unit)
        assert not isinstance(parse_event(value), Rejection)
        sent = time.monotonic()
        producer.send(topic, value=value, key=key,
                      timestamp_ms=int(occurred.timestamp() * 1000)).get(timeout=30)
        return sent, time.monotonic()

    try:
        # a first probe moves the watermark to the probes' time (and day) before timing
        send(-1)
        before = total(base, PROCESSED)
        wait("the warm-up probe", lambda: total(scraper.scrape(), PROCESSED) > before, 60,
             stack, every_s=0.05)
        start = scraper.scrape()
        base_p, base_w = total(start, PROCESSED), total(start, WAITING)

        seen: list[tuple[float, float, float]] = []  # (time, processed, waiting)
        scrapes: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                series = scraper.scrape()
                if series:
                    seen.append((time.monotonic(), total(series, PROCESSED),
                                 total(series, WAITING)))
                    scrapes.append(scraper.last_s)
                time.sleep(poll_s)

        poller = threading.Thread(target=poll, name="poller", daemon=True)
        poller.start()
        count = max(1, int(rate * seconds))
        sends: list[tuple[float, float]] = []
        began = time.monotonic()
        for n in range(count):
            pause = began + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sends.append(send(n))

        def all_seen() -> bool:
            return bool(seen) and seen[-1][1] >= base_p + count and seen[-1][2] >= base_w + count

        try:
            wait("every probe to show in /metrics", all_seen, 120, stack, every_s=0.05)
        finally:
            stop.set()
            poller.join(10)
    finally:
        producer.close()
        scraper.close()
    times = [t for t, _, _ in seen]

    def delays(values: list[float], base_value: float) -> list[float]:
        out = []
        for n, (_, acked) in enumerate(sends):
            # counts only grow: the first scrape that counts n + 1 probes shows probe n
            i = bisect_left(values, base_value + n + 1)
            out.append(max(0.0, times[i] - acked))
        return out

    return Latency(
        processed_s=delays([p for _, p, _ in seen], base_p),
        metric_s=delays([w for _, _, w in seen], base_w),
        ack_s=[acked - sent for sent, acked in sends],
        scrape_s=scrapes,
    )


def pct(values: Sequence[float], q: int) -> float:
    """The q-th percentile (inclusive method); 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# ---------------------------------------------------------------- the profile


# Where a sample's time goes, by the first rule that matches, in three tiers: the /metrics
# render and logging anywhere on the stack; then, within what the event loop runs, our own
# code's costs and Kafka sends anywhere (so a socket write belongs to the send that made it);
# then the innermost frame that names a library or the worker.
_WHOLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/metrics and API (web/, prometheus_client, uvicorn)", (
        "web/", "prometheus_client/", "uvicorn/", "starlette/", "fastapi/", "h11/")),
    ("logging", ("logging/",)),
)
_ANYWHERE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("case state / counter JSON", ("CaseState.from_json", "CaseState.to_json",
                                   "CounterGroup.from_json", "CounterGroup.to_json")),
    ("event parsing (models/events.py)", ("models/events.py",)),
    ("core rules (models/)", ("models/",)),
    ("Kafka producing (faust/aiokafka producer)", (
        "aiokafka/producer/", "faust/transport/producer.py", "Topic.publish_message",
        "Topic.send ", "Channel._send_now", "Producer.send ", "send_changelog", "send_soon")),
)
_INNERMOST: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Kafka client I/O and protocol (aiokafka)", ("aiokafka/", "kafka/")),
    ("Faust consuming (conductor, streams, acks)", ("faust/", "mode/")),
    ("worker logic (streams/worker.py)", ("streams/",)),
)


def _frame(text: str) -> str:
    """`func (path:line)` as `func (path)`."""
    name, _, where = text.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _matches(frames: list[str], needles: tuple[str, ...]) -> bool:
    return any(n in frame for frame in frames for n in needles)


def _category(stack: list[str]) -> str:
    for category, needles in _WHOLE:
        if _matches(stack, needles):
            return category
    loop = max((i for i, f in enumerate(stack)
                if f.startswith(("Handle._run ", "BaseEventLoop._run_once "))), default=-1)
    run = stack[loop + 1:]
    for category, needles in _ANYWHERE:
        if _matches(run, needles):
            return category
    for frame in reversed(run):
        for category, needles in _INNERMOST:
            if _matches([frame], needles):
                return category
    return "asyncio event loop" if loop >= 0 else "other"


# leaves that wait: the event loop's poll, a thread's wait, and an idle thread of the pool
# the store look-ups run in (blocked in its queue's `get`, which has no Python frame)
_IDLE = ("EpollSelector.select ", "Condition.wait ", "Event.wait ",
         "_worker (concurrent/futures/thread.py)")


@dataclass
class Profile:
    samples: int  # of the event-loop thread (the agents, the producer, the HTTP server)
    idle: int  # of those, waiting in select()
    busy: int  # busy samples of every thread (the consumer and HTTP worker threads too)
    own: Counter[str]  # busy samples per innermost function
    inclusive: Counter[str]  # busy samples with the function anywhere on the stack
    categories: Counter[str]  # busy samples per category


def read_profile(raw: Path) -> Profile:
    """A py-spy `raw` (folded) profile of the worker."""
    prof = Profile(0, 0, 0, Counter(), Counter(), Counter())
    for line in raw.read_text().splitlines():
        folded, _, n = line.rpartition(" ")
        if not folded or not n.isdigit():
            continue
        stack = [_frame(f) for f in folded.split(";")]
        count = int(n)
        idle = stack[-1].startswith(_IDLE)
        if "threading.py" not in stack[0]:
            prof.samples += count
            prof.idle += count * idle
        if idle:
            continue
        prof.busy += count
        prof.own[stack[-1]] += count
        for name in set(stack):
            prof.inclusive[name] += count
        prof.categories[_category(stack)] += count
    return prof


def profile_tables(raw: Path, top: int = 12) -> list[Table]:
    prof = read_profile(raw)
    busy = max(1, prof.busy)
    title = (f"worker profile ({raw.name}): the event loop was busy "
             f"{100 * (prof.samples - prof.idle) / max(1, prof.samples):.0f} % of the time")
    cats = Table(title=title, title_justify="left")
    cats.add_column("where the busy time goes")
    cats.add_column("% of busy", justify="right")
    for name, n in prof.categories.most_common():
        cats.add_row(name, f"{100 * n / busy:.1f}")
    funcs = Table(title="busiest functions", title_justify="left")
    for col in ("function (file)", "self %", "incl. %"):
        funcs.add_column(col, justify="left" if col.startswith("function") else "right")
    for name, n in prof.own.most_common(top):
        funcs.add_row(name, f"{100 * n / busy:.1f}", f"{100 * prof.inclusive[name] / busy:.1f}")
    return [cats, funcs]


# ---------------------------------------------------------------- the whole run


STEP_SCALE = 0.03  # ~112 k lines: ~10 s through one worker, long enough for its steady rate


def report_rate(path: Path, year: int, rounds: int = 3) -> float:
    """Events/s of `vardgaranti report` over the log (the month to date at the year's end,
    its default processes), the best of `rounds`: the rate the worker's is held to."""
    from benchmarks.throughput import year_end_report
    from consumers.report import default_jobs

    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        result = year_end_report(path, year, default_jobs([path]))
        best = max(best, result.stats.lines / (time.perf_counter() - started))
    return best


def run(scale: float = 0.03, year: int = 2024, partitions: int = 6, *, with_sink: bool = True,
        rate: float = 20.0, seconds: float = 15.0, poll_s: float = 0.01,
        profile: Path | None = None, profile_s: float = 20.0, scale_out: Sequence[int] = (2, 3),
        console: Console | None = None) -> dict[str, float]:
    """All passes; the figures as a flat dict (seconds, events/s, MB)."""
    console = console or Console()
    path = log_file(scale, year, console)
    out: dict[str, float] = {"report_events_per_s": report_rate(path, year)}
    with broker() as (bootstrap, mock), tempfile.TemporaryDirectory(prefix="vg-bench-") as tmp:

        def stack(name: str) -> BenchStack:
            workdir = Path(tmp) / name
            workdir.mkdir()
            return BenchStack(bootstrap, workdir, partitions=partitions, mock=mock)

        console.print(f"streaming: {path.name} through {'a mock broker' if mock else bootstrap}"
                      f", {partitions} partitions")
        first = stack("worker")
        try:
            console.print("  backlog through one worker …")
            b = backlog(first, path)
            out.update(lines=b.lines, publish_events_per_s=b.lines / b.publish_s,
                       worker_startup_s=b.startup_s, worker_startup_cpu_s=b.startup_cpu_s,
                       worker_s=b.worker_s,
                       worker_events_per_s=b.lines / b.worker_s, worker_rss_mb=b.rss_mb,
                       worker_share_of_report=b.lines / b.worker_s / out["report_events_per_s"],
                       bare_consumer_events_per_s=b.lines / b.bare_s,
                       worker_share_of_bare=b.bare_s / b.worker_s,
                       worker_events_per_cpu_s=b.lines / b.worker_cpu_s,
                       bare_consumer_events_per_cpu_s=b.lines / b.bare_cpu_s,
                       worker_cpu_share_of_bare=b.bare_cpu_s / b.worker_cpu_s,
                       messages_per_event=b.messages / b.lines,
                       worker_peak_rss_mb=b.peak_rss_mb)
            reference = counters_of(first)
            assert b.worker is not None
            console.print(f"  latency: {rate:g} probes/s for {seconds:g} s …")
            lat = latency(first, b.worker, rate, seconds, poll_s)
            out.update(
                probes=len(lat.metric_s),
                processed_p50_s=pct(lat.processed_s, 50), processed_p99_s=pct(lat.processed_s, 99),
                metric_p50_s=pct(lat.metric_s, 50), metric_p99_s=pct(lat.metric_s, 99),
                ack_p50_s=pct(lat.ack_s, 50), scrape_p50_s=pct(lat.scrape_s, 50),
                scrape_p99_s=pct(lat.scrape_s, 99),
            )
            console.print("  restarts until ready …")
            out.update(readiness(first, b.worker))
        finally:
            first.close()
        for n in scale_out:
            more = stack(f"workers{n}")
            try:
                console.print(f"  backlog through {n} workers …")
                m = backlog(more, path, workers=n)
                got = counters_of(more)
                same = got == reference
                if not same:
                    wrong = sorted((reference - got) + (got - reference))
                    console.print(f"  [red]{len(wrong)} counters differ[/red] from one worker's "
                                  "(a rebalance as workers join; docs/streaming.md), e.g. "
                                  f"{[(k, reference[k], got[k]) for k in wrong[:5]]}")
                out.update({f"workers{n}_events_per_s": m.lines / m.worker_s,
                            f"workers{n}_unprocessed": max(0.0, m.lines - m.accounted),
                            f"workers{n}_events_per_cpu_s": m.lines / m.worker_cpu_s,
                            f"workers{n}_same_counters": float(same)})
            finally:
                more.close()
        if with_sink:
            second = stack("sink")
            try:
                console.print("  backlog through one worker and the sink …")
                s = backlog(second, path, with_sink=True)
                assert s.sink_s is not None
                out.update(sink_s=s.sink_s, sink_events_per_s=s.lines / s.sink_s,
                           sink_worker_s=s.worker_s, sink_rss_mb=s.sink_rss_mb)
            finally:
                second.close()
        if profile is not None:
            third = stack("profile")
            try:
                console.print(f"  backlog through one worker under py-spy ({profile_s:g} s) …")
                p = backlog(third, path, profile=profile, profile_s=profile_s)
                out.update(profiled_worker_events_per_s=p.lines / p.worker_s)
            finally:
                third.close()
    console.print(table(out, path, mock))
    if profile is not None:
        for t in profile_tables(profile):
            console.print(t)
    return out


def table(r: dict[str, float], path: Path, mock: bool) -> Table:
    t = Table(title=f"streaming ({path.name}, {'mock broker' if mock else 'Kafka'}, "
                    f"{platform.machine()}, {os.cpu_count()} cores)", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("lines", f"{r['lines']:,.0f}"),
        ("publish (replay --to-kafka), events/s", f"{r['publish_events_per_s']:,.0f}"),
        ("worker start until ready (fresh, the backlog waiting), s",
         f"{r['worker_startup_s']:.1f}"),
        ("worker restart until ready (tables recovered) / sink start / sink restart, s",
         f"{r['worker_restart_ready_s']:.1f} / {r['sink_ready_s']:.1f} / "
         f"{r['sink_restart_ready_s']:.1f}"),
        ("worker fresh start / restart until ready, its CPU seconds",
         f"{r['worker_startup_cpu_s']:.1f} / {r['worker_restart_ready_cpu_s']:.1f}"),
        ("one worker, events/s", f"{r['worker_events_per_s']:,.0f}"),
        ("`report` on the same log (embedded), events/s; one worker as a share of it",
         f"{r['report_events_per_s']:,.0f}; {r['worker_share_of_report']:.0%}"),
        ("bare aiokafka consumer, same topic (ceiling), events/s",
         f"{r['bare_consumer_events_per_s']:,.0f}"),
        ("one worker, share of the ceiling", f"{r['worker_share_of_bare']:.1%}"),
        ("one worker, events per CPU second (its own core)",
         f"{r['worker_events_per_cpu_s']:,.0f}"),
        ("bare consumer, events per CPU second",
         f"{r['bare_consumer_events_per_cpu_s']:,.0f}"),
        ("one worker, share of the ceiling in CPU", f"{r['worker_cpu_share_of_bare']:.1%}"),
        ("Kafka messages written per event (deltas + changelogs)",
         f"{r['messages_per_event']:.2f}"),
        ("worker RSS after the backlog, MB", f"{r['worker_rss_mb']:,.0f}"),
    ]
    for n in (2, 3):
        if f"workers{n}_events_per_s" in r:
            rows.append((f"{n} workers, events/s (per CPU second); counters as one worker's",
                         f"{r[f'workers{n}_events_per_s']:,.0f} "
                         f"({r[f'workers{n}_events_per_cpu_s']:,.0f}); "
                         f"{'same' if r[f'workers{n}_same_counters'] else 'DIFFERENT'}; "
                         f"{r[f'workers{n}_unprocessed']:,.0f} lines processed by none"))
    if "sink_events_per_s" in r:
        rows += [("worker → sink → store, events/s", f"{r['sink_events_per_s']:,.0f}"),
                 ("sink RSS, MB", f"{r['sink_rss_mb']:,.0f}")]
    rows += [
        (f"event → processed p50 / p99, s ({r['probes']:.0f} probes)",
         f"{r['processed_p50_s']:.2f} / {r['processed_p99_s']:.2f}"),
        ("event → metric (aggregate) p50 / p99, s",
         f"{r['metric_p50_s']:.2f} / {r['metric_p99_s']:.2f}"),
        ("producer ack p50, ms", f"{r['ack_p50_s'] * 1000:.1f}"),
        ("/metrics scrape p50 / p99, ms",
         f"{r['scrape_p50_s'] * 1000:.0f} / {r['scrape_p99_s'] * 1000:.0f}"),
    ]
    if "profiled_worker_events_per_s" in r:
        rows.append(("one worker under py-spy, events/s",
                     f"{r['profiled_worker_events_per_s']:,.0f}"))
    for row in rows:
        t.add_row(*row)
    return t


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the worker, sink and broker started are stopped too."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.streaming",
        description="Streaming throughput and event-to-metric latency through one worker.")
    parser.add_argument("--scale", type=float, default=0.03,
                        help="generated log size (1 = the region's year; default 0.03)")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--no-sink", action="store_true", help="skip the worker → sink pass")
    parser.add_argument("--workers", type=int, nargs="*", default=[2, 3], metavar="N",
                        help="scale-out passes: N workers on the same log (default 2 3)")
    parser.add_argument("--rate", type=float, default=20.0, help="latency probes per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="latency probing time")
    parser.add_argument("--poll-ms", type=float, default=10.0,
                        help="pause between /metrics scrapes while probing")
    parser.add_argument("--profile", type=Path, metavar="RAW",
                        help="also profile a worker pass with py-spy into this raw file")
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    for name in ("scale", "rate", "seconds", "profile_seconds"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')}: must be above 0")
    if args.partitions < 1:
        parser.error("--partitions: must be at least 1")
    if not 1971 <= args.year <= 2199:
        parser.error("--year: must be between 1971 and 2199")
    if args.profile is not None and not PY_SPY.exists():
        parser.error("--profile: py-spy is not installed in this environment")
    try:
        figures = run(args.scale, args.year, args.partitions, with_sink=not args.no_sink,
                      rate=args.rate, seconds=args.seconds, poll_s=args.poll_ms / 1000,
                      profile=args.profile, profile_s=args.profile_seconds,
                      scale_out=args.workers)
    except BenchError as exc:
        print(f"streaming benchmark failed: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def step(ctx: Context) -> StepResult:
    """`make bench`'s streaming step (`make bench-streaming`): a small backlog through one,
    two and three workers, restarts until ready, and the probe latency; no sink pass."""
    figures = run(scale=STEP_SCALE, year=ctx.year, with_sink=False, seconds=10.0)
    p99 = figures["metric_p99_s"]
    rate = figures["worker_events_per_s"]
    ready = max(figures["worker_startup_s"], figures["worker_restart_ready_s"],
                figures["sink_ready_s"], figures["sink_restart_ready_s"])
    return StepResult([
        Figure("one worker, backlog", rate, "events/s", "≥ 10 000", rate >= 10_000),
        Figure("one worker, per CPU second", figures["worker_events_per_cpu_s"], "events/s",
               "≥ 10 000", figures["worker_events_per_cpu_s"] >= 10_000),
        Figure("one worker / report on the same log", figures["worker_share_of_report"], "×",
               "≥ 0.2", figures["worker_share_of_report"] >= 0.2),
        *(Figure(f"{n} workers, backlog", figures[f"workers{n}_events_per_s"], "events/s",
                 "counters as one worker's", bool(figures[f"workers{n}_same_counters"]))
          for n in (2, 3)),
        Figure("event -> metric p99", p99, "s", "< 1 s", p99 < 1.0),
        Figure("slowest start until ready", ready, "s", "< 5 s", ready < 5.0),
        Figure("publish (replay --to-kafka)", figures["publish_events_per_s"], "events/s"),
        Figure("bare aiokafka consumer (ceiling)", figures["bare_consumer_events_per_s"],
               "events/s"),
        Figure("one worker, share of the ceiling", figures["worker_share_of_bare"] * 100, "%"),
        Figure("messages per event", figures["messages_per_event"], "records"),
    ], data=figures)
