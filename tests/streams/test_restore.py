"""Tables rebuilt from their changelogs in bulk (streams/restore.py), in process.

The worker's real Faust app, tables and recovery; the changelog records are decoded by the
tables' own changelog topics, as the conductor decodes them, and put on the changelog queue
as the fetcher puts them. What a restart must give: the table as the changelog leaves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import faust
import orjson
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP
from faust.types.tuples import Message

from models.settings import Settings
from streams.app import Monitor, build
from streams.restore import BulkRecovery, BulkTable, ChangelogHandler

# (partition, key, value or None for a tombstone), in changelog order per partition
RECORDS: list[tuple[int, bytes, dict[str, Any] | None]] = [
    (0, b"a", {"p": 0, "f": [[1, "x"]], "n": []}),
    (1, b"b", {"p": 1, "f": [], "n": ["breach"]}),
    (0, b"a", {"p": 0, "f": [[1, "x"], [2, "y"]], "n": []}),  # overwritten
    (0, b"c", {"p": 0, "f": [], "n": []}),
    (0, b"c", None),  # gone
    (1, b"d", {"p": 1, "f": [], "n": []}),
    (1, b"d", None),
    (1, b"d", {"p": 1, "f": [[3, "z"]], "n": []}),  # back after its tombstone
]
WANT = {b"a": {"p": 0, "f": [[1, "x"], [2, "y"]], "n": []},
        b"b": {"p": 1, "f": [], "n": ["breach"]},
        b"d": {"p": 1, "f": [[3, "z"]], "n": []}}


def monitor() -> Monitor:
    return build(Settings(kafka_bootstrap="127.0.0.1:1", events_topic="ev", partitions=2))


def messages(topic: str, records: list[tuple[int, bytes, dict[str, Any] | None]] = RECORDS,
             raw: Callable[[dict[str, Any]], bytes] = orjson.dumps) -> list[Message]:
    offsets = [0, 0]
    out = []
    for partition, key, value in records:
        out.append(Message(topic, partition, offsets[partition], 0.0, 0, None, key,
                           None if value is None else raw(value), None))
        offsets[partition] += 1
    return out


async def events(table: Any, msgs: list[Message]) -> list[Any]:
    """Decoded by the table's changelog topic, as the conductor decodes a fetched record."""
    return [await table.changelog_topic.decode(m) for m in msgs]


def test_tables_apply_their_changelog_in_bulk() -> None:
    async def run() -> None:
        m = monitor()
        assert isinstance(m.cases, BulkTable) and isinstance(m.counts, BulkTable)
        cases: Any = m.cases
        batch = await events(cases, messages(cases.changelog_topic.get_topic_name()))
        assert all(isinstance(e.value, bytes | None) for e in batch)  # not decoded on the way
        cases.apply_changelog_batch(batch)
        assert dict(cases.data.data) == WANT
        # the partitions Faust forgets keys with when a partition is reassigned
        assert cases.data._key_partition == {b"a": 0, b"b": 1, b"d": 1}
    asyncio.run(run())


def test_as_faust_applies_the_same_changelog_with_its_json_codec() -> None:
    """The bulk apply keeps the stock table's result (its values decoded on the way in)."""
    async def run() -> None:
        app = faust.App("stock", broker="kafka://127.0.0.1:1", store="memory://")
        stock: Any = app.Table("cases", partitions=2, key_type=bytes)
        stock.apply_changelog_batch(
            await events(stock, messages(stock.changelog_topic.get_topic_name())))
        assert dict(stock.data.data) == WANT
    asyncio.run(run())


def test_a_value_that_is_not_json_is_left_out_and_the_rest_applied() -> None:
    async def run() -> None:
        m = monitor()
        counts: Any = m.counts
        msgs = messages(counts.changelog_topic.get_topic_name())
        msgs[5].value = b"{not json"  # d's first value
        counts.apply_changelog_batch(await events(counts, msgs))
        assert dict(counts.data.data) == WANT
    asyncio.run(run())


class Restore:
    """A recovery under way: the changelog partitions, their highwaters, the queue filled."""

    def __init__(self, table: Any, recovery: Recovery, msgs: list[Message]) -> None:
        self.table, self.recovery = table, recovery
        self.tps = {TP(m.topic, m.partition) for m in msgs}
        recovery.active_tps = set(self.tps)
        for tp in self.tps:
            recovery.tp_to_table[tp] = table
            recovery.active_offsets[tp] = -1
            recovery.active_highwaters[tp] = max(m.offset for m in msgs if m.tp == tp)
        recovery._set_recovery_started()
        self.msgs = msgs
        self.counted = 0
        remaining = recovery.need_recovery

        def need_recovery() -> bool:
            self.counted += 1
            return remaining()

        recovery.need_recovery = need_recovery  # type: ignore[method-assign]

    async def run(self, slurp: Any) -> None:
        """Every record queued, then the recovery's reading until it says it is done."""
        queue = self.recovery.tables.changelog_queue
        for event in await events(self.table, self.msgs):
            queue.put_nowait(event)
        task = asyncio.ensure_future(slurp(self.recovery))
        await asyncio.wait_for(self.recovery.signal_recovery_end.wait(), 10)
        task.cancel()


def restored(bulk: bool, msgs: Callable[[str], list[Message]] = messages) -> Restore:
    async def run() -> Restore:
        m = monitor()
        tables: Any = m.app.tables
        recovery = tables.recovery
        assert isinstance(recovery, BulkRecovery)
        cases: Any = m.cases
        cases.recovery_buffer_size = 3  # full buffers are applied on the way, the rest at the end
        r = Restore(cases, recovery, msgs(cases.changelog_topic.get_topic_name()))
        await r.run(BulkRecovery._slurp_changelogs if bulk else Recovery._slurp_changelogs)
        return r
    return asyncio.run(run())


def test_the_recovery_takes_what_is_queued_at_once_and_ends_at_the_highwaters() -> None:
    r = restored(bulk=True)
    assert dict(r.table.data.data) == WANT
    assert not r.recovery.in_recovery
    assert r.counted == 1  # the records remaining, counted once for the one take


def test_faust_counts_the_records_remaining_after_every_record() -> None:
    """Why the reading is replaced (if a Faust release takes records in bulk, this fails)."""
    r = restored(bulk=False)
    assert dict(r.table.data.data) == WANT
    assert r.counted == len(RECORDS)


def test_records_already_applied_are_not_applied_again() -> None:
    """A changelog partition read again from before its last applied offset (a seek back)
    skips what it has seen, as Faust does."""
    def again(topic: str) -> list[Message]:
        first = messages(topic)
        stale = Message(topic, 0, 0, 0.0, 0, None, b"a", orjson.dumps({"p": 0, "stale": 1}),
                        None)
        return [*first, stale]
    r = restored(bulk=True, msgs=again)
    assert dict(r.table.data.data) == WANT


def test_changelog_records_reach_the_recovery_queue_undecoded() -> None:
    """Through the app's conductor, as the fetcher hands a record on: the table's changelog
    partitions get the plain handler, the events topic Faust's own."""
    async def run() -> None:
        m = monitor()
        app: Any = m.app
        cases: Any = m.cases
        topic = cases.changelog_topic.get_topic_name()
        conductor = app.topics
        # the channel the table manager subscribes for the table when it starts
        changelog = cases.changelog_topic.clone_using_queue(app.tables.changelog_queue)
        handler = conductor._build_handler(TP(topic, 1), {changelog})
        assert isinstance(handler, ChangelogHandler)
        events_channel: Any = m.events
        assert not isinstance(conductor._build_handler(TP("ev", 1), {events_channel}),
                              ChangelogHandler)
        msg = messages(topic)[1]
        app.flow_control.resume()  # as the recovery does before it reads (held until then)
        await asyncio.wait_for(handler(msg), 10)
        got = app.tables.changelog_queue.get_nowait()
        assert (got.key, got.value, got.message) == (b"b", msg.value, msg)
        assert got.value == orjson.dumps(RECORDS[1][2])
    asyncio.run(run())


def test_the_table_store_answers_get_and_pop_as_a_dict() -> None:
    async def run() -> None:
        store: Any = monitor().counts.data
        store[b"k"] = {"p": 0}
        assert store.get(b"k") == {"p": 0} and store.get(b"nope") is None
        assert store.get(b"nope", 1) == 1
        assert store.pop(b"k") == {"p": 0} and store.pop(b"k", None) is None
        with pytest.raises(KeyError):
            store.pop(b"k")
    asyncio.run(run())
