"""A batch's writes, on the broker before the batch that made them is acknowledged.

Faust's `Table.send_changelog` only hands a record to the producer buffer. The consumer
flushes that buffer before it commits offsets, but the flush gives up as soon as one record
takes longer than 0.1 s to go out (`ProducerBuffer.flush_atmost`), which a busy machine
easily makes it do: offsets were then committed for events whose case or counter update was
still in the buffer, and a stop or a kill lost the update for good (a fulfilment lost, its
clock left open). Sending the records ourselves and waiting for the broker's
acknowledgement within the batch closes that gap: a batch's offsets are acknowledged only
when it returns. See docs/streaming.md, "Delivery guarantees".

The records of one step go out as an `Outbox`: one record batch per topic partition,
handed to the aiokafka producer under the app, and one wait for all acknowledgements.
Faust's `Topic.send` costs a future, a callback chain and a produce call per record, which
was a fifth of the worker's time (docs/performance.md, "What limits the worker").
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any, Protocol

import orjson


class Producer(Protocol):
    """What an Outbox needs of aiokafka's AIOKafkaProducer."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[Any]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...

    def _partition(self, topic: str, partition: int | None, key: bytes | None,
                   value: bytes | None, serialized_key: bytes | None,
                   serialized_value: bytes | None) -> int: ...


def producer_of(app: Any) -> Producer:
    """The aiokafka producer under a started Faust app."""
    producer: Producer = app.producer._ensure_producer()
    return producer


class Outbox:
    """Records of one step, per topic and partition, in the order they were added."""

    def __init__(self) -> None:
        self._records: dict[str, dict[int | None, list[tuple[bytes | None, bytes | None]]]] = \
            defaultdict(lambda: defaultdict(list))
        self.count = 0

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            partition: int | None = None) -> None:
        """A record (None: a tombstone); without a partition, the producer's partitioner
        picks it from the key (the same partition Faust's `Topic.send` would pick)."""
        self._records[topic][partition].append((key, value))
        self.count += 1

    def put(self, table: Any, partition: int, key: bytes, value: dict[str, Any]) -> None:
        """Set a table entry and write it to the changelog partition of its source (Faust
        would take the partition of the event in hand, which a batch does not have)."""
        table.data[key] = value
        self.add(table.changelog_topic.get_topic_name(), key, orjson.dumps(value), partition)

    def drop(self, table: Any, partition: int, key: bytes) -> None:
        """Remove a table entry and write its tombstone. Through the outbox, not Faust's
        buffered `send_changelog`: a buffered tombstone could reach the changelog after a
        later write of the same key sent here, and recovery would then lose the entry."""
        table.data.pop(key, None)
        self.add(table.changelog_topic.get_topic_name(), key, None, partition)

    async def deliver(self, producer: Producer) -> None:
        """Send everything and wait until the broker has acknowledged it (raises if a send
        failed); the outbox is empty afterwards."""
        sends: list[Awaitable[Any]] = []
        for topic, by_partition in self._records.items():
            await producer.partitions_for(topic)  # the partitioner needs the metadata
            for partition, records in _by_partition(producer, topic, by_partition).items():
                batch = producer.create_batch()
                for key, value in records:
                    if batch.append(timestamp=None, key=key, value=value) is None:  # full
                        sends.append(await producer.send_batch(batch, topic,
                                                               partition=partition))
                        batch = producer.create_batch()
                        batch.append(timestamp=None, key=key, value=value)
                sends.append(await producer.send_batch(batch, topic, partition=partition))
        self._records.clear()
        self.count = 0
        await delivered(sends)


def _by_partition(producer: Producer, topic: str,
                  records: dict[int | None, list[tuple[bytes | None, bytes | None]]]
                  ) -> dict[int, list[tuple[bytes | None, bytes | None]]]:
    out: dict[int, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for partition, items in records.items():
        if partition is not None:
            out[partition].extend(items)
            continue
        for key, value in items:
            out[producer._partition(topic, None, key, value, key, value)].append((key, value))
    return out


async def delivered(sends: list[Awaitable[Any]]) -> None:
    """Wait until every send is acknowledged by the broker (raises if one failed)."""
    if sends:
        await asyncio.gather(*sends)
