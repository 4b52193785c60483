"""The two agents of the streaming mode and the state they keep (docs/streaming.md).

`on_events` validates each event (bad ones to the dead-letter topic with reason and source
offset), applies it to its case in the `cases` table through the pure core, and sends the
resulting deltas to the deltas topic: one record per indicator × unit and source partition
per batch, each entry tagged with the offset of its event. `on_deltas` keeps the per-day
counters in the `counts` table.

Order of writes, so that nothing is lost or counted twice when a worker dies at any point
(offsets are committed after a batch, so a batch may be processed again):
1. deltas and dead letters are sent and acknowledged;
2. then the cases are written to their changelog and acknowledged (streams/changelog.py:
   one record batch per partition, not through Faust's producer buffer, which a commit
   does not reliably wait for);
3. then breach/at-risk notices are sent, then marked as sent in the case.
A case written in (2) makes its events repeats on reprocessing (no deltas); a case not
written makes them produce the same deltas again, with the same offsets, which the counter
groups skip. Notices are at least once with stable ids; a restart does not repeat them
unless the worker died between sending and marking.

Each process keeps a live view (models.live) of its partitions, fed by both agents in one
synchronous step per batch: /metrics and the API read it on the same event loop, so a read
never sees half a batch. It is rebuilt from the tables whenever the partition assignment
changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson

from consumers.batches import describe, skipped
from consumers.store import Store, StoreError
from models.casestate import CaseState, pack
from models.clocks import Fact, evaluate
from models.countergroup import (
    CounterGroup,
    Entry,
    GroupEntry,
    checkpoint_key,
    fold_through,
    group_key,
    is_checkpoint,
    parse_group_key,
    parse_route_key,
    route_key,
)
from models.deadletter import DeadLetter
from models.indicators import ORDER
from models.ingest import ingest
from models.live import Group, LiveView
from models.measures import Key, Period, Row, accumulate
from models.notices import due
from streams.app import Monitor
from streams.changelog import Outbox, Producer, producer_of
from streams.intake import Batch
from web.metrics import MetricsSnapshot, snapshot_of
from web.reads import LiveSource, NotKept, freeze_loaded

log = logging.getLogger("vardgaranti.worker")
_EVENT_ID = Fact._fields.index("event_id")  # in a fact of a case's JSON form
# a final case not yet in the store is looked up again after the first days, the wait
# doubling up to the second: a backlog run ahead of its sink would otherwise ask the store
# about every final case every week until the end of the log
RETRY_DAYS = (7, 56)
# an unreachable store while cases that may have left are looked up: the batch waits,
# asking again after these seconds, doubling up to the last
STORE_RETRY = (0.5, 30.0)


def wall_us() -> int:
    """The wall clock, for the live watermark (injected into the pure live view)."""
    return int(time.time() * 1_000_000)


class Worker:
    def __init__(self, monitor: Monitor, archive: Store | None = None) -> None:
        """`archive`: the SQL store the sink fills. With it, final cases leave the `cases`
        table (a tombstone on its changelog) and come back from it when an event arrives."""
        self.m = monitor
        self.archive = archive
        s = monitor.settings
        self.grace_days = s.grace_days
        self.evicted = 0
        self._leaving: dict[int, set[bytes]] = {}  # date a final case may leave -> cases
        self._leaves_on: dict[bytes, int] = {}  # case -> its latest date in `_leaving`
        self._retry: dict[bytes, int] = {}  # case missed in the store -> its next wait, days
        self.rules = s.rules()
        self.view = LiveView(s.allowed_lateness_us, wall_us if s.live_watermark else None)
        self.processed: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.duplicates = 0
        self.last_event_wall: float | None = None
        self.positions: dict[tuple[str, int], int] = {}  # next offset per topic/partition
        self.notices_sent = 0
        self._due: set[str] = set()  # cases whose clocks the watermark made due
        self._assignment: frozenset[Any] | None = None
        self.folded = 0  # day groups folded into checkpoints
        # this worker's day groups by day, so that a fold reads the days it folds, not the
        # whole table (a day changes with nearly every batch of a backlog)
        self._day_groups: dict[int, set[bytes]] = {}
        self._folded_on: int | None = None
        self._restart_point: tuple[frozenset[Any] | None, dict[Any, int]] = (None, {})
        # both agents write cases; a send can wait inside the producer, so without turns a
        # later write could reach the changelog before an earlier one of the same case
        self._case_writes = asyncio.Lock()
        # notices are decided, sent and marked by one caller at a time (the two agents and
        # the timer): two callers deciding before either marked would both send the notice
        self._notifying = asyncio.Lock()

    def today(self) -> date | None:
        return self.view.today_date()

    async def tick(self) -> None:
        """On a timer: in live mode the watermark moves without events, and so do notices."""
        if self.view.wall_us is not None and self.recovered():
            self._due |= self.view.advance()
            await self._notify({})

    # ------------------------------------------------------------ events -> cases -> deltas

    async def on_events(self, batch: Batch) -> None:
        self.refresh()
        touched: dict[bytes, CaseState] = {}
        contributions: dict[bytes, list[Key]] = {}  # of a touched case: its next event's old
        # per indicator × unit × source partition, keyed by the first delta's key (its route
        # key is made once per record, not once per delta)
        deltas: dict[tuple[int, str, int], tuple[Key, list[Entry]]] = {}
        dead: list[DeadLetter] = []
        newest = self.view.newest_us
        processed: Counter[str] = Counter()
        duplicates = 0
        batch_in = []
        self._taken(batch)
        for msg in batch:
            raw = msg.value if isinstance(msg.value, bytes) else bytes(msg.value or b"")
            batch_in.append((msg, ingest(raw, f"{msg.topic}/{msg.partition}/{msg.offset}")))
        back = await self._read_back({got.case_id.encode() for _, got in batch_in
                                if not isinstance(got, DeadLetter)})
        for msg, got in batch_in:
            if isinstance(got, DeadLetter):
                dead.append(got)
                continue
            key = got.case_id.encode()
            state = touched.get(key)
            if state is None:
                state = back.get(key) or self._case(key, msg.partition)
                state.partition = msg.partition
            added = state.add(got.fact, self.rules, contributions.get(key))
            if added is None:
                duplicates += 1
                continue
            changes, contributions[key] = added
            touched[key] = state
            processed[got.type] += 1
            newest = max(newest or got.fact.ts, got.fact.ts)
            for k, n in changes:
                record = deltas.get((k[1], k[2], msg.partition))
                if record is None:
                    record = deltas[(k[1], k[2], msg.partition)] = (k, [])
                record[1].append((msg.offset, k[0], k[3], k[4], n))
        log.info("%s: %d events, %d dead letters, %d cases, %d delta records",
                 _spans(batch), len(batch), len(dead), len(touched), len(deltas))
        # (1) deltas and dead letters, acknowledged before the cases are written
        out = Outbox()
        topic = self.m.deltas.get_topic_name()
        for (_, _, source), (first, entries) in deltas.items():
            out.add(topic, route_key(first),
                    orjson.dumps({"p": source, "e": entries, "w": newest}))
        for d in dead:
            out.add(self.m.dlq.get_topic_name(), None, d.to_json())
        await out.deliver(self.producer())
        # (2) the cases, acknowledged before the batch (and so its offsets) is done
        async with self._case_writes:
            for key, state in touched.items():
                # notices the other agent marked on the case since it was read here (while
                # the deltas were awaited) stay marked, or they would be sent again
                now = self.m.cases.data.get(key)
                if now is not None:
                    state.mark_sent(now["n"])
                out.put(self.m.cases, state.partition, key, state.to_json())
            await out.deliver(self.producer())
        # then their clocks and the batch's counts into the live view and the pipeline
        # counters: one synchronous step, which a read sees whole or not at all
        for key, state in touched.items():
            self.view.set_clocks(key.decode(), state.clocks)
            self._note_if_final(key, state)
        self._due |= self.view.advance(newest)
        self.processed.update(processed)
        self.rejected.update(d.reason for d in dead)
        self.duplicates += duplicates
        # (3) notices that the watermark or these events made due
        await self._notify(touched)
        self.last_event_wall = time.time()
        await self._evict()

    # ------------------------------------------------------------ bounded state

    def _note_if_final(self, key: bytes, state: CaseState) -> None:
        if self.archive is not None:
            leave = state.leaves_on(state.clocks, self.grace_days)
            self._retry.pop(key, None)  # touched: its new facts are looked up afresh
            if leave is None:
                self._leaves_on.pop(key, None)  # a clock reopened: its old date is stale
            else:
                self._leave_on(key, leave)

    def _leave_on(self, key: bytes, day: int) -> None:
        self._leaving.setdefault(day, set()).add(key)
        self._leaves_on[key] = day

    async def _evict(self) -> None:
        """Final cases whose facts the store holds leave the table: a tombstone on its
        changelog (the sink keeps their rows), acknowledged in the case writes' turn, so
        that a later write of the same case cannot reach the changelog before it. Not yet
        in the store (the sink is behind, or a backlog is being replayed faster than it
        writes): tried again some days later (RETRY_DAYS)."""
        today = self.view.today
        if self.archive is None or today is None:
            return
        # the date noted last is the one that counts: a case touched since its earlier date
        # was noted again (no need to decode every waiting case each day)
        due: dict[bytes, dict[str, Any]] = {}
        for day in [d for d in self._leaving if d <= today]:
            for key in self._leaving.pop(day):
                if self._leaves_on.get(key) != day:
                    continue
                del self._leaves_on[key]
                value = self.m.cases.data.get(key)
                if value is not None:
                    due[key] = value
        if not due:
            return
        try:
            stored = await asyncio.to_thread(self.archive.facts_of, [k.decode() for k in due])
        except StoreError as exc:
            log.warning("final cases stay in memory: %s", exc)
            stored = {}
        out = Outbox()
        async with self._case_writes:
            for key in due:
                # as the table holds it now: a notice mark may have been written meanwhile
                value = self.m.cases.data.get(key)
                if value is None:
                    continue
                facts = stored.get(key.decode())
                have = {f.event_id for f in facts or ()}
                if not have or not all(f[_EVENT_ID] in have for f in value["f"]):
                    wait = self._retry.get(key, RETRY_DAYS[0])  # not in the store yet
                    self._retry[key] = min(2 * wait, RETRY_DAYS[1])
                    self._leave_on(key, today + wait)
                    continue
                self._retry.pop(key, None)
                out.drop(self.m.cases, int(value["p"]), key)
            dropped = out.count
            await out.deliver(self.producer())
        self.evicted += dropped

    async def _read_back(self, keys: set[bytes]) -> dict[bytes, CaseState]:
        """The cases among `keys` that left the table, as the store holds them."""
        unknown = [k.decode() for k in keys if k not in self.m.cases.data]
        if self.archive is None or not unknown:
            return {}
        out: dict[bytes, CaseState] = {}
        for case_id, facts in (await self._stored(self.archive, unknown)).items():
            state = CaseState(0, pack(tuple(sorted(facts))))  # partition: its event's
            state.keep(evaluate(state.sorted(), self.rules).clocks)
            out[case_id.encode()] = state
        return out

    async def _stored(self, archive: Store, case_ids: list[str]) -> dict[str, list[Fact]]:
        """The stored facts of cases that may have left the table. An unreachable store is
        waited for, nothing taken on meanwhile: a case that left, counted as new from its
        late event alone, would lose its completions (a false breach on the worklist). The
        lag shows the wait; a stop waits too, or a kill leaves the batch uncommitted. In a
        thread: a connection attempt that hangs must not stop the heartbeats."""
        delay, longest = STORE_RETRY
        waited = False
        while True:
            try:
                stored = await asyncio.to_thread(archive.facts_of, case_ids)
            except StoreError as exc:
                log.warning("store unavailable (%s): cases that may have left memory cannot "
                            "be looked up; the batch waits, retrying in %g s", exc, delay)
                waited = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            if waited:
                log.info("store reachable again: the batch goes on")
            return stored

    def _case(self, key: bytes, partition: int) -> CaseState:
        value = self.m.cases.data.get(key)
        return CaseState.from_json(value) if value is not None else CaseState(partition)

    async def _notify(self, touched: dict[bytes, CaseState]) -> None:
        async with self._notifying:
            await self._notify_now(touched)

    async def _notify_now(self, touched: dict[bytes, CaseState]) -> None:
        today = self.view.today
        if today is None:
            return
        candidates = dict(touched)
        for case_id in self._due:
            key = case_id.encode()
            if key not in candidates and key in self.m.cases.data:
                candidates[key] = self._case(key, 0)
        self._due = set()
        marked: dict[bytes, list[str]] = {}
        out = Outbox()
        for key, state in candidates.items():
            # the marks as the table holds them: a batch's copy of its case predates the
            # marks of a call that ran while this one waited for its turn
            now = self.m.cases.data.get(key)
            sent = now["n"] if now is not None else state.sent or ()
            notices = due(key.decode(), state.clocks, sent, today)
            if not notices:
                continue
            for n in notices:
                out.add(self.m.breaches.get_topic_name(), key, orjson.dumps(n.as_dict()))
            marked[key] = [n.notice_id for n in notices]
        if not marked:
            return
        sent = out.count
        await out.deliver(self.producer())
        # marked on the case as the table holds it now: while the sends were awaited the
        # other agent may have written it (a copy read before would drop its new facts)
        async with self._case_writes:
            for key, ids in marked.items():
                value = self.m.cases.data.get(key)
                if value is None:
                    continue  # it left the table meanwhile: a repeat is possible, a loss is not
                state = CaseState.from_json(value)
                state.mark_sent(ids)
                out.put(self.m.cases, state.partition, key, state.to_json())
            await out.deliver(self.producer())
        self.notices_sent += sent

    # ------------------------------------------------------------ deltas -> counters

    async def on_deltas(self, batch: Batch) -> None:
        self.refresh()
        groups: dict[bytes, CounterGroup] = {}
        applied: list[tuple[Key, int]] = []
        newest = None
        self._taken(batch)
        for msg in batch:
            ind, unit = parse_route_key(bytes(msg.key or b""))
            body = orjson.loads(msg.value or b"null")
            source = int(body["p"])
            if body.get("w") is not None:
                newest = max(newest or 0, int(body["w"]))
            by_day: dict[int, list[GroupEntry]] = defaultdict(list)
            for offset, measure, day, until, change in body["e"]:
                by_day[day].append((offset, measure, until, change))
            for day, entries in by_day.items():
                key = self._counter_key(ind, day, unit)
                group = groups.get(key)
                if group is None:
                    value = self.m.counts.data.get(key)
                    if value is not None:
                        group = groups[key] = CounterGroup.from_json(value)
                    else:
                        group = groups[key] = CounterGroup(msg.partition)
                        if not is_checkpoint(key):
                            self._day_groups.setdefault(day, set()).add(key)
                for measure, until, change in group.apply(source, entries):
                    applied.append(((measure, ind, unit, day, until), change))
        out = Outbox()
        for key, group in groups.items():
            out.put(self.m.counts, group.partition, key, group.to_json())
        await out.deliver(self.producer())
        log.info("%s: %d delta records, %d counter groups", _spans(batch), len(batch),
                 len(groups))
        # the counters into the live view: one synchronous step
        self.view.apply(applied)
        self._due |= self.view.advance(newest)
        if self._due:
            await self._notify({})
        await self._fold()

    # ------------------------------------------------------------ bounded counters

    def _counter_key(self, ind: int, day: int, unit: str) -> bytes:
        """Where a day's counters are kept: its own group, or the checkpoint once folded."""
        key = checkpoint_key(ind, unit)
        value = self.m.counts.data.get(key)
        return key if value is not None and day <= value["t"] else group_key(ind, day, unit)

    async def _fold(self) -> None:
        """Once a day: the days no read needs (older than the longest window and the grace
        period) go into one checkpoint per indicator × unit, so the `counts` table stops
        growing with the days (docs/live-view.md). The checkpoint is acknowledged before
        the days' tombstones; a day it already holds is ignored until it is gone."""
        today = self.view.today
        if (today is None or today == self._folded_on or not self._assignment
                or not self._caught_up()):
            return
        self._folded_on = today
        through = fold_through(today, self.grace_days)
        mine = {tp.partition for tp in self._assignment or ()
                if tp.topic == self.m.deltas.get_topic_name()}
        old: dict[bytes, list[tuple[int, bytes]]] = defaultdict(list)
        data = self.m.counts.data
        for day in [d for d in self._day_groups if d <= through]:
            for key in self._day_groups.pop(day):
                value = data.get(key)
                if value is not None and value["p"] in mine:
                    ind, _, unit = parse_group_key(key)
                    old[checkpoint_key(ind, unit)].append((day, key))
        if not old:
            return
        gone: list[tuple[int, bytes]] = []
        checkpoints: dict[bytes, CounterGroup] = {}
        for ckey, days in old.items():
            value = self.m.counts.data.get(ckey)
            cp = CounterGroup.from_json(value) if value is not None else None
            before = cp.through if cp is not None else None
            for day, key in sorted(days):
                group = CounterGroup.from_json(self.m.counts.data[key])
                gone.append((group.partition, key))
                if before is not None and day <= before:
                    continue  # folded before; its tombstone was lost
                if cp is None:
                    cp = CounterGroup(group.partition)
                cp.fold(group, day)
            if cp is not None:
                checkpoints[ckey] = cp
        out = Outbox()
        for key, cp in checkpoints.items():
            out.put(self.m.counts, cp.partition, key, cp.to_json())
        await out.deliver(self.producer())
        for partition, key in gone:  # acknowledged too: no write of the counts overtakes them
            out.drop(self.m.counts, partition, key)
        await out.deliver(self.producer())
        self.folded += len(gone)
        log.info("counters of %d days up to %s folded into %d checkpoints", len(gone),
                 date.fromordinal(through), len(checkpoints))

    def _caught_up(self) -> bool:
        """The deltas that were on the topic when the partitions were assigned are done:
        a crash may have left one day's group behind another's offsets until they are
        processed again, and a checkpoint keeps only the highest offset of the days."""
        if self._restart_point[0] is not self._assignment:
            consumer = self.m.app.consumer
            points = {(tp.topic, tp.partition): consumer.highwater(tp)
                      for tp in self._assignment or ()
                      if tp.topic == self.m.deltas.get_topic_name()}
            if any(h is None for h in points.values()):
                return False
            self._restart_point = (self._assignment, points)
        return all(self.positions.get(tp, 0) >= high
                   for tp, high in self._restart_point[1].items())

    def _taken(self, batch: Batch) -> None:
        """Moves the positions (for the lag) past a batch; offsets the consumer passed over
        are a warning: once the offsets after them are committed, nothing reads them again."""
        for topic, partition, first, last in skipped(self.positions, (
                (r.topic, r.partition, r.offset) for r in batch)):
            log.warning("%s p%d: offsets %d-%d passed over, not taken", topic, partition,
                        first, last)

    def producer(self) -> Producer:
        return producer_of(self.m.app)

    # ------------------------------------------------------------ the live view

    def refresh(self) -> None:
        """Rebuild the live view when this process's partitions changed (after recovery)."""
        if not self.recovered():
            return
        assignment = frozenset(self.m.app.consumer.assignment())
        if assignment == self._assignment:
            return
        self._assignment = assignment
        mine = {(tp.topic, tp.partition) for tp in assignment}
        self.view.reset()
        self._leaving, self._leaves_on, self._retry = {}, {}, {}
        self._day_groups = self._days_of(mine)
        self._due = set()
        self.view.apply(self._counters())
        newest = None
        for key, value in list(self.m.cases.data.items()):
            if (self.m.settings.events_topic, value["p"]) in mine:
                state = CaseState.from_json(value)
                self.view.set_clocks(key.decode(), state.clocks)
                self._note_if_final(key, state)
                newest = max(newest or 0, state.newest_us)
        self._due = self.view.advance(newest)
        freeze_loaded(collect=False)  # a collection would walk the recovered tables too
        log.info("partitions assigned: %d cases with open clocks", self.view.open_cases())

    def snapshot(self) -> MetricsSnapshot:
        self.refresh()
        return snapshot_of(self.view, self.processed, self.rejected, self.duplicates,
                           self.last_event_wall, self.lag())

    def source(self) -> LiveSource:
        """What the API reads."""
        return LiveSource(self.view, self.history, self.ping)

    def _counters(self) -> Iterator[tuple[Key, int]]:
        """The counters of this worker's partitions, from the `counts` table."""
        mine = {(tp.topic, tp.partition) for tp in self._assignment or ()}
        deltas = self.m.deltas.get_topic_name()
        data = self.m.counts.data
        for key, value in list(data.items()):
            if (deltas, value["p"]) in mine and self._counter_key(
                    *parse_group_key(key)) == key:  # not a day a checkpoint holds
                yield from CounterGroup.from_json(value).items(key)

    def _days_of(self, mine: set[tuple[str, int]]) -> dict[int, set[bytes]]:
        """The day groups (not checkpoints) of this worker's partitions, by day."""
        deltas = self.m.deltas.get_topic_name()
        out: dict[int, set[bytes]] = {}
        for key, value in list(self.m.counts.data.items()):
            if (deltas, value["p"]) in mine and not is_checkpoint(key):
                out.setdefault(parse_group_key(key)[1], set()).add(key)
        return out

    def history(self, period: Period, indicator: str | None = None) -> dict[Group, Row]:
        """Rows of a period that ends before the watermark, from this worker's counters
        (they are not kept twice in memory: a past period is a rare read). A period that
        starts on a day folded into a checkpoint is read from the store the sink fills."""
        folded = max((v["t"] for k, v in list(self.m.counts.data.items())
                      if is_checkpoint(k)), default=None)
        if folded is not None and period.first <= folded:
            return self._archived(period, indicator, date.fromordinal(folded))
        rows = accumulate(self._counters(), period)
        if indicator is None:
            return rows
        return {k: r for k, r in rows.items() if k[0] == ORDER[indicator]}

    def _archived(self, period: Period, indicator: str | None, folded: date
                  ) -> dict[Group, Row]:
        why = f"from: the worker keeps the days after {folded} only"
        if self.archive is None:
            raise NotKept(f"{why}, and has no store to read earlier ones from")
        try:
            return self.archive.per_unit(period, indicator)
        except StoreError as exc:
            raise NotKept(f"{why}, and the store cannot be read: {exc}") from None

    def lag(self) -> dict[tuple[str, int], int]:
        consumer = self.m.app.consumer
        out: dict[tuple[str, int], int] = {}
        for tp in self._assignment or ():
            if tp.topic not in (self.m.settings.events_topic, self.m.deltas.get_topic_name()):
                continue
            high = consumer.highwater(tp)
            if high is not None:
                out[(tp.topic, tp.partition)] = max(0, high - self.positions.get(
                    (tp.topic, tp.partition), 0))
        return out

    def ping(self) -> bool:
        """Ready once the tables are recovered, partitions are assigned and the broker answers."""
        self.refresh()
        return self.recovered() and bool(self._assignment) and self.broker_reachable()

    def broker_reachable(self) -> bool:
        """The consumer knows its group coordinator: aiokafka forgets it as soon as a heartbeat
        or a commit cannot reach the broker, and finds it again once the broker answers.
        (Faust keeps the aiokafka consumer on its consumer thread; no public accessor.)"""
        thread = getattr(self.m.app.consumer, "_thread", None)
        consumer: Any = getattr(thread, "_consumer", None)
        return consumer is not None and consumer._coordinator.coordinator_id is not None

    def recovered(self) -> bool:
        """The tables are rebuilt from their changelogs (after start or a rebalance)."""
        tables: Any = self.m.app.tables
        return bool(tables.recovery.completed.is_set())


def _spans(batch: Batch) -> str:
    return describe((r.topic, r.partition, r.offset) for r in batch)
