"""Table writes that are on the broker before the batch that made them is acknowledged.

Faust's `Table.send_changelog` only hands a record to the producer buffer. The consumer
flushes that buffer before it commits offsets, but the flush gives up as soon as one record
takes longer than 0.1 s to go out (`ProducerBuffer.flush_atmost`), which a busy machine
easily makes it do: offsets were then committed for events whose case or counter update was
still in the buffer, and a stop or a kill lost the update for good (a fulfilment lost, its
clock left open). Sending the record ourselves and waiting for the broker's acknowledgement
within the batch closes that gap: a batch's offsets are acknowledged only when it returns.
See docs/streaming.md, "Delivery guarantees".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def put(table: Any, partition: int, key: bytes, value: dict[str, Any]) -> Awaitable[Any]:
    """Set a table entry and send it to the changelog partition of its source (Faust would
    take the partition of the event in hand, which a batch does not have); the send's
    future, resolved when the broker has the record."""
    table.data[key] = value
    sent: Awaitable[Any] = await table.changelog_topic.send(
        key=key, value=value, partition=partition,
        key_serializer=table.key_serializer, value_serializer=table.value_serializer)
    return sent


async def delivered(sends: list[Awaitable[Any]]) -> None:
    """Wait until every send is acknowledged by the broker (raises if one failed)."""
    if sends:
        await asyncio.gather(*sends)
