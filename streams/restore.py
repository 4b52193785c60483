"""Tables rebuilt from their changelogs in bulk, not one record at a time.

A restarted worker reads every record of both changelogs before it is ready (the test
broker does not compact them: ~1.25 records per event of the backlog). Faust's
`Recovery._slurp_changelogs` takes them from the changelog queue one at a time: a task and a
timer per record (`asyncio.wait_for(queue.get(), 5.0)`), and after each record a count of
the records remaining over every changelog partition. That was a third of a restart's
busy time (docs/performance.md, "Ready in seconds"). Here the records waiting in the queue
are taken at once and the remaining count is made once per take.

The tables' changelog values are JSON written by the worker itself (streams/changelog.py).
Faust decoded each value through its codec registry as the record arrived, and before that
waited for room in its producer buffer (a settings look-up per record); here a fetched
changelog record goes onto the recovery's queue as it came (`ChangelogHandler`), and
`BulkTable` decodes a buffer of values with orjson straight into the in-memory store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from time import monotonic
from typing import Any

import faust
import orjson
from faust import stores
from faust.stores.memory import Store as MemoryStore
from faust.tables.recovery import Recovery
from faust.transport.conductor import Conductor
from faust.types import TP, EventT, Message, StoreT
from mode import Service
from yarl import URL

log = logging.getLogger("vardgaranti.worker")
# seconds without a changelog record before the end of the recovery is checked anyway
# (Faust's own figure: the end is otherwise checked after every take)
IDLE_CHECK_S = 5.0


class DictStore(MemoryStore[Any, Any]):
    """Faust's in-memory store with a dict's own `get` and `pop`: its mapping base class
    looks a key up through `__getitem__` and a KeyError when it is missing, which the live
    view's rebuild after a restart (a checkpoint asked for per counter group) and the
    agents do for most keys they ask about."""

    def get(self, key: Any, default: Any = None) -> Any:
        return self.data.get(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        return self.data.pop(key, *default)


class BulkTable(faust.Table[bytes, Any]):
    """A table in memory whose changelog values are JSON, applied a buffer at a time."""

    def _new_store_by_url(self, url: str | URL) -> StoreT[Any, Any]:
        kind = stores.by_url(url)
        store: StoreT[Any, Any] = (DictStore if kind is MemoryStore else kind)(
            url, self.app, self, table_name=self.name, key_type=self.key_type,
            key_serializer=self.key_serializer, value_serializer=self.value_serializer,
            value_type=self.value_type, loop=self.loop, options=self.options)
        return store

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]]) -> None:
        store = self.data
        if not isinstance(store, MemoryStore):
            super().apply_changelog_batch(batch)  # pragma: no cover  (memory:// only)
            return
        data, partition_of = store.data, store._key_partition
        for event in batch:
            message = event.message
            key, value = message.key, message.value
            if value is None:  # a tombstone
                data.pop(key, None)
                partition_of.pop(key, None)
                continue
            try:
                data[key] = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                log.warning("%s p%d %d: not JSON, left out of the table (%s)", message.topic,
                            message.partition, message.offset, exc)
                continue
            partition_of[key] = message.partition  # the partition Faust forgets it with


class BulkRecovery(Recovery):
    """Faust's recovery, taking every changelog record queued so far in one step."""

    @Service.task
    async def _slurp_changelogs(self) -> None:
        if self.app.in_transaction:  # pragma: no cover  (aborted transactions: Faust's way)
            await Recovery._slurp_changelogs(self)  # a service task: called with its object
            return
        queue = self.tables.changelog_queue
        while not self.should_stop:
            try:
                self.signal_recovery_end.clear()
                try:
                    first = await asyncio.wait_for(queue.get(), timeout=IDLE_CHECK_S)
                except TimeoutError:
                    if self.should_stop:
                        return
                    self._signal_if_recovered()
                    continue
                events = [first]
                try:
                    while True:
                        events.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    pass
                finally:  # an error thrown into the queue: the records before it count
                    await self._take(events)
                self._signal_if_recovered()
                if not self.tables.standbys_ready and not self.standby_remaining_total():
                    self.tables.on_standbys_ready()
            except Exception as exc:  # as Faust: logged, and the recovery goes on
                log.warning("Error in recovery %s", exc)

    async def _take(self, events: Sequence[EventT[Any]]) -> None:
        """Faust's per-record step (offsets, buffers, a buffer applied once full)."""
        now = monotonic()
        active = False
        for event in events:
            try:
                message = event.message
                tp = message.tp
                if tp in self.active_tps:
                    offsets, size = self.active_offsets, "recovery_buffer_size"
                    self._active_events_received_at[tp] = now
                    active = True
                elif tp in self.standby_tps:
                    offsets, size = self.standby_offsets, "standby_buffer_size"
                    self._standby_events_received_at[tp] = now
                else:  # Faust applies it to the previous record's table
                    log.warning("recovery unknown topic %s offset %d", tp, message.offset)
                    continue
                seen = offsets.get(tp)
                if seen is not None and message.offset <= seen:
                    continue
                offsets[tp] = message.offset
                table = self.tp_to_table[tp]
                buffer = self.buffers[table]
                buffer.append(event)
                await table.on_changelog_event(event)
                if len(buffer) >= getattr(table, size):
                    table.apply_changelog_batch(buffer)
                    buffer.clear()
                    self._last_flush_at = now
            except Exception as exc:
                log.warning("Error in recovery %s", exc)
        if active:
            done = monotonic()
            # Faust's estimate of the time remaining averages seconds per record
            self._processing_times.append((done - now) / len(events))
            if len(self._processing_times) > self.num_samples_required_for_estimate:
                self._processing_times.popleft()
            self._last_active_event_processed_at = done

    def _signal_if_recovered(self) -> None:
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()  # what is left in the buffers
            self._set_recovery_ended()
            self.signal_recovery_end.set()


class ChangelogHandler:
    """A fetched record of a table's changelog onto the recovery's queue, undecoded (the
    table's keys and values are raw bytes), as Faust's conductor puts it there otherwise:
    after the flow control lets it (a rebalance holds it), the queue's pressure reported
    for its partition, a full queue waited on. Not waited for: room in the producer buffer,
    which the worker does not write through (streams/changelog.py)."""

    def __init__(self, conductor: Conductor, tp: TP, channel: Any) -> None:
        app: Any = conductor.app
        self.tp, self.channel, self.queue, self.app = tp, channel, channel.queue, app
        self.event = app.conf.Event  # a settings look-up, once
        self.acquire_flow_control = app.flow_control.acquire
        self.on_topic_buffer_full = app.sensors.on_topic_buffer_full
        self.consumer = app.consumer

    async def __call__(self, message: Message) -> None:
        await self.acquire_flow_control()
        message.refcount += 1
        event = self.event(self.app, message.key, message.value, message.headers, message)
        if self.queue.full():
            self.on_topic_buffer_full(self.tp)
            await self.channel.put(event)
            return
        self.queue.put_nowait_enhanced(event, on_pressure_high=self.on_pressure_high,
                                       on_pressure_drop=self.on_pressure_drop)

    def on_pressure_high(self) -> None:
        self.on_topic_buffer_full(self.tp)
        self.consumer.on_buffer_full(self.tp)

    def on_pressure_drop(self) -> None:
        self.consumer.on_buffer_drop(self.tp)


class ChangelogConductor(Conductor):
    """Faust's conductor, with `ChangelogHandler` for a partition of a table's changelog
    that only its table reads with raw keys and values."""

    def _build_handler(self, tp: TP, channels: Any) -> Any:
        if len(channels) == 1:
            (channel,) = channels
            tables: Any = self.app.tables
            if (tp.topic in tables.changelog_topics and channel.queue is tables.changelog_queue
                    and channel.key_type is bytes and channel.value_type is bytes):
                return ChangelogHandler(self, tp, channel)
        return super()._build_handler(tp, channels)
