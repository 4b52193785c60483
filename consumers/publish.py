"""Publishing event logs to the events topic: `vardgaranti replay FILE… --to-kafka BOOTSTRAP`.

Every line goes out as its raw bytes, valid or not: validation and dead-lettering are the
worker's job, and a malformed line must reach its DLQ rather than vanish here. The record key
is the line's `case_id` (so a case's events share a partition and its clocks live in one
table shard) and the record timestamp is `occurred_at`, both read leniently: a line without
them still goes out, keyless or stamped with the wall clock.

Nothing is lost silently: a delivery failure stops the run, and the caller reports how far
it got. Publishing the same lines again is safe because the worker ignores repeated event ids.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import orjson
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from consumers.kafka_config import client_kwargs
from consumers.logs import read_lines
from consumers.topics import DEFAULT_TIMEOUT_S, TopicsError, topic_partitions
from models.calendar import to_micros
from models.settings import Settings

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")

# Measured against the test broker: 20 ms / 256 KiB batches send up to ~25 % more per second
# than kafka-python's defaults (0 ms / 16 KiB); larger ones add nothing. gzip is the default
# because kafka-python checksums batches in pure Python unless the `crc32c` package is
# installed, and compressed batches are several times smaller: ~30 % faster without it, no
# slower with it, and less for the brokers to store.
LINGER_MS = 20
BATCH_SIZE = 256 * 1024
DEFAULT_COMPRESSION = "gzip"

_TIMESTAMP: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)


class PublishError(Exception):
    """Kafka cannot be used for publishing (unreachable, missing topic): one line."""


class Producer(Protocol):
    """The part of kafka.KafkaProducer that publishing uses."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             timestamp_ms: int | None = None) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...


def record_meta(line: bytes) -> tuple[bytes | None, int | None]:
    """(key, timestamp in ms) of a line: its case_id and occurred_at, None where unusable."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(event, dict):
        return None, None
    case_id = event.get("case_id")
    key = case_id.encode() if isinstance(case_id, str) and case_id else None
    occurred_at = event.get("occurred_at")
    if not isinstance(occurred_at, str):
        return key, None
    try:
        # the same parser as the event contract (RFC 3339 with an offset)
        ms = to_micros(_TIMESTAMP.validate_python(occurred_at)) // 1000
    except (ValidationError, OverflowError):
        return key, None
    return key, ms if ms >= 0 else None


class TokenBucket:
    """A rate limit: at most `burst + rate × elapsed` takes, sleeping when ahead.

    Short waits are not slept but carried as debt until they add up to `min_sleep`, so that
    high rates are not slowed by the granularity of `sleep`. The clock and sleep are
    injectable so tests can check the schedule without waiting.
    """

    def __init__(self, rate: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, min_sleep: float = 0.002) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be above 0, got {rate}")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._clock, self._sleep, self._min_sleep = clock, sleep, min_sleep
        self._last = clock()
        self.slept = 0.0

    def take(self, n: float = 1.0) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate) - n
        self._last = now
        if self._tokens < 0:
            wait = -self._tokens / self.rate
            if wait >= self._min_sleep:
                self._sleep(wait)
                self.slept += wait


@dataclass
class PublishStats:
    lines: int = 0  # handed to the producer
    unkeyed: int = 0  # no usable case_id: sent without a key
    untimed: int = 0  # no usable occurred_at: stamped with the wall clock
    failed: int = 0  # handed over but not delivered
    first_error: str | None = None  # the first failure, delivery or hand-over
    last: tuple[Path, int] | None = None  # file and line number of the last line handed over
    interrupted: bool = False  # Ctrl-C: stopped early
    unconfirmed: bool = False  # Ctrl-C again while waiting for the broker's acknowledgements
    seconds: float = 0.0
    _started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def delivered(self) -> int:
        return self.lines - self.failed

    @property
    def position(self) -> str:
        return f"{self.last[0]}:{self.last[1]}" if self.last else ""

    @property
    def ok(self) -> bool:
        return self.first_error is None

    def on_error(self, exc: BaseException) -> None:
        """Errback of each send (runs on the producer's I/O thread)."""
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def publish(
    files: Sequence[Path], producer: Producer, topic: str, *,
    limiter: TokenBucket | None = None, progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> PublishStats:
    """Send every line of `files` to `topic`, then wait for the broker to acknowledge all.

    Stops at the first delivery failure (the rest would fail the same way) and on Ctrl-C;
    either way the stats say how far it got. Raises consumers.logs.LogError for an
    unreadable file (after flushing what was sent).
    """
    stats = PublishStats()
    send = producer.send
    try:
        with _deferred_interrupt() as interrupt:
            for path in files:
                # whole blocks: each read releases the GIL, and the producer's I/O thread
                # then keeps it for up to a switch interval (small reads cost a fifth of
                # the throughput)
                for lineno, line in read_lines(path, fill=True):
                    if stats.first_error is not None:
                        break
                    if interrupt.requested:
                        stats.interrupted = True
                        break
                    if limiter is not None:
                        limiter.take()
                    key, timestamp_ms = record_meta(line)
                    if not _send(send, topic, line, key, timestamp_ms, stats):
                        break
                    stats.lines += 1
                    stats.unkeyed += key is None
                    stats.untimed += timestamp_ms is None
                    stats.last = (path, lineno)
                    if progress is not None and stats.lines % progress_every == 0:
                        progress(stats.lines)
                else:
                    continue
                break  # the inner loop stopped early: so does the outer one
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        try:
            producer.flush()  # bounded by the producer's delivery timeout
        except KeyboardInterrupt:
            stats.interrupted = stats.unconfirmed = True
        if progress is not None:
            progress(stats.lines)
        stats.seconds = time.perf_counter() - stats._started
    return stats


class _Interrupt:
    requested = False


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[_Interrupt]:
    """The first Ctrl-C only asks the loop to stop between two lines, so the count of lines
    handed to the producer stays exact; a second one raises KeyboardInterrupt as usual."""
    interrupt = _Interrupt()

    def handler(signum: int, frame: FrameType | None) -> None:
        interrupt.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C stays a KeyboardInterrupt
        yield interrupt
        return
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


def _send(send: Callable[..., Any], topic: str, line: bytes, key: bytes | None,
          timestamp_ms: int | None, stats: PublishStats) -> bool:
    from kafka.errors import KafkaError

    try:
        future = send(topic, value=line, key=key, timestamp_ms=timestamp_ms)
    except KafkaError as exc:  # e.g. the buffer stayed full for max_block_ms
        if stats.first_error is None:
            stats.first_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return False
    future.add_errback(stats.on_error)
    return True


def check_topic(settings: Settings, bootstrap: str, topic: str,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """The topic's partition count; PublishError when Kafka is unreachable or it is missing.

    Checked up front because a producer would wait a minute for a missing topic's metadata
    (or, on a broker that auto-creates topics, create it with the wrong partition count).
    """
    try:
        partitions = topic_partitions(settings, [topic], bootstrap, timeout_s)[topic]
    except TopicsError as exc:
        raise PublishError(str(exc)) from None
    if partitions is None:
        raise PublishError(
            f"topic {topic} does not exist: run `vardgaranti topics create --bootstrap "
            f"{bootstrap}` first")
    return partitions


def open_producer(settings: Settings, bootstrap: str, compression: str = DEFAULT_COMPRESSION,
                  timeout_s: float = DEFAULT_TIMEOUT_S, **overrides: Any) -> Any:
    """An idempotent kafka-python producer (acks=all) tuned for throughput.

    `overrides` are further KafkaProducer settings (tests shorten the delivery timeout).
    """
    from kafka import KafkaProducer, codec
    from kafka.errors import KafkaError

    if compression not in COMPRESSIONS:
        raise PublishError(f"--compression: {compression!r} is not one of "
                           f"{', '.join(COMPRESSIONS)}")
    if compression != "none" and not getattr(codec, f"has_{compression}")():
        raise PublishError(f"--compression {compression}: its Python codec is not installed")
    config = client_kwargs(settings, bootstrap, client_id="vardgaranti-replay")
    config.update(
        acks="all",
        enable_idempotence=True,  # broker retries cannot duplicate or reorder records
        linger_ms=LINGER_MS,
        batch_size=BATCH_SIZE,
        compression_type=None if compression == "none" else compression,
        allow_auto_create_topics=False,
        bootstrap_timeout_ms=max(1, int(timeout_s * 1000)),
    )
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise PublishError(f"cannot reach Kafka at {bootstrap} within {timeout_s:g} s "
                           f"({type(exc).__name__})") from None
