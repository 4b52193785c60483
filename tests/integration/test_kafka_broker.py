"""The Kafka-protocol test broker works with every client library the project uses.

Runs against the mock broker by default, or a real Kafka when VARDGARANTI_TEST_KAFKA_BOOTSTRAP
is set. Topic and group names are unique per run so the tests can be repeated on a real Kafka.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from tests.support.kafka import (
    KafkaBroker,
    consumer_timeouts,
    create_topics,
    faust_settings,
)

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_kafka_python_roundtrip_keeps_order_keys_and_timestamps(kafka_bootstrap: str) -> None:
    topic = unique("kp-roundtrip")
    create_topics(kafka_bootstrap, {topic: 3})
    base_ts = 1_700_000_000_000
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    try:
        for i in range(1000):
            producer.send(topic, key=f"key-{i % 17}".encode(), value=str(i).encode(),
                          timestamp_ms=base_ts + i)
        producer.flush(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    received: dict[int, list[tuple[bytes, int, int]]] = defaultdict(list)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        deadline = time.monotonic() + 30
        while sum(map(len, received.values())) < 1000 and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    received[tp.partition].append(
                        (record.key, int(record.value), record.timestamp))
    finally:
        consumer.close()

    assert sum(map(len, received.values())) == 1000
    assert len(received) == 3, "a keyed topic with 3 partitions should use all of them"
    partition_of_key: dict[bytes, int] = {}
    for partition, records in received.items():
        sequence = [i for _, i, _ in records]
        assert sequence == sorted(sequence), f"partition {partition} out of order"
        for key, i, timestamp in records:
            assert key == f"key-{i % 17}".encode()
            assert timestamp == base_ts + i
            assert partition_of_key.setdefault(key, partition) == partition


def test_kafka_python_admin_creates_topic_once(kafka_bootstrap: str) -> None:
    topic = unique("kp-admin")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=15000)
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}},
                            wait_for_metadata=True)
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
        (description,) = admin.describe_topics([topic])
        assert description["error_code"] == 0
        assert len(description["partitions"]) == 3
        admin.delete_topics([topic])
    finally:
        admin.close()


def test_aiokafka_group_commit_and_resume(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic, group = unique("aio-group"), unique("aio-group")
    create_topics(kafka_bootstrap, {topic: 2})

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                **consumer_timeouts())

    async def scenario() -> tuple[list[int], list[int]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(50):
                await producer.send(topic, key=str(i % 5).encode(), value=str(i).encode())
            await producer.flush()
        finally:
            await producer.stop()

        first, second = consumer(), consumer()
        await first.start()
        seen_first: list[int] = []
        try:
            while len(seen_first) < 20:
                batch = await first.getmany(timeout_ms=1000, max_records=20 - len(seen_first))
                seen_first += [int(r.value) for recs in batch.values() for r in recs]
            await first.commit()
        finally:
            await first.stop()

        await second.start()
        seen_second: list[int] = []
        try:
            deadline = time.monotonic() + 30
            while len(seen_first) + len(seen_second) < 50 and time.monotonic() < deadline:
                batch = await second.getmany(timeout_ms=1000)
                seen_second += [int(r.value) for recs in batch.values() for r in recs]
        finally:
            await second.stop()
        return seen_first, seen_second

    seen_first, seen_second = asyncio.run(asyncio.wait_for(scenario(), timeout=45))
    assert len(seen_first) == 20
    assert sorted(seen_first + seen_second) == list(range(50)), "resume skipped or replayed"


def test_mock_broker_down_and_up(private_mock_broker: KafkaBroker) -> None:
    bootstrap = private_mock_broker.bootstrap
    create_topics(bootstrap, {"faults": 1})
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=100,
                             retry_backoff_ms=100, reconnect_backoff_max_ms=500)
    try:
        producer.send("faults", b"before").get(timeout=10)
        private_mock_broker.down()
        during = producer.send("faults", b"during")
        time.sleep(1)
        assert not during.is_done, "nothing can be delivered while the broker is down"
        private_mock_broker.up()
        assert during.get(timeout=20).offset == 1
    finally:
        producer.close(timeout=5)


FAUST_APP = textwrap.dedent(
    """
    import json
    import os
    from pathlib import Path

    import faust

    config = json.loads(os.environ["FAUST_TEST_CONFIG"])
    app = faust.App(
        config["app_id"],
        broker=config["broker"],
        store="memory://",
        topic_partitions=1,
        web_enabled=False,
        datadir=config["datadir"],
        **config["settings"],
    )
    source = app.topic(config["topic"], key_serializer="raw", value_serializer="raw")
    counts = app.Table("counts", default=int, partitions=1)


    def write(name):
        path = Path(config["outdir"]) / name
        path.with_suffix(".tmp").write_text(json.dumps(dict(counts.items())))
        path.with_suffix(".tmp").replace(path)


    @app.task
    async def report_ready():
        # Set once the table is recovered and the source partitions are seeked to the
        # committed offsets.
        await app.tables.recovery.completed.wait()
        write("ready.json")


    @app.agent(source)
    async def count(stream):
        async for key, _value in stream.items():
            counts[key.decode()] += 1
            write("counts.json")


    if __name__ == "__main__":
        app.main()
    """
)


def test_faust_table_is_rebuilt_from_changelog(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A counting agent with a changelogged table; a restarted worker recovers the counts.

    Input is produced only once the worker reports that recovery is complete: faust 0.15.3
    resumes the source partitions *before* seeking them to the committed offsets, so input that
    is already waiting at start-up can be processed twice (or skipped) on any broker.
    """
    topic, app_id = unique("faust-in"), unique("faust-app")
    create_topics(kafka_bootstrap, {topic: 1})
    script, log = tmp_path / "app.py", tmp_path / "worker.log"
    script.write_text(FAUST_APP)
    config = {
        "app_id": app_id,
        "broker": ";".join(f"kafka://{host}" for host in kafka_bootstrap.split(",")),
        "topic": topic,
        "datadir": str(tmp_path / "data"),
        "outdir": str(tmp_path),
        "settings": faust_settings(),
    }
    env = {**os.environ, "FAUST_TEST_CONFIG": json.dumps(config)}

    def produce(start: int, stop: int) -> None:
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            for i in range(start, stop):
                producer.send(topic, key=f"k{i % 5}".encode(), value=str(i).encode())
            producer.flush(timeout=30)
        finally:
            producer.close()

    def wait_for(worker: subprocess.Popen[bytes], name: str, expected: dict[str, int]) -> None:
        path, seen = tmp_path / name, None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and worker.poll() is None:
            if path.exists() and (seen := json.loads(path.read_text())) == expected:
                return
            time.sleep(0.1)
        pytest.fail(f"{name}: expected {expected}, saw {seen}; worker log:\n"
                    f"{log.read_text(errors='replace')[-4000:]}")

    def run_worker(recovered: dict[str, int], produce_range: tuple[int, int],
                   expected: dict[str, int]) -> None:
        for name in ("ready.json", "counts.json"):
            (tmp_path / name).unlink(missing_ok=True)
        with log.open("ab") as log_file:
            worker = subprocess.Popen(
                [sys.executable, str(script), "worker", "--loglevel", "warn"],
                cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for(worker, "ready.json", recovered)
            produce(*produce_range)
            wait_for(worker, "counts.json", expected)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
                pytest.fail(f"faust worker ignored SIGTERM; log:\n{log.read_text()[-4000:]}")

    run_worker({}, (0, 100), {f"k{k}": 20 for k in range(5)})
    # The restarted worker starts with an empty in-memory table: it must rebuild the counts from
    # the changelog, then resume the source at the committed offset (no reprocessing).
    run_worker({f"k{k}": 20 for k in range(5)}, (100, 110), {f"k{k}": 22 for k in range(5)})



def test_two_consumers_in_one_group_share_the_partitions(
        private_mock_broker: KafkaBroker) -> None:
    """Two members of one group split the partitions and each consumes its own.

    The mock refuses a follower's SyncGroup that arrives after the leader's (the translator
    answers it instead, see ``SyncGroupFix`` in the mock broker); before that the group never
    became stable with two aiokafka (or Faust) members.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap = private_mock_broker.bootstrap
    topic, group, total = "shared", "sharing-group", 200
    create_topics(bootstrap, {topic: 4})

    async def scenario() -> tuple[list[set[int]], list[list[int]]]:
        consumers = [AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      **consumer_timeouts()) for _ in range(2)]
        try:
            await asyncio.gather(*(c.start() for c in consumers))  # each waits for a sync

            def owned() -> list[set[int]]:
                return [{tp.partition for tp in c.assignment()} for c in consumers]

            while not (all(owned()) and not owned()[0] & owned()[1]
                       and owned()[0] | owned()[1] == {0, 1, 2, 3}):
                await asyncio.sleep(0.1)  # the first member gives up half of its partitions

            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
            await producer.start()
            try:
                for i in range(total):
                    await producer.send(topic, value=str(i).encode(), partition=i % 4)
                await producer.flush()
            finally:
                await producer.stop()

            seen: list[list[int]] = [[], []]
            while len(seen[0]) + len(seen[1]) < total:
                for member, consumer in enumerate(consumers):
                    batch = await consumer.getmany(timeout_ms=200)
                    seen[member] += [int(r.value) for recs in batch.values() for r in recs]
            return owned(), seen
        finally:
            await asyncio.gather(*(c.stop() for c in consumers))

    owned, seen = asyncio.run(asyncio.wait_for(scenario(), timeout=45))
    assert sorted(seen[0] + seen[1]) == list(range(total))
    for member in (0, 1):
        assert seen[member], f"member {member} consumed nothing"
        assert {i % 4 for i in seen[member]} == owned[member], "consumed outside its partitions"
