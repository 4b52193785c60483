"""A Kafka-protocol test broker: librdkafka's mock cluster behind a small request translator.

Run it as its own process::

    python -m tests.support.mock_broker --topic events:3 --topic other --brokers 1

Once it accepts connections it prints exactly one line ``BOOTSTRAP=127.0.0.1:PORT[,...]`` on
stdout and keeps running until SIGTERM/SIGINT (exit status 0).

The broker is the mock cluster that ships inside the ``confluent-kafka`` wheel (librdkafka),
driven through ``ctypes`` (see the project's Kafka testing notes for why). Every mock broker gets
one translator listener in front of it; clients only ever talk to the translators because the
mock advertises the translator addresses in Metadata/FindCoordinator responses
(``rd_kafka_mock_broker_set_host_port``). A translator

* answers ApiVersions (v0-v4) itself, with the mock's versions capped where the mock advertises
  versions it cannot parse (JoinGroup <= 5, SyncGroup <= 3, LeaveGroup <= 2) and with
  CreateTopics (v0-v4) and DeleteTopics (v0-v3) added;
* answers CreateTopics and DeleteTopics through the mock's C API;
* caps a Fetch's wait for data at ``FETCH_MAX_WAIT_CAP_MS``: the mock answers a waiting fetch
  only at its deadline, Kafka as soon as data arrives;
* forwards every other request byte for byte (and drops the mock's reply to an ``acks=0``
  Produce, which a real broker would not send);
* when the mock refuses a follower's SyncGroup because the leader synced first, answers it with
  the follower's assignment from the leader's SyncGroup, as Kafka does (:class:`SyncGroupFix`).

The cluster controller is set to broker 1 (the mock reports a non-existent broker 0 otherwise).

Control commands, one per line on stdin (each answered by ``OK ...`` or ``ERR ...`` on stdout):

* ``down [ID]``  - take broker ID (default: all) down: connections are dropped, new ones refused.
* ``up [ID]``    - bring it back.
* ``create TOPIC PARTITIONS`` - create a topic.

``MOCK_BROKER_TRACE=1`` in the environment logs every request (api key, version, first bytes)
and the mock's own debug output (group state changes) to stderr.

With ``--exit-on-stdin-eof`` the broker also stops when stdin is closed, so a test runner that
dies without cleaning up does not leave a broker behind.

Pinned to confluent-kafka==2.16.1 (librdkafka 2.16.0): the mock API has no stability promise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.util
import os
import re
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_SYNC_GROUP = 14
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19
API_DELETE_TOPICS = 20

#: Versions the translator implements itself, or caps because the mock cannot parse newer ones.
VERSION_OVERRIDES: dict[int, tuple[int, int]] = {
    API_API_VERSIONS: (0, 4),
    API_CREATE_TOPICS: (0, 4),
    API_DELETE_TOPICS: (0, 3),
}
VERSION_CAPS: dict[int, int] = {11: 5, 14: 3, 13: 2}  # JoinGroup, SyncGroup, LeaveGroup

ERR_NONE = 0
ERR_UNKNOWN_TOPIC = 3
ERR_INVALID_TOPIC = 17
ERR_UNSUPPORTED_VERSION = 35
ERR_TOPIC_EXISTS = 36
ERR_INVALID_PARTITIONS = 37
ERR_INVALID_REPLICATION_FACTOR = 38
ERR_INVALID_REQUEST = 42

#: The longest a Fetch may wait for data. The mock answers a waiting fetch only at its
#: deadline, while Kafka answers as soon as data arrives; a short cap makes a consumer that
#: waits the mock's way fetch again soon, as it would get the data soon from Kafka.
FETCH_MAX_WAIT_CAP_MS = 20

#: ``MOCK_BROKER_TRACE=1``: log every request (and the mock's debug output) to stderr.
TRACE = os.environ.get("MOCK_BROKER_TRACE", "") not in ("", "0")

_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


# --------------------------------------------------------------------------- wire format


class Reader:
    """Sequential decoder for the (non-flexible) Kafka primitive types."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def _unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def int8(self) -> int:
        return self._unpack(">b")

    def int16(self) -> int:
        return self._unpack(">h")

    def int32(self) -> int:
        return self._unpack(">i")

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode()

    def string(self) -> str:
        return self.nullable_string() or ""

    def nullable_bytes(self) -> bytes | None:
        length = self.int32()
        if length < 0:
            return None
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            size = self.uvarint()  # (`pos += uvarint()` would add to the pos before the size)
            self.pos += size


def i16(value: int) -> bytes:
    return struct.pack(">h", value)


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string(value: str | None) -> bytes:
    if value is None:
        return i16(-1)
    raw = value.encode()
    return i16(len(raw)) + raw


def nullable_bytes(value: bytes | None) -> bytes:
    return i32(-1) if value is None else i32(len(value)) + value


def array(items: list[bytes]) -> bytes:
    return i32(len(items)) + b"".join(items)


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


@dataclass(frozen=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    body_offset: int  # where the request body starts (only for non-flexible headers)


def parse_header(payload: bytes) -> RequestHeader:
    reader = Reader(payload)
    api_key, api_version, correlation_id = reader.int16(), reader.int16(), reader.int32()
    reader.nullable_string()  # client_id
    return RequestHeader(api_key, api_version, correlation_id, reader.pos)


def produce_expects_response(payload: bytes, header: RequestHeader) -> bool:
    """False for an ``acks=0`` Produce request (the client expects no response)."""
    reader = Reader(payload, header.body_offset)
    flexible = header.api_version >= 9
    if flexible:
        reader.skip_tagged_fields()
    if header.api_version >= 3:  # transactional_id
        if flexible:
            length = reader.uvarint() - 1
            reader.pos += max(length, 0)
        else:
            reader.nullable_string()
    return reader.int16() != 0


def cap_fetch_wait(payload: bytes, header: RequestHeader,
                   cap_ms: int = FETCH_MAX_WAIT_CAP_MS) -> bytes:
    """The Fetch request with its MaxWaitMs lowered to `cap_ms` (if it was longer)."""
    reader = Reader(payload, header.body_offset)
    if header.api_version >= 12:  # flexible: the header's tagged fields come first
        reader.skip_tagged_fields()
    if header.api_version < 15:  # replica_id, moved into a tagged field in v15
        reader.int32()
    at = reader.pos
    if reader.int32() <= cap_ms:
        return payload
    return payload[:at] + i32(cap_ms) + payload[at + 4:]


def blocking_request(port: int, api_key: int, version: int, body: bytes) -> Reader:
    """One request/response round trip with a blocking socket (start-up only)."""
    header = i16(api_key) + i16(version) + i32(1) + string("mock_broker")
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(frame(header + body))
        size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
        reader = Reader(_recv_exactly(sock, size))
    reader.int32()  # correlation id
    return reader


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("mock broker closed the connection")
        data += chunk
    return bytes(data)


# --------------------------------------------------------------------------- librdkafka mock


def _find_librdkafka() -> Path:
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is None or spec.origin is None:
        raise RuntimeError("confluent-kafka is not installed (it provides librdkafka)")
    package_dir = Path(spec.origin).parent
    candidates = sorted(package_dir.parent.glob("confluent_kafka.libs/librdkafka*.so*"))
    candidates += sorted(package_dir.glob("**/librdkafka*.so*"))
    if not candidates:
        raise RuntimeError(f"librdkafka shared library not found near {package_dir}")
    return candidates[0]


class MockCluster:
    """The librdkafka mock cluster, through ctypes."""

    def __init__(self, brokers: int) -> None:
        lib = ctypes.CDLL(str(_find_librdkafka()))
        p, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        signatures: dict[str, tuple[type | None, list[type]]] = {
            "rd_kafka_conf_new": (p, []),
            "rd_kafka_conf_set": (c_int, [p, c_char_p, c_char_p, c_char_p, ctypes.c_size_t]),
            "rd_kafka_new": (p, [c_int, p, c_char_p, ctypes.c_size_t]),
            "rd_kafka_destroy": (None, [p]),
            "rd_kafka_mock_cluster_new": (p, [p, c_int]),
            "rd_kafka_mock_cluster_destroy": (None, [p]),
            "rd_kafka_mock_cluster_bootstraps": (c_char_p, [p]),
            "rd_kafka_mock_topic_create": (c_int, [p, c_char_p, c_int, c_int]),
            "rd_kafka_mock_topic_delete": (c_int, [p, c_char_p]),
            "rd_kafka_mock_broker_set_down": (c_int, [p, ctypes.c_int32]),
            "rd_kafka_mock_broker_set_up": (c_int, [p, ctypes.c_int32]),
            "rd_kafka_mock_broker_set_host_port": (None, [p, ctypes.c_int32, c_char_p, c_int]),
            "rd_kafka_mock_set_controller_id": (None, [p, ctypes.c_int32]),
            "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [p, ctypes.c_int32]),
        }
        for name, (restype, argtypes) in signatures.items():
            func = getattr(lib, name)
            func.restype, func.argtypes = restype, argtypes
        self._lib = lib
        self.broker_count = brokers

        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        settings = [("client.id", "mock_broker"), ("log_level", "3")]
        if TRACE:  # the mock's own group-coordinator decisions, on stderr
            settings += [("debug", "mock"), ("log_level", "7")]
        for key, value in settings:
            lib.rd_kafka_conf_set(conf, key.encode(), value.encode(), errstr, len(errstr))
        self._rk = lib.rd_kafka_new(0, conf, errstr, len(errstr))  # 0 = RD_KAFKA_PRODUCER
        if not self._rk:
            raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
        self._cluster = lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._cluster:
            lib.rd_kafka_destroy(self._rk)
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        lib.rd_kafka_mock_set_controller_id(self._cluster, 1)

    def bootstraps(self) -> list[tuple[str, int]]:
        raw: bytes = self._lib.rd_kafka_mock_cluster_bootstraps(self._cluster)
        hosts = []
        for entry in raw.decode().split(","):
            host, _, port = entry.rpartition(":")
            hosts.append((host, int(port)))
        return hosts

    def create_topic(self, name: str, partitions: int, replication: int = 1) -> int:
        return int(self._lib.rd_kafka_mock_topic_create(self._cluster, name.encode(),
                                                        partitions, replication))

    def delete_topic(self, name: str) -> int:
        return int(self._lib.rd_kafka_mock_topic_delete(self._cluster, name.encode()))

    def set_down(self, broker_id: int) -> None:
        self._lib.rd_kafka_mock_broker_set_down(self._cluster, broker_id)

    def set_up(self, broker_id: int) -> None:
        self._lib.rd_kafka_mock_broker_set_up(self._cluster, broker_id)

    def advertise(self, broker_id: int, host: str, port: int) -> None:
        self._lib.rd_kafka_mock_broker_set_host_port(self._cluster, broker_id, host.encode(),
                                                     port)

    def set_initial_rebalance_delay(self, delay_ms: int) -> None:
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._cluster, delay_ms)

    def destroy(self) -> None:
        self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
        self._lib.rd_kafka_destroy(self._rk)


# --------------------------------------------------------------------------- request handlers


class AdminHandler:
    """ApiVersions, CreateTopics and DeleteTopics, answered without the mock's parser."""

    def __init__(self, cluster: MockCluster, mock_versions: dict[int, tuple[int, int]]) -> None:
        self.cluster = cluster
        self.versions = dict(mock_versions)
        for key, cap in VERSION_CAPS.items():
            if key in self.versions:
                low, high = self.versions[key]
                self.versions[key] = (low, min(high, cap))
        self.versions.update(VERSION_OVERRIDES)

    def handle(self, header: RequestHeader, payload: bytes) -> bytes | None:
        """Return the response payload (without the size prefix), None for a bad version."""
        if header.api_key == API_API_VERSIONS:
            return i32(header.correlation_id) + self.api_versions(header.api_version)
        low, high = VERSION_OVERRIDES[header.api_key]
        if not low <= header.api_version <= high:
            return None
        reader = Reader(payload, header.body_offset)
        if header.api_key == API_CREATE_TOPICS:
            body = self.create_topics(reader, header.api_version)
        else:
            body = self.delete_topics(reader, header.api_version)
        return i32(header.correlation_id) + body

    def api_versions(self, version: int) -> bytes:
        entries = sorted(self.versions.items())
        if version > VERSION_OVERRIDES[API_API_VERSIONS][1]:  # answer in v0, as Kafka does
            return i16(ERR_UNSUPPORTED_VERSION) + array(
                [i16(k) + i16(lo) + i16(hi) for k, (lo, hi) in entries])
        if version <= 2:
            body = i16(ERR_NONE) + array([i16(k) + i16(lo) + i16(hi) for k, (lo, hi) in entries])
            return body + (i32(0) if version >= 1 else b"")
        items = b"".join(i16(k) + i16(lo) + i16(hi) + uvarint(0) for k, (lo, hi) in entries)
        return i16(ERR_NONE) + uvarint(len(entries) + 1) + items + i32(0) + uvarint(0)

    def create_topics(self, reader: Reader, version: int) -> bytes:
        requests = []
        for _ in range(reader.int32()):
            name, partitions, replication = reader.string(), reader.int32(), reader.int16()
            assigned = 0
            for _ in range(reader.int32()):  # manual replica assignment
                reader.int32()
                for _ in range(reader.int32()):
                    reader.int32()
                assigned += 1
            for _ in range(reader.int32()):  # configs: accepted and ignored
                reader.string()
                reader.nullable_string()
            requests.append((name, assigned or partitions, replication))
        reader.int32()  # timeout_ms
        validate_only = version >= 1 and reader.int8() != 0

        results = []
        for name, partitions, replication in requests:
            code, message = self._create_one(name, partitions, replication, validate_only)
            item = string(name) + i16(code)
            if version >= 1:
                item += string(message)
            results.append(item)
        return (i32(0) if version >= 2 else b"") + array(results)

    def _create_one(self, name: str, partitions: int, replication: int,
                    validate_only: bool) -> tuple[int, str | None]:
        partitions = 1 if partitions == -1 else partitions
        replication = 1 if replication == -1 else replication
        if not _TOPIC_NAME.match(name) or name in (".", ".."):
            return ERR_INVALID_TOPIC, f"Invalid topic name {name!r}"
        if partitions < 1:
            return ERR_INVALID_PARTITIONS, "Number of partitions must be larger than 0"
        if not 1 <= replication <= self.cluster.broker_count:
            return ERR_INVALID_REPLICATION_FACTOR, (
                f"Replication factor {replication} is larger than the number of brokers "
                f"({self.cluster.broker_count})")
        if validate_only:
            return ERR_NONE, None
        code = self.cluster.create_topic(name, partitions, replication)
        if code == ERR_TOPIC_EXISTS:
            return code, f"Topic '{name}' already exists."
        return code, None

    def delete_topics(self, reader: Reader, version: int) -> bytes:
        names = [reader.string() for _ in range(reader.int32())]
        results = []
        for name in names:
            code = self.cluster.delete_topic(name)
            code = ERR_UNKNOWN_TOPIC if code not in (ERR_NONE, ERR_UNKNOWN_TOPIC) else code
            results.append(string(name) + i16(code))
        return (i32(0) if version >= 1 else b"") + array(results)


class SyncGroupFix:
    """Give a member that syncs after the leader its assignment, as Kafka does.

    Why: the mock's classic group coordinator ends a sync round as soon as every member *has an
    assignment* (``rd_kafka_mock_cgrp_classic_sync_check``: ``assignment_cnt < member_cnt``),
    not when every member has sent SyncGroup, and the leader's SyncGroup carries the assignments
    of all members. So when the leader syncs first, the group goes Up at once, and a follower's
    SyncGroup arriving a moment later is refused with INVALID_REQUEST (42), because
    ``rd_kafka_mock_cgrp_classic_check_state`` does not accept SyncGroup in state Up. aiokafka
    (and so Faust) then rejoins, the group rebalances, and since the leader tends to sync first
    again, two members never get a stable group.

    A real coordinator answers a SyncGroup in state Stable with the member's assignment of the
    current generation. This does the same: it remembers each group's latest leader
    assignments and rewrites that INVALID_REQUEST reply. For a SyncGroup the mock answers
    INVALID_REQUEST only in state Up (Empty has no members): it checks the member
    (UNKNOWN_MEMBER_ID) and the generation (ILLEGAL_GENERATION) first, and a group reaches Up
    only after the leader's SyncGroup of that generation.
    """

    #: Non-flexible SyncGroup versions (v4+ is capped away, see VERSION_CAPS).
    MAX_VERSION = 3

    def __init__(self) -> None:
        # group id -> (generation, {member id: assignment}) from the leader's latest SyncGroup
        self.assignments: dict[str, tuple[int, dict[str, bytes | None]]] = {}

    def request(self, header: RequestHeader, payload: bytes) -> Callable[[bytes], bytes] | None:
        """Note a leader's assignments; return the fix-up for this request's reply."""
        if header.api_version > self.MAX_VERSION:
            return None
        reader = Reader(payload, header.body_offset)
        group, generation, member = reader.string(), reader.int32(), reader.string()
        if header.api_version >= 3:
            reader.nullable_string()  # group_instance_id
        assignments: dict[str, bytes | None] = {}
        for _ in range(reader.int32()):
            member_id = reader.string()
            assignments[member_id] = reader.nullable_bytes()
        if assignments:
            self.assignments[group] = (generation, assignments)

        def fix(reply: bytes) -> bytes:
            return self._reply(reply, header.api_version, group, generation, member)

        return fix

    def _reply(self, reply: bytes, version: int, group: str, generation: int,
               member: str) -> bytes:
        reader = Reader(reply)
        correlation_id = reader.int32()
        if version >= 1:
            reader.int32()  # throttle_time_ms
        if reader.int16() != ERR_INVALID_REQUEST:
            return reply
        known_generation, assignments = self.assignments.get(group, (None, {}))
        if known_generation != generation or member not in assignments:
            return reply
        if TRACE:
            print(f"mock_broker: SyncGroup {group!r} generation {generation}: answering "
                  f"{member!r} with the leader's assignment", file=sys.stderr, flush=True)
        return (i32(correlation_id) + (i32(0) if version >= 1 else b"") + i16(ERR_NONE)
                + nullable_bytes(assignments[member]))


# --------------------------------------------------------------------------- translator


@dataclass
class Pending:
    """A request forwarded to the mock, awaiting its reply (``fix`` may rewrite the reply)."""

    future: asyncio.Future[bytes]
    fix: Callable[[bytes], bytes] | None = None


@dataclass
class Translator:
    """One listener in front of one mock broker."""

    broker_id: int
    upstream_port: int
    admin: AdminHandler
    sync_group: SyncGroupFix
    down: bool = False
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        if (current := asyncio.current_task()) is not None:
            self.handlers.add(current)
            current.add_done_callback(self.handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            writer.close()
            return
        self.connections.add(writer)
        pending: dict[int, Pending] = {}
        ordered: asyncio.Queue[asyncio.Future[bytes]] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._from_client(reader, up_writer, pending, ordered)),
            asyncio.create_task(self._from_upstream(up_reader, pending)),
            asyncio.create_task(self._to_client(writer, ordered)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.connections.discard(writer)
            for stream in (writer, up_writer):
                stream.close()

    async def _from_client(self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter,
                           pending: dict[int, Pending],
                           ordered: asyncio.Queue[asyncio.Future[bytes]]) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size = struct.unpack(">i", await reader.readexactly(4))[0]
                payload = await reader.readexactly(size)
                try:
                    header = parse_header(payload)
                    if TRACE:
                        print(f"mock_broker[{self.broker_id}]: {header} "
                              f"{payload[:256].hex()}", file=sys.stderr, flush=True)
                    local = header.api_key in VERSION_OVERRIDES
                    response = self.admin.handle(header, payload) if local else None
                    expects_reply = local or header.api_key != API_PRODUCE or (
                        produce_expects_response(payload, header))
                    fix = (self.sync_group.request(header, payload)
                           if header.api_key == API_SYNC_GROUP else None)
                    if header.api_key == API_FETCH:
                        payload = cap_fetch_wait(payload, header)
                except (struct.error, IndexError, UnicodeDecodeError) as exc:
                    print(f"mock_broker: malformed request, closing: {exc!r}", file=sys.stderr)
                    return
                if local and response is None:  # unsupported version: Kafka closes too
                    print(f"mock_broker: unsupported {header}, closing", file=sys.stderr)
                    return
                future: asyncio.Future[bytes] = loop.create_future()
                if expects_reply:
                    await ordered.put(future)
                if response is not None:
                    future.set_result(frame(response))
                    continue
                if expects_reply:
                    pending[header.correlation_id] = Pending(future, fix)
                upstream.write(frame(payload))
                await upstream.drain()

    async def _from_upstream(self, reader: asyncio.StreamReader,
                             pending: dict[int, Pending]) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size_bytes = await reader.readexactly(4)
                payload = await reader.readexactly(struct.unpack(">i", size_bytes)[0])
                request = pending.pop(struct.unpack_from(">i", payload)[0], None)
                if request is None:  # the mock's answer to an acks=0 Produce
                    continue
                if request.fix is not None:
                    try:
                        payload = request.fix(payload)
                    except (struct.error, IndexError) as exc:
                        print(f"mock_broker: malformed reply, passed on: {exc!r}",
                              file=sys.stderr)
                request.future.set_result(frame(payload))

    async def _to_client(self, writer: asyncio.StreamWriter,
                         ordered: asyncio.Queue[asyncio.Future[bytes]]) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                future = await ordered.get()
                writer.write(await future)
                await writer.drain()

    def set_down(self, down: bool) -> None:
        self.down = down
        if down:
            for writer in list(self.connections):
                writer.transport.abort()


# --------------------------------------------------------------------------- program


class Broker:
    def __init__(self, cluster: MockCluster) -> None:
        self.cluster = cluster
        self.translators: dict[int, Translator] = {}
        self.servers: list[asyncio.Server] = []

    async def start(self) -> str:
        real = self.cluster.bootstraps()
        versions_reply = blocking_request(real[0][1], API_API_VERSIONS, 0, b"")
        if (error := versions_reply.int16()) != ERR_NONE:
            raise RuntimeError(f"mock ApiVersions failed with error {error}")
        mock_versions = {}
        for _ in range(versions_reply.int32()):
            key, low, high = versions_reply.int16(), versions_reply.int16(), versions_reply.int16()
            mock_versions[key] = (low, high)
        admin = AdminHandler(self.cluster, mock_versions)
        sync_group = SyncGroupFix()  # shared: members of a group may reach different listeners

        metadata = blocking_request(real[0][1], API_METADATA, 0, i32(0))
        addresses = []
        for _ in range(metadata.int32()):
            broker_id, _host, port = metadata.int32(), metadata.string(), metadata.int32()
            translator = Translator(broker_id, port, admin, sync_group)
            server = await asyncio.start_server(translator.serve, HOST, 0)
            listen_port = server.sockets[0].getsockname()[1]
            self.cluster.advertise(broker_id, HOST, listen_port)
            self.translators[broker_id] = translator
            self.servers.append(server)
            addresses.append(f"{HOST}:{listen_port}")
        return ",".join(addresses)

    def command(self, line: str) -> str:
        words = line.split()
        try:
            if words and words[0] in ("down", "up"):
                ids = [int(words[1])] if len(words) > 1 else sorted(self.translators)
                for broker_id in ids:
                    if words[0] == "down":
                        self.translators[broker_id].set_down(True)
                        self.cluster.set_down(broker_id)
                    else:
                        self.cluster.set_up(broker_id)
                        self.translators[broker_id].set_down(False)
                return f"OK {line}"
            if words and words[0] == "create" and len(words) == 3:
                code = self.cluster.create_topic(words[1], int(words[2]))
                return f"OK {line}" if code == ERR_NONE else f"ERR {line}: error {code}"
        except (KeyError, ValueError) as exc:
            return f"ERR {line}: {exc!r}"
        return f"ERR {line}: unknown command (down [ID] | up [ID] | create TOPIC PARTITIONS)"

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for translator in self.translators.values():
            translator.set_down(True)
            if translator.handlers:
                await asyncio.wait(translator.handlers, timeout=5)
        for server in self.servers:
            await server.wait_closed()


def parse_topic(spec: str, default_partitions: int) -> tuple[str, int]:
    name, _, partitions = spec.partition(":")
    return name, int(partitions) if partitions else default_partitions


def _read_stdin(loop: asyncio.AbstractEventLoop, on_line: Callable[[str], None],
                on_eof: Callable[[], None]) -> None:
    """Thread body. Unbuffered reads: a daemon thread must not hold sys.stdin's lock at exit."""
    buffer = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(0, 4096):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    loop.call_soon_threadsafe(on_line, line.decode().strip())
    loop.call_soon_threadsafe(on_eof)


async def run(args: argparse.Namespace) -> None:
    cluster = MockCluster(args.brokers)
    cluster.set_initial_rebalance_delay(args.initial_rebalance_delay_ms)
    for spec in args.topic:
        name, partitions = parse_topic(spec, args.partitions)
        if (code := cluster.create_topic(name, partitions)) != ERR_NONE:
            raise SystemExit(f"cannot create topic {name!r}: error {code}")
    broker = Broker(cluster)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        bootstrap = await broker.start()
        print(f"BOOTSTRAP={bootstrap}", flush=True)

        def on_line(line: str) -> None:
            print(broker.command(line), flush=True)

        def on_eof() -> None:
            if args.exit_on_stdin_eof:
                stop.set()

        threading.Thread(target=_read_stdin, args=(loop, on_line, on_eof), daemon=True).start()
        await stop.wait()
    finally:
        await broker.close()
        cluster.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--brokers", type=int, default=1, help="number of brokers (default 1)")
    parser.add_argument("--partitions", type=int, default=1,
                        help="partitions for --topic entries without ':N' (default 1)")
    parser.add_argument("--topic", action="append", default=[], metavar="NAME[:PARTITIONS]",
                        help="topic to create up front (repeatable)")
    parser.add_argument("--initial-rebalance-delay-ms", type=int, default=0,
                        help="group.initial.rebalance.delay.ms (default 0; Kafka's is 3000)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin is closed (for test runners)")
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
