"""The three topics of the streaming mode: create them once, idempotently, and inspect them.

`create_topics` never changes an existing topic: a partition count that differs from the
requested one is reported as a warning (the keyed events topic would need re-keying to grow,
which is an operator's decision, not a side effect of a setup command).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from consumers.kafka_config import client_kwargs
from models.settings import Settings

DEFAULT_TIMEOUT_S = 15.0
_TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS
_UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION


class TopicsError(Exception):
    """The broker cannot be reached or refused a topic: a one-line message."""


@dataclass(frozen=True, slots=True)
class TopicStatus:
    name: str
    status: str  # "created" | "exists"
    partitions: int
    replication_factor: int
    warning: str | None = None

    def line(self) -> str:
        text = (f"{self.name}: {self.status} ({self.partitions} partitions, "
                f"replication factor {self.replication_factor})")
        return f"{text}; warning: {self.warning}" if self.warning else text


def topic_names(settings: Settings) -> list[str]:
    return [settings.events_topic, settings.dlq_topic, settings.breaches_topic]


@contextlib.contextmanager
def admin_client(
    settings: Settings, bootstrap: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Iterator[Any]:
    """A KafkaAdminClient that gives up bootstrapping after `timeout_s` (TopicsError)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    kwargs = client_kwargs(settings, bootstrap, client_id="vardgaranti-admin")
    timeout_ms = max(1, int(timeout_s * 1000))
    try:
        admin = KafkaAdminClient(
            **kwargs, bootstrap_timeout_ms=timeout_ms, request_timeout_ms=timeout_ms)
    except KafkaError as exc:
        raise TopicsError(
            f"cannot reach Kafka at {','.join(kwargs['bootstrap_servers'])} "
            f"within {timeout_s:g} s ({type(exc).__name__})") from None
    try:
        yield admin
    except KafkaError as exc:
        raise TopicsError(f"Kafka admin request failed: {_first_line(exc)}") from None
    finally:
        admin.close()


def describe(admin: Any, names: Sequence[str]) -> dict[str, tuple[int, int] | None]:
    """{name: (partitions, replication factor)}, None for a topic that does not exist."""
    found: dict[str, tuple[int, int] | None] = dict.fromkeys(names)
    for topic in admin.describe_topics(list(names)):
        if topic["error_code"] == _UNKNOWN_TOPIC or not topic["partitions"]:
            continue
        if topic["error_code"]:
            raise TopicsError(f"topic {topic['name']}: error code {topic['error_code']}")
        partitions = topic["partitions"]
        found[topic["name"]] = (len(partitions), len(partitions[0]["replica_nodes"]))
    return found


def topic_partitions(
    settings: Settings, names: Sequence[str] | None = None, bootstrap: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, int | None]:
    """Partition count of each topic (default: the three of the settings), None if missing."""
    names = list(names) if names is not None else topic_names(settings)
    with admin_client(settings, bootstrap, timeout_s) as admin:
        return {name: (found[0] if found else None)
                for name, found in describe(admin, names).items()}


def create_topics(
    settings: Settings, bootstrap: str | None = None, partitions: int | None = None,
    replication_factor: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[TopicStatus]:
    """Create the events, DLQ and breaches topics where missing; report every one.

    Waits until new topics have a leader for every partition. Raises TopicsError when the
    broker is unreachable (within `timeout_s`) or refuses a topic.
    """
    partitions = partitions if partitions is not None else settings.partitions
    replication = (replication_factor if replication_factor is not None
                   else settings.replication_factor)
    if partitions < 1:
        raise TopicsError(f"partitions must be at least 1, got {partitions}")
    if replication < 1:
        raise TopicsError(f"replication factor must be at least 1, got {replication}")
    names = topic_names(settings)
    timeout_ms = max(1, int(timeout_s * 1000))
    with admin_client(settings, bootstrap, timeout_s) as admin:
        existing = describe(admin, names)
        missing = [name for name in names if existing[name] is None]
        created: list[str] = []
        if missing:
            spec = {name: {"num_partitions": partitions, "replication_factor": replication}
                    for name in missing}
            result = admin.create_topics(spec, timeout_ms=timeout_ms, raise_errors=False)
            for topic in result["topics"]:
                if topic["error_code"] == 0:
                    created.append(topic["name"])
                elif topic["error_code"] != _TOPIC_EXISTS:  # created meanwhile by someone else
                    reason = topic["error_message"] or f"error code {topic['error_code']}"
                    raise TopicsError(f"cannot create topic {topic['name']}: {reason}")
            if created:
                admin.wait_for_topics(created, timeout_ms=timeout_ms)
            existing.update(describe(admin, missing))
    statuses = []
    for name in names:
        found = existing[name]
        if found is None:
            raise TopicsError(f"topic {name} was not created and does not exist")
        differences = []
        if found[0] != partitions:
            differences.append(f"has {found[0]} partitions ({partitions} requested)")
        if found[1] != replication:
            differences.append(f"has replication factor {found[1]} ({replication} requested)")
        warning = None
        if differences:
            warning = "; ".join(differences) + " (existing topics are left as they are)"
        status = "created" if name in created else "exists"
        statuses.append(TopicStatus(name, status, found[0], found[1], warning))
    return statuses


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"
