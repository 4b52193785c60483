"""The Faust app of the streaming mode: broker settings, topics and tables (SPEC §5.2).

Everything comes from the one settings model: bootstrap servers, security (SASL/TLS),
partition counts, topic names. Tables are changelogged `Table`s in memory, recovered from
their changelogs at start in bulk (streams/restore.py); no windowed tables (ARCHITECTURE.md:
windows are ours, on event time). Keys are raw bytes: the case id as the producer wrote it,
and the counter group.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TableT, TransportT

from consumers.kafka_config import check as check_kafka
from models.settings import Settings
from streams.acks import FetchedNotDropped, TakenOnly
from streams.drain import drain_messages
from streams.intake import Intake
from streams.recovery import HeldResume, SeekingTableManager
from streams.restore import BulkTable, ChangelogConductor

CASES_TABLE = "cases"
COUNTS_TABLE = "counts"


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog: what the SQL sink reads."""
    return f"{settings.app_id}-{table}-changelog"


def deltas_topic(settings: Settings) -> str:
    """The internal topic carrying counter deltas re-keyed by indicator × day × unit."""
    return f"{settings.app_id}-deltas"


def credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = (
        ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.kafka_ssl_cafile)
        if protocol in ("SSL", "SASL_SSL") else None
    )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password is not None else None,
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
    )


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust hard-codes its consumer's fetch wait (1.5 s); ours comes from the settings."""

    def _create_worker_consumer(
            self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = self.consumer.app
        assert isinstance(app, MonitorApp)
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms  # read when the consumer starts
        return consumer


class _Consumer(FetchedNotDropped, TakenOnly, HeldResume, faust_aiokafka.Consumer):
    _drain_messages = drain_messages  # no four tasks per message (streams/drain.py)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Conductor = ChangelogConductor  # changelog records undecoded (streams/restore.py)


class MonitorApp(faust.App):
    """A Faust app whose worker consumer waits on a fetch at most `fetch_max_wait_ms`, and
    hands the records of the topics in `intakes` to their agents whole (streams/intake.py)."""

    def __init__(self, id: str, *, fetch_max_wait_ms: int, **config: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.intakes: dict[str, Intake] = {}
        super().__init__(id, **config)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


@dataclass
class Monitor:
    """The app and its building blocks, handed to the agents and the web server."""

    app: faust.App
    settings: Settings
    events: faust.TopicT
    dlq: faust.TopicT
    breaches: faust.TopicT
    deltas: faust.TopicT
    cases: TableT[bytes, Any]
    counts: TableT[bytes, Any]


def build(settings: Settings, **overrides: Any) -> Monitor:
    """A configured app; `overrides` are extra faust.App settings (tests shorten timeouts).
    Raises KafkaConfigError (one line naming the setting) for settings that cannot work."""
    check_kafka(settings)
    config: dict[str, Any] = {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")],
        "broker_credentials": credentials(settings),
        "store": "memory://",
        "datadir": settings.worker_data_dir,
        "web_enabled": False,  # the API and /metrics are served by our own FastAPI app
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        # standby copies would sit in the same in-memory table as the active partitions
        "table_standby_replicas": 0,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "broker_session_timeout": settings.kafka_session_timeout,
        "broker_heartbeat_interval": settings.kafka_heartbeat_interval,
        "producer_linger": settings.kafka_producer_linger_ms / 1000,
        # stream partitions resume after their seek at the end of a recovery (streams/recovery.py)
        "TableManager": SeekingTableManager,
        # changelog values applied in bulk at a restart (streams/restore.py)
        "Table": BulkTable,
    }
    config.update(overrides)
    app = MonitorApp(settings.app_id, fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                     **config)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
                           "value_serializer": "raw"}
    n = settings.partitions
    return Monitor(
        app=app,
        settings=settings,
        events=app.topic(settings.events_topic, partitions=n, **raw),
        dlq=app.topic(settings.dlq_topic, **raw),
        breaches=app.topic(settings.breaches_topic, **raw),
        deltas=app.topic(deltas_topic(settings), partitions=n, internal=True, **raw),
        # keys and values are read raw from the changelogs: the values are JSON, written
        # (streams/changelog.py) and decoded (streams/restore.py) by the worker itself
        cases=app.Table(CASES_TABLE, partitions=n, key_type=bytes, value_type=bytes),
        counts=app.Table(COUNTS_TABLE, partitions=n, key_type=bytes, value_type=bytes),
    )
