"""`vardgaranti topics create` on the test broker: idempotent, as configured, bounded failures.

Topic names are unique per test so the tests can be repeated on a real Kafka.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from consumers.topics import topic_partitions
from models.settings import Settings
from tests.support.kafka import create_topics
from vardgaranti.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fresh names for the events, DLQ and breaches topics, set in the environment."""
    topics = [unique("events"), unique("dlq"), unique("breaches")]
    for variable, name in zip(("EVENTS_TOPIC", "DLQ_TOPIC", "BREACHES_TOPIC"), topics,
                              strict=True):
        monkeypatch.setenv(f"VARDGARANTI_{variable}", name)
    for variable in ("PARTITIONS", "REPLICATION_FACTOR", "KAFKA_SECURITY_PROTOCOL"):
        monkeypatch.delenv(f"VARDGARANTI_{variable}", raising=False)
    return topics


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def partitions_seen_by_a_consumer(bootstrap: str, topic: str) -> set[int] | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return consumer.partitions_for_topic(topic)  # type: ignore[no-any-return]
    finally:
        consumer.close()


def test_create_twice_reports_created_then_exists(
    kafka_bootstrap: str, names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topics", "create", "--bootstrap", kafka_bootstrap, "--partitions", "3"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert first == [f"{name}: created (3 partitions, replication factor 1)" for name in names]

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(names)}
    finally:
        admin.close()
    for name in names:
        assert described[name]["error_code"] == 0
        assert len(described[name]["partitions"]) == 3
        assert all(p["leader_id"] >= 0 for p in described[name]["partitions"])
        assert partitions_seen_by_a_consumer(kafka_bootstrap, name) == {0, 1, 2}

    # again, asking for another partition count: nothing changes, each mismatch is a warning
    assert main(["topics", "create", "--bootstrap", kafka_bootstrap, "--partitions", "5"]) == 0
    second = capsys.readouterr().out.splitlines()
    assert second == [
        f"{name}: exists (3 partitions, replication factor 1); warning: has 3 partitions "
        "(5 requested) (existing topics are left as they are)" for name in names]
    for name in names:
        assert partitions_seen_by_a_consumer(kafka_bootstrap, name) == {0, 1, 2}


def test_settings_give_the_defaults_and_only_missing_topics_are_created(
    kafka_bootstrap: str, names: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events, dlq, breaches = names
    create_topics(kafka_bootstrap, {dlq: 2})
    monkeypatch.setenv("VARDGARANTI_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("VARDGARANTI_PARTITIONS", "4")
    assert main(["topics", "create"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{events}: created (4 partitions, replication factor 1)",
        f"{dlq}: exists (2 partitions, replication factor 1); warning: has 2 partitions "
        "(4 requested) (existing topics are left as they are)",
        f"{breaches}: created (4 partitions, replication factor 1)",
    ]
    assert topic_partitions(Settings()) == {events: 4, dlq: 2, breaches: 4}


def test_topic_partitions_reports_missing_topics_as_none(kafka_bootstrap: str) -> None:
    present, missing = unique("present"), unique("missing")
    create_topics(kafka_bootstrap, {present: 3})
    assert topic_partitions(Settings(), [present, missing], kafka_bootstrap) == {
        present: 3, missing: None}


def test_refused_topic_is_one_line_exit_2(
    kafka_bootstrap: str, names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["topics", "create", "--bootstrap", kafka_bootstrap,
                 "--replication-factor", "1000"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"vardgaranti: error: cannot create topic {names[0]}: ")


def test_unreachable_broker_is_one_line_exit_2_within_the_timeout(names: list[str]) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"
    # the subprocess timeout only guards the test run; --timeout is what bounds the command
    done = subprocess.run(
        [sys.executable, "-m", "vardgaranti", "topics", "create", "--bootstrap", bootstrap,
         "--timeout", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"vardgaranti: error: cannot reach Kafka at {bootstrap} within 2 s "
                           "(KafkaTimeoutError)\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--partitions", "0"], "argument --partitions: '0' is not a whole number of at least 1"),
    (["--bootstrap", "kafka"], "argument --bootstrap: Kafka bootstrap 'kafka': expected"),
    (["--timeout", "-1"], "argument --timeout: '-1' is not a number of seconds above 0"),
])
def test_bad_options_exit_2(args: list[str], message: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["topics", "create", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
