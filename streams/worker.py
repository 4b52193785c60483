"""The two agents of the streaming mode and the state they keep (SPEC §3, §5.2).

`on_events` validates each event (bad ones to the dead-letter topic with reason and source
offset), applies it to its case in the `cases` table through the pure core, and sends the
resulting deltas, re-keyed by indicator × day × unit and tagged with their source offset,
to the deltas topic. `on_deltas` keeps the per-day counters in the `counts` table.

Order of writes, so that nothing is lost or counted twice when a worker dies at any point
(offsets are committed after a batch, so a batch may be processed again):
1. deltas and dead letters are sent and acknowledged;
2. then the cases are written to their changelog and acknowledged (streams/changelog.py:
   not through Faust's producer buffer, which a commit does not reliably wait for);
3. then breach/at-risk notices are sent, then marked as sent in the case.
A case written in (2) makes its events repeats on reprocessing (no deltas); a case not
written makes them produce the same deltas again, with the same offsets, which the counter
groups skip. Notices are at least once with stable ids; a restart does not repeat them
unless the worker died between sending and marking.

Each process also keeps in-memory mirrors of its partitions (counters, open clocks, the
due-date index for notices) for /metrics and the API; they are rebuilt from the tables
whenever the partition assignment changes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import orjson

from consumers.batches import describe
from models import measures
from models.calendar import local_day
from models.casestate import CaseState
from models.clocks import ClockView, to_fact
from models.countergroup import (
    CounterGroup,
    Entry,
    GroupEntry,
    group_key,
    parse_route_key,
    route_key,
)
from models.deadletter import DeadLetter
from models.engine import at_risk_counts
from models.events import Rejection, parse_event
from models.indicators import INDICATORS
from models.measures import Key, Period, Row, accumulate
from models.notices import due
from models.worklist import AtRisk, worklist
from streams.app import Monitor
from streams.changelog import delivered as _delivered
from streams.changelog import put
from web.metrics import MetricsSnapshot

log = logging.getLogger("vardgaranti.worker")

# notices can become due on these days relative to the deadline: at-risk from the horizon
# on, breach the day after the deadline
_NOTICE_DAYS = tuple((-i.at_risk_days, 1) for i in INDICATORS)


class Worker:
    def __init__(self, monitor: Monitor) -> None:
        self.m = monitor
        self.rules = monitor.settings.rules()
        self.lateness_us = monitor.settings.allowed_lateness_us
        self.live = monitor.settings.live_watermark
        self.counts: Counter[Key] = Counter()
        self.open_clocks: dict[bytes, list[ClockView]] = {}
        self.due_index: dict[int, set[bytes]] = defaultdict(set)
        self.checked_day: int | None = None
        self.processed: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.duplicates = 0
        self.newest_us: int | None = None
        self.last_event_wall: float | None = None
        self.positions: dict[tuple[str, int], int] = {}  # next offset per topic/partition
        self.notices_sent = 0
        self._assignment: frozenset[Any] | None = None

    # ------------------------------------------------------------ time

    @property
    def watermark_us(self) -> int | None:
        """Newest event time minus the allowed lateness; the wall clock if later and live."""
        wall = int(time.time() * 1_000_000) if self.live else None
        if self.newest_us is None:
            return wall
        return max(self.newest_us - self.lateness_us, wall or 0)

    async def tick(self) -> None:
        """On a timer: in live mode the watermark moves without events, and so do notices."""
        if self.live and self.recovered():
            await self._notify({})

    def today(self) -> date | None:
        wm = self.watermark_us
        return date.fromordinal(local_day(wm)) if wm is not None else None

    def _seen(self, ts: int) -> None:
        if self.newest_us is None or ts > self.newest_us:
            self.newest_us = ts

    # ------------------------------------------------------------ events -> cases -> deltas

    async def on_events(self, batch: Sequence[Any]) -> None:
        self.refresh()
        touched: dict[bytes, CaseState] = {}
        deltas: dict[tuple[bytes, int], list[Entry]] = defaultdict(list)
        dead: list[DeadLetter] = []
        for event in batch:
            msg = event.message
            self.positions[(msg.topic, msg.partition)] = msg.offset + 1
            raw = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
            parsed = parse_event(raw)
            if isinstance(parsed, Rejection):
                self.rejected[parsed.reason] += 1
                source = f"{msg.topic}/{msg.partition}/{msg.offset}"
                dead.append(DeadLetter.of(source, parsed.reason, parsed.message, raw))
                continue
            key = parsed["case_id"].encode()
            state = touched.get(key) or self._case(key, msg.partition)
            fact = to_fact(parsed)
            changes = state.add(fact, self.rules)
            if changes is None:
                self.duplicates += 1
                continue
            touched[key] = state
            self.processed[parsed["type"]] += 1
            self._seen(fact.ts)
            for k, n in changes:
                deltas[(route_key(k), msg.partition)].append(
                    (msg.offset, k[0], k[3], k[4], n))
        log.info("%s: %d events, %d dead letters, %d cases, %d delta records",
                 _spans(batch), len(batch), len(dead), len(touched), len(deltas))
        # (1) deltas and dead letters, acknowledged before the cases are written
        sends = [
            await self.m.deltas.send(
                key=rkey, value=orjson.dumps({"p": source, "e": entries, "w": self.newest_us}))
            for (rkey, source), entries in deltas.items()
        ]
        sends += [await self.m.dlq.send(value=d.to_json()) for d in dead]
        await _delivered(sends)
        # (2) the cases, acknowledged before the batch (and so its offsets) is done
        await _delivered([await self._store_case(key, state) for key, state in touched.items()])
        # (3) notices that the watermark or these events made due
        await self._notify(touched)
        self.last_event_wall = time.time()

    def _case(self, key: bytes, partition: int) -> CaseState:
        value = self.m.cases.data.get(key)
        return CaseState.from_json(value) if value is not None else CaseState(partition)

    async def _store_case(self, key: bytes, state: CaseState) -> Any:
        self._index(key, state.clocks)
        return await put(self.m.cases, state.partition, key, state.to_json())

    def _index(self, key: bytes, clocks: list[ClockView]) -> None:
        still = [c for c in clocks if c.state == "open"]
        if not still:
            self.open_clocks.pop(key, None)
            return
        self.open_clocks[key] = still
        for c in still:
            for offset in _NOTICE_DAYS[c.indicator]:
                self.due_index[c.deadline + offset].add(key)

    async def _notify(self, touched: dict[bytes, CaseState]) -> None:
        wm = self.watermark_us
        if wm is None:
            return
        today = local_day(wm)
        candidates = dict(touched)
        if self.checked_day is None or today > self.checked_day:
            first = min(self.due_index, default=today) if self.checked_day is None else (
                self.checked_day + 1)
            for day in range(first, today + 1):
                for key in self.due_index.pop(day, ()):
                    if key not in candidates and key in self.open_clocks:
                        candidates[key] = self._case(key, 0)
            self.checked_day = today
        marked: list[tuple[bytes, CaseState]] = []
        sends = []
        for key, state in candidates.items():
            notices = due(key.decode(), state.clocks, state.sent, today)
            if not notices:
                continue
            for n in notices:
                sends.append(await self.m.breaches.send(key=key, value=orjson.dumps(n.as_dict())))
                state.sent.append(n.notice_id)
            marked.append((key, state))
        await _delivered(sends)
        await _delivered([await self._store_case(key, state) for key, state in marked])
        self.notices_sent += len(sends)

    # ------------------------------------------------------------ deltas -> counters

    async def on_deltas(self, batch: Sequence[Any]) -> None:
        self.refresh()
        groups: dict[bytes, CounterGroup] = {}
        for event in batch:
            msg = event.message
            self.positions[(msg.topic, msg.partition)] = msg.offset + 1
            ind, unit = parse_route_key(bytes(msg.key))
            body = orjson.loads(event.value)
            if body.get("w") is not None:
                self._seen(int(body["w"]))
            by_day: dict[int, list[GroupEntry]] = defaultdict(list)
            for offset, measure, day, until, change in body["e"]:
                by_day[day].append((offset, measure, until, change))
            for day, entries in by_day.items():
                key = group_key(ind, day, unit)
                group = groups.get(key)
                if group is None:
                    value = self.m.counts.data.get(key)
                    group = groups[key] = (
                        CounterGroup.from_json(value) if value is not None
                        else CounterGroup(msg.partition)
                    )
                for measure, until, change in group.apply(int(body["p"]), entries):
                    self.counts[(measure, ind, unit, day, until)] += change
        await _delivered([await put(self.m.counts, group.partition, key, group.to_json())
                          for key, group in groups.items()])
        log.info("%s: %d delta records, %d counter groups", _spans(batch), len(batch),
                 len(groups))

    # ------------------------------------------------------------ mirrors

    def refresh(self) -> None:
        """Rebuild the mirrors when this process's partitions changed (after recovery)."""
        app = self.m.app
        if not self.recovered():
            return
        assignment = frozenset(app.consumer.assignment())
        if assignment == self._assignment:
            return
        self._assignment = assignment
        s = self.m.settings
        mine = {(tp.topic, tp.partition) for tp in assignment}
        self.counts.clear()
        self.open_clocks.clear()
        self.due_index.clear()
        self.checked_day = None
        for key, value in list(self.m.counts.data.items()):
            if (self.m.deltas.get_topic_name(), value["p"]) in mine:
                self.counts.update(dict(CounterGroup.from_json(value).items(key)))
        for key, value in list(self.m.cases.data.items()):
            if (s.events_topic, value["p"]) in mine:
                state = CaseState.from_json(value)
                self._index(key, state.clocks)
                self._seen(state.newest_us)
        log.info("partitions assigned: %d cases with open clocks, %d counters",
                 len(self.open_clocks), len(self.counts))

    def clocks(self) -> Iterable[tuple[str, ClockView]]:
        for key, clocks in self.open_clocks.items():
            case_id = key.decode()
            for c in clocks:
                yield case_id, c

    @property
    def ignored(self) -> dict[str, int]:
        return measures.ignored(self.counts.items(), self.duplicates)

    def snapshot(self) -> MetricsSnapshot:
        self.refresh()
        today = self.today()
        at_risk = (at_risk_counts((c for _, c in self.clocks()), today.toordinal())
                   if today is not None else {})
        return MetricsSnapshot(
            counts=list(self.counts.items()), watermark_us=self.watermark_us, at_risk=at_risk,
            processed=self.processed, rejected=self.rejected, ignored=self.ignored,
            last_event_wall=self.last_event_wall, newest_event_us=self.newest_us,
            consumer_lag=self.lag(),
        )

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

    # ------------------------------------------------------------ the API's source

    def per_unit(self, period: Period, indicator: str | None = None) -> dict[tuple[int, str], Row]:
        rows = accumulate(self.counts.items(), period)
        if indicator is None:
            return rows
        return {k: r for k, r in rows.items() if r.indicator == indicator}

    def at_risk(self, today: date, indicator: str | None = None, unit: str | None = None,
                limit: int = 1000) -> list[AtRisk]:
        return worklist(self.clocks(), today, indicator, unit, limit)

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


def _spans(batch: Sequence[Any]) -> str:
    return describe((e.message.topic, e.message.partition, e.message.offset) for e in batch)
