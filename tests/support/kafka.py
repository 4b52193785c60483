"""Pytest fixtures for tests that need a Kafka-protocol broker.

By default a mock broker (:mod:`tests.support.mock_broker`, librdkafka's mock cluster behind a
small translator) is started once per test session in a child process. Set
``VARDGARANTI_TEST_KAFKA_BOOTSTRAP=host:port`` to run the same tests against a real Kafka
(for example one started with ``docker compose up``).

Fixtures:

* ``kafka_broker``    - :class:`KafkaBroker` (session): ``.bootstrap``, ``.is_mock``,
  ``.down()`` / ``.up()`` (mock only: drop and refuse connections, then accept them again).
* ``kafka_bootstrap`` - the bootstrap address, ``"host:port[,host:port...]"`` (session).
* ``kafka_is_mock``   - ``True`` when running on the mock broker.
* ``private_mock_broker`` - a :class:`KafkaBroker` of its own for one test (mock only; skipped
  on a real Kafka). Use it for fault tests (``.down()``/``.up()``), never the shared one.

Helpers:

* :func:`create_topics` - create topics (already existing ones are fine).
* :func:`start_mock_broker` - start a mock broker yourself (``.stop()`` it when done).
* :data:`KAFKA_IS_MOCK`, :func:`consumer_timeouts` (aiokafka/kafka-python consumer kwargs) and
  :func:`faust_settings` (faust.App kwargs): the mock delays a group (re)join by the session
  timeout minus 1 s, so on the mock the session timeout is 3 s and the heartbeat 0.5 s. Real
  Kafka refuses session timeouts below 6 s, so these are only applied on the mock.

The mock cannot show transactions, compaction/retention, topic configs, ACLs/TLS or real broker
failure; see the project's Kafka testing notes.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ENV_BOOTSTRAP = "VARDGARANTI_TEST_KAFKA_BOOTSTRAP"

#: True unless a real Kafka is configured through VARDGARANTI_TEST_KAFKA_BOOTSTRAP.
KAFKA_IS_MOCK: bool = not os.environ.get(ENV_BOOTSTRAP)

MOCK_SESSION_TIMEOUT_MS = 3000
MOCK_HEARTBEAT_INTERVAL_MS = 500
STARTUP_TIMEOUT_S = 20.0

_REPO_ROOT = Path(__file__).resolve().parents[2]


def consumer_timeouts() -> dict[str, int]:
    """Group timeouts for aiokafka/kafka-python consumers: short on the mock, defaults on Kafka."""
    if not KAFKA_IS_MOCK:
        return {}
    return {
        "session_timeout_ms": MOCK_SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": MOCK_HEARTBEAT_INTERVAL_MS,
    }


def faust_settings() -> dict[str, float]:
    """Extra ``faust.App`` settings for the test broker (short group timeouts on the mock)."""
    if not KAFKA_IS_MOCK:
        return {}
    return {
        "broker_session_timeout": MOCK_SESSION_TIMEOUT_MS / 1000,
        "broker_heartbeat_interval": MOCK_HEARTBEAT_INTERVAL_MS / 1000,
    }


def create_topics(bootstrap: str, topics: Mapping[str, int], replication_factor: int = 1,
                  timeout_s: float = 15.0) -> None:
    """Create ``{name: partitions}`` topics and wait until they have leaders.

    Topics that already exist are left alone (their partition count is not checked).
    """
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        for name, partitions in topics.items():
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    {name: {"num_partitions": partitions,
                            "replication_factor": replication_factor}},
                    timeout_ms=int(timeout_s * 1000), wait_for_metadata=True)
    finally:
        admin.close()


@dataclass
class KafkaBroker:
    """A running test broker: the mock child process, or a real Kafka from the environment."""

    bootstrap: str
    is_mock: bool
    process: subprocess.Popen[bytes] | None = None
    stderr_path: Path | None = None
    _buffer: bytes = field(default=b"", repr=False)

    def down(self, broker_id: int | None = None) -> None:
        """Take the broker (one id, or all) down: connections are dropped and refused."""
        self._command("down" if broker_id is None else f"down {broker_id}")

    def up(self, broker_id: int | None = None) -> None:
        """Bring the broker (one id, or all) back up."""
        self._command("up" if broker_id is None else f"up {broker_id}")

    def _command(self, command: str, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.stdin is None:
            raise RuntimeError("broker control is only available on the mock broker")
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        reply = self.read_line(timeout_s)
        if not reply.startswith("OK"):
            raise RuntimeError(f"mock broker refused {command!r}: {reply}")

    def read_line(self, timeout_s: float) -> str:
        """Next stdout line of the mock broker; raises with its stderr on timeout or exit."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"mock broker did not answer within {timeout_s} s"
                                   f"{self._stderr_tail()}")
            if select.select([fd], [], [], remaining)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.process.wait(5)
                    raise RuntimeError(f"mock broker exited with status {code}"
                                       f"{self._stderr_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode().strip()

    def _stderr_tail(self) -> str:
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        text = self.stderr_path.read_text(errors="replace")[-4000:]
        return f"; its stderr:\n{text}" if text else "; its stderr was empty"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        if self.stderr_path is not None:
            self.stderr_path.unlink(missing_ok=True)


def start_mock_broker(*args: str, timeout_s: float = STARTUP_TIMEOUT_S) -> KafkaBroker:
    """Start ``python -m tests.support.mock_broker ARGS`` and wait for its bootstrap address."""
    stderr_fd, stderr_name = tempfile.mkstemp(prefix="mock_broker-", suffix=".stderr")
    with os.fdopen(stderr_fd, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.mock_broker", "--exit-on-stdin-eof", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=_REPO_ROOT)
    broker = KafkaBroker(bootstrap="", is_mock=True, process=process,
                         stderr_path=Path(stderr_name))
    try:
        line = broker.read_line(timeout_s)
        if not line.startswith("BOOTSTRAP="):
            raise RuntimeError(f"unexpected first line from mock broker: {line!r}"
                               f"{broker._stderr_tail()}")
    except BaseException:
        broker.stop()
        raise
    broker.bootstrap = line.removeprefix("BOOTSTRAP=")
    return broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """The session's broker: ``$VARDGARANTI_TEST_KAFKA_BOOTSTRAP`` or a fresh mock broker."""
    real = os.environ.get(ENV_BOOTSTRAP)
    if real:
        yield KafkaBroker(bootstrap=real, is_mock=False)
        return
    broker = start_mock_broker()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """Bootstrap address (``host:port[,...]``) of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_is_mock(kafka_broker: KafkaBroker) -> bool:
    """True when the tests run against the mock broker rather than a real Kafka."""
    return kafka_broker.is_mock


@pytest.fixture
def private_mock_broker() -> Iterator[KafkaBroker]:
    """A mock broker for this test alone (fault injection); skipped when using a real Kafka."""
    if not KAFKA_IS_MOCK:
        pytest.skip(f"needs the mock broker ({ENV_BOOTSTRAP} is set)")
    broker = start_mock_broker()
    try:
        yield broker
    finally:
        broker.stop()
