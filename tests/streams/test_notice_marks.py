"""Issue 18, in process: marking a notice as sent must not write back a stale case.

The `counters` agent sends the notices that a later watermark made due, and marks them on
the case. It read the case before awaiting the sends; meanwhile the `clocks` agent wrote
the case with a new event (here the late visit). Writing the copy read before would drop
that event from the table and its changelog: after a restart the case lacks it, a repeat
of the event counts again, and the sink stores the case without it.

The same loss on the changelog alone: the two agents' writes of one case must reach it in
the order they were made, also when the producer holds the first one back for a while.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from models.casestate import CaseState
from tests.streams.fakes import Event, FakeTable, FakeTopic, Message, _Changelog, fake_worker

CASE = "c-1"


def line(event_id: str, kind: str, case: str, at: str, **attributes: str) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": kind, "case_id": case,
                         "occurred_at": at, "unit_id": "vas-ortopedi", "patient_ref": "p-1",
                         "attributes": attributes})


def event(offset: int, raw: bytes) -> Event:
    return Event(Message("ev", 0, offset, None), raw)


class GatedTopic(FakeTopic):
    """The first send is acknowledged only when the test opens the gate."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate: asyncio.Future[None] | None = None

    async def send(self, key: bytes | None = None, value: bytes = b"") -> asyncio.Future[None]:
        self.sent.append((key, value))
        if self.gate is None:
            self.gate = asyncio.get_running_loop().create_future()
            return self.gate
        return await super().send(key, value)


def test_a_notice_marked_while_an_event_is_written_keeps_the_event() -> None:
    worker = fake_worker(partitions=1)
    breaches = GatedTopic("breaches")
    worker.m.breaches = breaches  # type: ignore[assignment]

    async def main() -> Any:
        referral = line("e1", "referral.issued", CASE, "2024-01-02T10:00:00+01:00",
                         pathway="specialist", sex="F", age_band="18-44")
        await worker.on_events([event(0, referral)])
        # the watermark moves past the 90-day limit: the open clock is due for a breach
        may = int(datetime(2024, 5, 2, tzinfo=UTC).timestamp() * 1_000_000)
        worker._due |= worker.view.advance(may)
        assert CASE in worker._due
        marking = asyncio.ensure_future(worker._notify({}))  # as from on_deltas
        while breaches.gate is None:
            await asyncio.sleep(0)
        # the visit (late) is processed and written while the breach is unacknowledged
        visit = line("e2", "visit.completed", CASE, "2024-04-30T10:00:00+02:00")
        await worker.on_events([event(1, visit)])
        assert breaches.gate is not None
        breaches.gate.set_result(None)
        await marking
        return worker.m.cases.data[CASE.encode()]

    stored = CaseState.from_json(asyncio.run(main()))
    assert {f.event_id for f in stored.facts} == {"e1", "e2"}
    assert any(n.startswith("breach:") for n in stored.sent or ())
    changelog = worker.m.cases.changelog  # type: ignore[attr-defined]
    last = [v for _, k, v in changelog if k == CASE.encode()][-1]
    assert {f.event_id for f in CaseState.from_json(last).facts} == {"e1", "e2"}


class HeldChangelog(_Changelog):
    """Once armed, the next record waits in the producer until the test releases it."""

    armed = False
    held: asyncio.Future[None] | None = None

    async def send(self, key: bytes, value: Any, partition: int, **_: Any
                   ) -> asyncio.Future[None]:
        if HeldChangelog.armed:
            HeldChangelog.armed = False
            HeldChangelog.held = asyncio.get_running_loop().create_future()
            await HeldChangelog.held
        return await super().send(key, value, partition)


class HeldTable(FakeTable):
    @property
    def changelog_topic(self) -> _Changelog:
        return HeldChangelog(self)


def test_two_writes_of_a_case_reach_the_changelog_in_the_order_they_were_made() -> None:
    worker = fake_worker(partitions=1)
    worker.m.cases = HeldTable()  # type: ignore[assignment]

    async def main() -> None:
        referral = line("e1", "referral.issued", CASE, "2024-01-02T10:00:00+01:00",
                         pathway="specialist", sex="F", age_band="18-44")
        await worker.on_events([event(0, referral)])
        worker._due |= worker.view.advance(
            int(datetime(2024, 5, 2, tzinfo=UTC).timestamp() * 1_000_000))
        HeldChangelog.armed = True  # the mark's record is held in the producer
        marking = asyncio.ensure_future(worker._notify({}))
        while HeldChangelog.held is None:
            await asyncio.sleep(0)
        visit = line("e2", "visit.completed", CASE, "2024-04-30T10:00:00+02:00")
        events = asyncio.ensure_future(worker.on_events([event(1, visit)]))
        for _ in range(20):
            await asyncio.sleep(0)
        HeldChangelog.held.set_result(None)
        await asyncio.gather(marking, events)

    asyncio.run(main())
    changelog = worker.m.cases.changelog  # type: ignore[attr-defined]
    last = [v for _, k, v in changelog if k == CASE.encode()][-1]
    assert {f.event_id for f in CaseState.from_json(last).facts} == {"e1", "e2"}
