"""The worker's own topics reach its agents as whole fetched batches (docs/streaming.md).

Faust hands every fetched record to an agent one at a time: a message object, the
conductor's callback (flow-control and producer-buffer waits, key and value decoding into an
event), the stream's queue and iterator, the sensors, and one acknowledgement per record.
That was a third of the worker's busy time (docs/performance.md). The events and deltas
topics carry bytes the worker decodes itself, a batch at a time, so the fetch loop
(streams/drain.py) puts their records, as the Kafka client returned them, on an `Intake`
per topic; the agent takes up to `most` of them, processes them and acknowledges them at
once. Other topics (the tables' changelogs during a recovery) go through Faust as before.

What Faust's path guaranteed still holds:
- a record is acknowledged only once its batch is processed; one that no agent took is
  never acknowledged and is read again from the committed offset (streams/acks.py);
- a rebalance or a stop clears what waits here (Faust's flow control clears every queue
  it manages), drops what was fetched for an earlier generation or while the flow is
  stopped, and waits for a batch in hand: it is tracked as a message in flight is;
- a full intake holds the fetch loop back, as a full stream buffer does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger("vardgaranti.worker")


class Record(Protocol):
    """A fetched record as the worker reads it (aiokafka's ConsumerRecord)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


Batch = Sequence[Record]


class InFlight:
    """A batch an agent is processing, as the consumer tracks a message in flight: a
    rebalance waits (`Consumer.wait_empty`) until it is acknowledged."""

    __slots__ = ("__weakref__", "acked", "refcount")

    def __init__(self) -> None:
        self.acked = False
        self.refcount = 1


class Intake:
    """Fetched records of one topic, waiting for its agent, in chunks of at most `most`."""

    def __init__(self, app: Any, topic: str, most: int, within: float = 0.05,
                 chunks: int = 8) -> None:
        self.app = app
        self.topic = topic
        self.most = most
        self.within = within  # seconds a batch may wait to fill while there is a backlog
        self.chunks = chunks  # chunks waiting before the fetch loop waits for room
        self._waiting: deque[tuple[int, list[Record]]] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        app.flow_control.manage_queue(self)  # cleared at a rebalance and at a resume

    # ------------------------------------------------------------ the fetch loop's side

    async def put(self, records: list[Record], generation: int) -> None:
        """Records fetched under `generation`, in order per partition; waits while full."""
        for i in range(0, len(records), self.most):
            while len(self._waiting) >= self.chunks:
                self._room.clear()
                await self._room.wait()
            self._waiting.append((generation, records[i:i + self.most]))
            self._ready.set()

    def clear(self) -> None:
        """Flow control's call at a rebalance: what waits here is read again later."""
        self._waiting.clear()
        self._room.set()

    # ------------------------------------------------------------ the agent's side

    async def serve(self, handle: Callable[[Batch], Awaitable[None]]) -> None:
        """The agent's loop: every batch handled whole, then acknowledged."""
        while True:
            batch = await self._take()
            if batch:
                await whole(self._handled(batch, handle))

    async def _take(self) -> list[Record]:
        """The next records (up to `most`), or none when they are stale: fetched for an
        earlier generation, or taken while a rebalance or stop holds the flow. While the
        broker holds more of the topic than was fetched (a backlog), the batch waits up to
        `within` seconds to fill: fewer, larger batches, so fewer records sent per event.
        A worker that is caught up processes what came at once."""
        while not self._waiting:
            self._ready.clear()
            await self._ready.wait()
        generation, first = self._waiting.popleft()
        batch = list(first)
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while len(batch) < self.most:
            if self._waiting:
                more, records = self._waiting[0]
                if more != generation or len(batch) + len(records) > self.most:
                    break
                batch.extend(self._waiting.popleft()[1])
                self._room.set()
                continue
            self._room.set()
            if deadline is None:
                if not self._behind(batch):
                    break
                deadline = loop.time() + self.within
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), deadline - loop.time())
            except TimeoutError:
                break
        self._room.set()
        if generation != self.app.consumer_generation_id or \
                not self.app.flow_control.is_active():
            log.debug("%s: %d records fetched before a rebalance dropped, not acknowledged",
                      self.topic, len(batch))
            return []
        return batch

    def _behind(self, batch: list[Record]) -> bool:
        """The broker holds records of these partitions past the batch's last ones."""
        last: dict[int, int] = {}
        for r in batch:
            last[r.partition] = r.offset
        consumer = self.app.consumer
        for partition, offset in last.items():
            high = consumer.highwater(TP(self.topic, partition))
            if high is not None and high > offset + 1:
                return True
        return False

    async def _handled(self, batch: list[Record], handle: Callable[[Batch], Awaitable[None]]
                       ) -> None:
        consumer = self.app.consumer
        flight = InFlight()
        consumer._unacked_messages.add(flight)
        try:
            await handle(batch)
            acknowledge(consumer, batch)
        finally:
            flight.acked = True
            consumer._unacked_messages.discard(flight)


def acknowledge(consumer: Any, batch: Batch) -> None:
    """`Consumer.ack` for every record of a processed batch at once (the same bookkeeping:
    offsets at or past the committed one, each once, counted towards `commit_every`)."""
    by_tp: dict[tuple[str, int], list[int]] = {}
    for r in batch:
        by_tp.setdefault((r.topic, r.partition), []).append(r.offset)
    with ack_lock:  # Faust's: acks from other threads change the same bookkeeping
        for (topic, partition), offsets in by_tp.items():
            tp = TP(topic, partition)
            committed = consumer._committed_offset[tp]
            index = consumer._acked_index[tp]
            acked = consumer._acked[tp]
            for offset in offsets:
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    acked.append(offset)
                    consumer._n_acked += 1
        notify(consumer._waiting_for_ack)  # as `Consumer.ack` wakes `wait_empty`


async def whole(step: Awaitable[None]) -> None:
    """Finish a batch even when the worker is stopped in the middle of it: a stop waits
    for the batch rather than leave its sends half done (they would be repeated, with the
    same offsets, after a restart; finishing is simply cleaner)."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
