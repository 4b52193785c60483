"""`vardgaranti replay FILE… --to-kafka`: every line once, keyed by case, stamped with event time.

The unit tests drive `publish` with a fake producer and a fake clock (the rate limit is
checked on the limiter's schedule, never on wall time); the integration tests publish to the
test broker and consume the records back with kafka-python.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError

from consumers.logs import read_lines as logs_read_lines
from consumers.publish import (
    PublishStats,
    TokenBucket,
    open_producer,
    publish,
    record_meta,
)
from models.settings import Settings
from tests.support.kafka import KafkaBroker, create_topics
from vardgaranti.cli import main
from vardgaranti.generate import generate

REPO = Path(__file__).resolve().parents[2]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MALFORMED = [
    b"not json at all",
    b"[1, 2, 3]",
    b'{"case_id": 17, "occurred_at": "2024-03-04T09:00:00+01:00"}',
    b'{"case_id": "c-bad-time", "occurred_at": "yesterday", "type": "contact.requested"}',
    b'{"case_id": "c-naive", "occurred_at": "2024-03-04T09:00:00"}',
    b"\xff\xfe broken bytes",
]


# ---------------------------------------------------------------- test doubles


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def add_errback(self, errback: Any) -> FakeFuture:
        if self.error is not None:
            errback(self.error)
        return self


class FakeProducer:
    """Records sends (with the fake clock's time); can fail or raise at a given send."""

    def __init__(self, clock: FakeClock | None = None, fail_at: int | None = None,
                 raise_at: int | None = None, interrupt_at: int | None = None) -> None:
        self.clock = clock
        self.fail_at, self.raise_at, self.interrupt_at = fail_at, raise_at, interrupt_at
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None, float]] = []
        self.flushes = 0

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             timestamp_ms: int | None = None) -> FakeFuture:
        n = len(self.sent) + 1
        if n == self.raise_at:
            raise KafkaTimeoutError("buffer full")
        self.sent.append((topic, value, key, timestamp_ms, self.clock() if self.clock else 0.0))
        if n == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C was pressed right now
        return FakeFuture(RuntimeError("broker said no") if n == self.fail_at else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1


def write_log(path: Path, count: int) -> list[bytes]:
    lines = [json.dumps({"event_id": f"e{i}", "case_id": f"c{i % 7}", "type": "visit.completed",
                         "occurred_at": f"2024-03-04T09:{i % 60:02d}:00+01:00",
                         "unit_id": "u1"}).encode() for i in range(count)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


# ---------------------------------------------------------------- keys and timestamps


def test_record_meta_reads_case_id_and_event_time() -> None:
    line = (b'{"event_id":"e1","type":"visit.completed","case_id":"c-42",'
            b'"occurred_at":"2024-03-04T09:00:00+01:00","unit_id":"u1"}')
    assert record_meta(line) == (b"c-42", 1_709_539_200_000)
    assert record_meta(b'{"case_id":"c\xc3\xa5","occurred_at":"2024-03-04T08:00:00.123Z"}') == (
        "cå".encode(), 1_709_539_200_123)


@pytest.mark.parametrize(("line", "expected"), [
    (b"not json", (None, None)),
    (b"[1, 2]", (None, None)),
    (b'"c-1"', (None, None)),
    (b"\xff\xfe", (None, None)),
    (b'{"case_id": 17, "occurred_at": "2024-03-04T09:00:00+01:00"}', (None, 1_709_539_200_000)),
    (b'{"case_id": "", "occurred_at": 5}', (None, None)),
    (b'{"case_id": "c-1", "occurred_at": "yesterday"}', (b"c-1", None)),
    (b'{"case_id": "c-1", "occurred_at": "2024-03-04T09:00:00"}', (b"c-1", None)),  # naive
    (b'{"case_id": "c-1", "occurred_at": "1969-12-31T23:59:59+00:00"}', (b"c-1", None)),
    (b'{"case_id": "c-1"}', (b"c-1", None)),
])
def test_record_meta_is_lenient(line: bytes, expected: tuple[bytes | None, int | None]) -> None:
    assert record_meta(line) == expected


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1 << 20])
def test_whole_block_reads_give_the_same_lines_as_the_log_reader(tmp_path: Path,
                                                               chunk_size: int) -> None:
    raw = b'{"a":1}\r\n\n   \n{"b":2}\n\n{"c":3}\r\r\n{"last": "no newline"}'
    for path in (tmp_path / "log.jsonl", tmp_path / "log.jsonl.gz"):
        path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
        expected = list(logs_read_lines(path))
        assert list(logs_read_lines(path, chunk_size, fill=True)) == expected
        assert [n for n, _ in expected] == [1, 4, 6, 7]


# ---------------------------------------------------------------- rate limit


def test_token_bucket_schedule_with_an_injected_clock() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, burst=10, clock=clock, sleep=clock.sleep)
    start = clock.now
    for taken in range(1, 1011):
        bucket.take()
        # never more than the burst plus the rate times the (fake) time elapsed
        assert taken <= 10 + 100 * (clock.now - start) + 1e-6
    assert clock.now - start == pytest.approx(10.0)  # (1010 - 10 burst) / 100 per second
    assert bucket.slept == pytest.approx(sum(clock.sleeps))
    assert len(clock.sleeps) == 1000


def test_token_bucket_carries_short_waits_as_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100_000, burst=1, clock=clock, sleep=clock.sleep, min_sleep=0.002)
    for _ in range(100_001):
        bucket.take()
    assert clock.now - 100.0 == pytest.approx(1.0, abs=0.0021)
    assert all(s >= 0.002 for s in clock.sleeps)
    assert len(clock.sleeps) < 600  # batched, not one sleep per event


def test_token_bucket_refills_while_idle_but_only_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        bucket.take()
    assert clock.sleeps == []
    clock.now += 3600  # a long pause does not allow a long burst afterwards
    for _ in range(6):
        bucket.take()
    assert clock.sleeps == [pytest.approx(0.1)]


@pytest.mark.parametrize("rate", [0, -1, float("nan")])
def test_token_bucket_rejects_a_rate_that_is_not_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be above 0"):
        TokenBucket(rate)


def test_publish_rate_limit_and_progress_counts(tmp_path: Path) -> None:
    lines = write_log(tmp_path / "log.jsonl", 300)
    clock = FakeClock()
    producer = FakeProducer(clock)
    ticks: list[int] = []
    stats = publish([tmp_path / "log.jsonl"], producer, "events",
                    limiter=TokenBucket(50, burst=5, clock=clock, sleep=clock.sleep),
                    progress=ticks.append, progress_every=25)
    assert [value for _, value, _, _, _ in producer.sent] == lines
    start = producer.sent[0][4]
    for sent, (*_, at) in enumerate(producer.sent, 1):
        assert sent <= 5 + 50 * (at - start) + 1e-6, f"line {sent} sent too early"
    assert clock.now - start == pytest.approx((300 - 5) / 50)
    assert ticks == [*range(25, 301, 25), 300]
    assert (stats.lines, stats.delivered, stats.failed, stats.ok) == (300, 300, 0, True)
    assert producer.flushes == 1


# ---------------------------------------------------------------- failures and Ctrl-C


def test_delivery_failure_stops_publishing_and_is_counted(tmp_path: Path) -> None:
    write_log(tmp_path / "log.jsonl", 20)
    producer = FakeProducer(fail_at=5)
    stats = publish([tmp_path / "log.jsonl"], producer, "events")
    assert len(producer.sent) == 5  # the failure is seen before the sixth line goes out
    assert (stats.lines, stats.failed, stats.delivered, stats.ok) == (5, 1, 4, False)
    assert stats.first_error == "RuntimeError: broker said no"
    assert stats.position == f"{tmp_path / 'log.jsonl'}:5"
    assert producer.flushes == 1


def test_send_that_raises_is_not_counted_as_sent(tmp_path: Path) -> None:
    write_log(tmp_path / "log.jsonl", 20)
    producer = FakeProducer(raise_at=8)
    stats = publish([tmp_path / "log.jsonl"], producer, "events")
    assert (stats.lines, stats.failed, stats.ok) == (7, 0, False)
    assert stats.first_error is not None and stats.first_error.startswith("KafkaTimeoutError")
    assert producer.flushes == 1


def test_ctrl_c_stops_between_lines_flushes_and_restores_the_handler(tmp_path: Path) -> None:
    write_log(tmp_path / "a.jsonl", 10)
    write_log(tmp_path / "b.jsonl", 10)
    producer = FakeProducer(interrupt_at=13)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    stats = publish([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], producer, "events")
    assert len(producer.sent) == 13
    assert (stats.lines, stats.interrupted, stats.unconfirmed, stats.ok) == (13, True, False, True)
    assert stats.position == f"{tmp_path / 'b.jsonl'}:3"
    assert producer.flushes == 1
    assert signal.getsignal(signal.SIGINT) is before


def test_stats_count_lines_without_key_or_time(tmp_path: Path) -> None:
    lines = write_log(tmp_path / "log.jsonl", 3)
    with (tmp_path / "log.jsonl").open("ab") as fh:
        fh.write(b"\n".join(MALFORMED) + b"\n")
    producer = FakeProducer()
    stats = publish([tmp_path / "log.jsonl"], producer, "events")
    assert [value for _, value, _, _, _ in producer.sent] == lines + MALFORMED
    assert (stats.unkeyed, stats.untimed) == (4, 5)


# ---------------------------------------------------------------- on the test broker


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def consume_all(bootstrap: str, topic: str, expected: int, settle_polls: int = 2) -> list[Any]:
    """Every record of `topic`: polls until `expected` arrived, then a little more for extras."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    records: list[Any] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        deadline = time.monotonic() + 60  # guards the test run only
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        for _ in range(settle_polls):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def expected_meta(line: bytes) -> tuple[bytes | None, int | None]:
    """Key and timestamp worked out independently of consumers.publish."""
    try:
        event = json.loads(line)
    except ValueError:
        return None, None
    if not isinstance(event, dict):
        return None, None
    case_id = event.get("case_id")
    key = case_id.encode() if isinstance(case_id, str) and case_id else None
    try:
        when = datetime.fromisoformat(event["occurred_at"])
    except (KeyError, TypeError, ValueError):
        return key, None
    if when.tzinfo is None:
        return key, None
    return key, (when - EPOCH) // timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[bytes]]:
    """A small generated year (gzip, with malformed lines) plus a plain file of bad lines."""
    folder = tmp_path_factory.mktemp("publish")
    log, extra = folder / "year.jsonl.gz", folder / "extra.jsonl"
    generate(log, 2024, scale=0.001, bad_rate=0.02, progress=False)
    extra.write_bytes(b"\n".join(MALFORMED) + b"\n\n")
    lines = [line for path in (log, extra) for _, line in logs_read_lines(path)]
    return [log, extra], lines


@pytest.mark.integration
def test_replay_to_kafka_sends_every_line_once_with_key_and_event_time(
    kafka_bootstrap: str, generated_log: tuple[list[Path], list[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    files, lines = generated_log
    topic = unique("events")
    create_topics(kafka_bootstrap, {topic: 3})
    code = main(["replay", *map(str, files), "--to-kafka", kafka_bootstrap, "--topic", topic])
    err = capsys.readouterr().err
    assert code == 0, err
    unkeyed = sum(expected_meta(line)[0] is None for line in lines)
    assert re.fullmatch(
        rf"{len(lines)} lines published to {topic} in [\d.]+ s \([\d,]+/s\); "
        rf"{unkeyed} without a key \(no case_id\), \d+ stamped with the wall clock "
        r"\(no usable occurred_at\)\n", err), err

    records = consume_all(kafka_bootstrap, topic, len(lines))
    assert Counter(r.value for r in records) == Counter(lines), "lost or repeated lines"
    timed = 0
    for record in records:
        key, timestamp = expected_meta(record.value)
        assert record.key == key
        if timestamp is not None:
            assert record.timestamp == timestamp
            timed += 1
    assert timed > 0.9 * len(lines)
    for bad in MALFORMED[:2]:
        (record,) = [r for r in records if r.value == bad]
        assert record.key is None
    assert {r.partition for r in records} == {0, 1, 2}


@pytest.mark.integration
def test_rate_limit_on_the_broker_follows_the_schedule(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("rated")
    create_topics(kafka_bootstrap, {topic: 1})
    lines = write_log(tmp_path / "log.jsonl", 400)
    clock = FakeClock()
    limiter = TokenBucket(100, burst=10, clock=clock, sleep=clock.sleep)
    producer = open_producer(Settings(), kafka_bootstrap, compression="none")
    try:
        stats = publish([tmp_path / "log.jsonl"], producer, topic, limiter=limiter)
    finally:
        producer.close()
    assert (stats.lines, stats.ok) == (400, True)
    assert limiter.slept == pytest.approx((400 - 10) / 100)
    assert [r.value for r in consume_all(kafka_bootstrap, topic, 400)] == lines


@pytest.mark.integration
def test_missing_topic_and_unreachable_broker_are_one_line_exit_2(
    kafka_bootstrap: str, generated_log: tuple[list[Path], list[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    files, _ = generated_log
    topic = unique("missing")
    code = main(["replay", str(files[1]), "--to-kafka", kafka_bootstrap, "--topic", topic])
    assert code == 2
    assert capsys.readouterr().err == (
        f"vardgaranti: error: topic {topic} does not exist: run `vardgaranti topics create "
        f"--bootstrap {kafka_bootstrap}` first\n")

    bootstrap = f"127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "vardgaranti", "replay", str(files[1]), "--to-kafka", bootstrap,
         "--timeout", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=60)  # guards the test run only
    assert done.returncode == 2
    assert done.stderr == (f"vardgaranti: error: cannot reach Kafka at {bootstrap} within 2 s "
                           "(KafkaTimeoutError)\n")


@pytest.mark.integration
def test_ctrl_c_flushes_what_was_sent_and_says_how_far(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("interrupted")
    create_topics(kafka_bootstrap, {topic: 2})
    log = tmp_path / "log.jsonl"
    lines = write_log(log, 5000)
    replay = subprocess.Popen(
        [sys.executable, "-m", "vardgaranti", "replay", str(log), "--to-kafka", kafka_bootstrap,
         "--topic", topic, "--rate", "200"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap,
                                 auto_offset_reset="earliest", enable_auto_commit=False)
        try:
            consumer.assign([TopicPartition(topic, p) for p in (0, 1)])
            deadline = time.monotonic() + 60  # guards the test run only
            while not consumer.poll(timeout_ms=200) and time.monotonic() < deadline:
                assert replay.poll() is None, replay.communicate()
        finally:
            consumer.close()
        replay.send_signal(signal.SIGINT)
        _, err = replay.communicate(timeout=60)
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait()
    assert replay.returncode == 130, err
    match = re.fullmatch(
        rf"vardgaranti: interrupted at {re.escape(str(log))}:(\d+): (\d+) lines published; "
        r"publishing again is safe \(the worker ignores repeated event ids\)\n", err)
    assert match, err
    position, published = int(match[1]), int(match[2])
    assert 0 < published == position < len(lines), "should stop mid-file"
    records = consume_all(kafka_bootstrap, topic, published)
    assert sorted(r.value for r in records) == sorted(lines[:published])


@pytest.mark.integration
def test_delivery_failure_on_the_broker_is_reported(
    private_mock_broker: KafkaBroker, tmp_path: Path
) -> None:
    bootstrap = private_mock_broker.bootstrap
    create_topics(bootstrap, {"events": 1})
    write_log(tmp_path / "first.jsonl", 1)
    write_log(tmp_path / "second.jsonl", 5)
    producer = open_producer(Settings(), bootstrap, delivery_timeout_ms=3000,
                             request_timeout_ms=1000, reconnect_backoff_max_ms=200)
    try:
        first = publish([tmp_path / "first.jsonl"], producer, "events")
        assert (first.lines, first.ok) == (1, True)
        private_mock_broker.down()
        second = publish([tmp_path / "second.jsonl"], producer, "events")
    finally:
        private_mock_broker.up()
        producer.close(timeout=5)
    assert not second.ok
    assert second.lines >= 1
    assert second.failed == second.lines, "no line may count as delivered"
    assert second.first_error is not None


def test_publish_stats_position_before_any_line() -> None:
    assert PublishStats().position == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "10"], "vardgaranti: error: --rate needs --to-kafka\n"),
    (["--topic", "t"], "vardgaranti: error: --topic needs --to-kafka\n"),
    (["--to-kafka", "127.0.0.1:9", "--db", "sqlite://"],
     "vardgaranti: error: --db has no effect with --to-kafka (the sink writes the store)\n"),
])
def test_replay_option_mistakes_exit_2(args: list[str], message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    write_log(tmp_path / "log.jsonl", 1)
    assert main(["replay", str(tmp_path / "log.jsonl"), *args]) == 2
    assert capsys.readouterr().err == message


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "-5"], "argument --rate: '-5' is not a rate (events/s, 0 = no limit)"),
    (["--rate", "inf"], "argument --rate: 'inf' is not a rate"),
    (["--to-kafka", "localhost"], "argument --to-kafka: Kafka bootstrap 'localhost': expected"),
])
def test_replay_bad_option_values_exit_2(args: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    write_log(tmp_path / "log.jsonl", 1)
    with pytest.raises(SystemExit) as info:
        main(["replay", str(tmp_path / "log.jsonl"), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_compression_codec_is_a_clear_error() -> None:
    from kafka import codec

    from consumers.publish import PublishError

    if codec.has_zstd():
        pytest.skip("zstd is installed")
    with pytest.raises(PublishError, match="--compression zstd: its Python codec is not installed"):
        open_producer(Settings(), "127.0.0.1:9", compression="zstd")


@pytest.mark.integration
def test_producer_is_idempotent_acks_all_and_never_creates_topics(kafka_bootstrap: str) -> None:
    producer = open_producer(Settings(), kafka_bootstrap)
    try:
        config = producer.config
        assert config["acks"] in ("all", -1)
        assert config["enable_idempotence"] is True
        assert config["allow_auto_create_topics"] is False
        assert config["compression_type"] == "gzip"
        topic = unique("idempotent")
        create_topics(kafka_bootstrap, {topic: 1})
        metadata = producer.send(topic, value=b"x", key=b"k").get(timeout=30)
        assert metadata.offset == 0
    finally:
        producer.close()
