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
from streams.worker import Worker
from tests.streams.fakes import (
    FakeProducer,
    Record,
    _Batch,
    fake_worker,
    faust_producer,
)

CASE = "c-1"


def line(event_id: str, kind: str, case: str, at: str, **attributes: str) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": kind, "case_id": case,
                         "occurred_at": at, "unit_id": "vas-ortopedi", "patient_ref": "p-1",
                         "attributes": attributes})


def event(offset: int, raw: bytes) -> Record:
    return Record("ev", 0, offset, None, raw)


class GatedProducer(FakeProducer):
    """Wraps the fake worker's producer. `gate_on`: the first batch to that topic is
    acknowledged only when the test opens the gate. `hold_on`: once armed, the next batch to
    that topic waits inside the producer until the test releases it."""

    def __init__(self, inner: FakeProducer, gate_on: str = "", hold_on: str = "") -> None:
        super().__init__(inner.deliver)
        self.gate_on, self.hold_on = gate_on, hold_on
        self.gate: asyncio.Future[None] | None = None
        self.armed = False
        self.held: asyncio.Future[None] | None = None

    async def send_batch(self, batch: _Batch, topic: str, *,
                         partition: int) -> asyncio.Future[None]:
        if topic == self.hold_on and self.armed:
            self.armed = False
            self.held = asyncio.get_running_loop().create_future()
            await self.held
        done = await super().send_batch(batch, topic, partition=partition)
        if topic == self.gate_on and self.gate is None:
            self.gate = asyncio.get_running_loop().create_future()
            return self.gate
        return done


def gated(worker: Worker, **how: str) -> GatedProducer:
    app: Any = worker.m.app
    producer = GatedProducer(app.producer._ensure_producer(), **how)
    app.producer = faust_producer(producer)
    return producer


async def breach_due(worker: Worker) -> None:
    """A referral, then the watermark past its 90-day limit: its clock is due for a breach."""
    referral = line("e1", "referral.issued", CASE, "2024-01-02T10:00:00+01:00",
                    pathway="specialist", sex="F", age_band="18-44")
    await worker.on_events([event(0, referral)])
    worker._due |= worker.view.advance(
        int(datetime(2024, 5, 2, tzinfo=UTC).timestamp() * 1_000_000))
    assert CASE in worker._due


def facts_of(value: Any) -> set[str]:
    return {f.event_id for f in CaseState.from_json(value).facts}


VISIT = line("e2", "visit.completed", CASE, "2024-04-30T10:00:00+02:00")


def test_a_notice_marked_while_an_event_is_written_keeps_the_event() -> None:
    worker = fake_worker(partitions=1)
    breaches = gated(worker, gate_on="breaches")

    async def main() -> Any:
        await breach_due(worker)
        marking = asyncio.ensure_future(worker._notify({}))  # as from on_deltas
        while breaches.gate is None:
            await asyncio.sleep(0)
        # the visit (late) is processed and written while the breach is unacknowledged
        # (its own notices then wait for the marking's turn)
        events = asyncio.ensure_future(worker.on_events([event(1, VISIT)]))
        for _ in range(1000):
            if "e2" in facts_of(worker.m.cases.data[CASE.encode()]):
                break
            await asyncio.sleep(0)
        assert "e2" in facts_of(worker.m.cases.data[CASE.encode()]), "the visit is written"
        assert breaches.gate is not None
        breaches.gate.set_result(None)
        await asyncio.gather(marking, events)
        return worker.m.cases.data[CASE.encode()]

    stored = CaseState.from_json(asyncio.run(main()))
    assert {f.event_id for f in stored.facts} == {"e1", "e2"}
    assert any(n.startswith("breach:") for n in stored.sent or ())
    changelog = worker.m.cases.changelog  # type: ignore[attr-defined]
    last = [v for _, k, v in changelog if k == CASE.encode()][-1]
    assert {f.event_id for f in CaseState.from_json(last).facts} == {"e1", "e2"}


def test_two_writes_of_a_case_reach_the_changelog_in_the_order_they_were_made() -> None:
    worker = fake_worker(partitions=1)
    producer = gated(worker, hold_on="cases-changelog")

    async def main() -> None:
        await breach_due(worker)
        producer.armed = True  # the mark's record is held in the producer
        marking = asyncio.ensure_future(worker._notify({}))
        while producer.held is None:
            await asyncio.sleep(0)
        events = asyncio.ensure_future(worker.on_events([event(1, VISIT)]))
        for _ in range(20):
            await asyncio.sleep(0)
        producer.held.set_result(None)
        await asyncio.gather(marking, events)

    asyncio.run(main())
    changelog = worker.m.cases.changelog  # type: ignore[attr-defined]
    last = [v for _, k, v in changelog if k == CASE.encode()][-1]
    assert {f.event_id for f in CaseState.from_json(last).facts} == {"e1", "e2"}


def test_an_event_written_while_a_notice_is_marked_keeps_the_mark() -> None:
    """The other way round: the `clocks` agent read the case, then waited for its deltas'
    acknowledgement while the `counters` agent sent a breach and marked it. Writing the copy
    read before would drop the mark: the breach would be sent again without a restart."""
    worker = fake_worker(partitions=1)
    deltas = gated(worker)
    later = orjson.dumps({**orjson.loads(line("e3", "decision.made", CASE,
                                              "2024-04-30T10:00:00+02:00")),
                          "attributes": {"pathway": "specialist", "kind": "treatment"}})
    # a second clock, opened late: it makes deltas, the first one stays open and due

    async def main() -> Any:
        await breach_due(worker)
        deltas.gate_on = "deltas"  # the next deltas are acknowledged when the test says
        events = asyncio.ensure_future(worker.on_events([event(1, later)]))
        for _ in range(100):
            if deltas.gate is not None:
                break
            await asyncio.sleep(0)
        assert deltas.gate is not None, "the event makes deltas"
        await worker._notify({})  # as from on_deltas: the breach sent and marked
        deltas.gate.set_result(None)
        await events
        return worker.m.cases.data[CASE.encode()]

    stored = CaseState.from_json(asyncio.run(main()))
    assert {f.event_id for f in stored.facts} == {"e1", "e3"}
    assert any(n.startswith("breach:") for n in stored.sent or ())
    breaches: Any = worker.m.breaches
    assert [orjson.loads(v)["notice_id"] for _, v in breaches.sent] == [
        n for n in stored.sent or () if n.startswith("breach:")], "sent once"


def test_two_callers_deciding_at_once_send_a_notice_once() -> None:
    """The timer and an agent both find the breach due: the second must not decide while
    the first is still waiting for its send to be acknowledged, before it marked it."""
    worker = fake_worker(partitions=1)
    breaches = gated(worker, gate_on="breaches")

    async def main() -> None:
        await breach_due(worker)
        first = asyncio.ensure_future(worker._notify({}))  # as from the counters agent
        while breaches.gate is None:
            await asyncio.sleep(0)
        worker._due.add(CASE)  # the timer's advance finds the same clock due
        second = asyncio.ensure_future(worker._notify({}))
        for _ in range(20):
            await asyncio.sleep(0)
        assert breaches.gate is not None
        breaches.gate.set_result(None)
        await asyncio.gather(first, second)

    asyncio.run(main())
    sent: Any = worker.m.breaches
    ids = [orjson.loads(v)["notice_id"] for _, v in sent.sent]
    assert ids and len(ids) == len(set(ids)), f"a notice sent twice: {ids}"
