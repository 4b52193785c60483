"""Fetched records of the worker's topics handed to its agents whole (streams/intake.py):
batches as fetched, acknowledged once processed, dropped unacknowledged when stale."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from weakref import WeakSet

import pytest
from faust.types import TP
from mode.utils.locks import Event
from mode.utils.queues import FlowControlEvent

from streams.intake import Batch, Intake, acknowledge
from tests.streams.fakes import Record

TOPIC = "ev"


class Consumer:
    """The bookkeeping of Faust's consumer that acknowledging touches."""

    def __init__(self) -> None:
        self._unacked_messages: WeakSet[Any] = WeakSet()
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._acked_index: dict[TP, set[int]] = defaultdict(set)
        self._acked: dict[TP, list[int]] = defaultdict(list)
        self._n_acked = 0
        self._waiting_for_ack: asyncio.Future[None] | None = None
        self.high: dict[TP, int] = {}

    def highwater(self, tp: TP) -> int | None:
        return self.high.get(tp)


class App:
    def __init__(self) -> None:
        self.flow_control = FlowControlEvent()
        self.flow_control.resume()
        self.consumer_generation_id = 1
        self.consumer = Consumer()


def records(partition: int, first: int, n: int) -> list[Record]:
    return [Record(TOPIC, partition, o, None, b"x") for o in range(first, first + n)]


def offsets(batch: Batch) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in batch]


async def served(intake: Intake, n: int, during: Callable[[Batch], Any] | None = None
                 ) -> list[Batch]:
    """The first `n` batches the agent's loop handles."""
    seen: list[Batch] = []
    done = Event()

    async def handle(batch: Batch) -> None:
        if during is not None:
            during(batch)
        seen.append(batch)
        if len(seen) == n:
            done.set()

    task = asyncio.ensure_future(intake.serve(handle))
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        task.cancel()
    return seen


def test_waiting_chunks_make_one_batch_up_to_the_most() -> None:
    async def main() -> list[list[tuple[int, int]]]:
        app = App()
        intake = Intake(app, TOPIC, most=5)
        await intake.put(records(0, 0, 3), 1)
        await intake.put(records(1, 0, 2), 1)
        await intake.put(records(0, 3, 7), 1)  # split into chunks of 5 and 2
        return [offsets(b) for b in await served(intake, 3)]

    first, second, third = asyncio.run(main())
    assert first == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert second == [(0, 3), (0, 4), (0, 5), (0, 6), (0, 7)]
    assert third == [(0, 8), (0, 9)]


def test_a_batch_is_tracked_while_handled_and_acknowledged_after() -> None:
    async def main() -> tuple[list[int], list[int], int, list[int]]:
        app = App()
        consumer = app.consumer
        consumer._committed_offset[TP(TOPIC, 0)] = 2  # offsets before it are done already
        intake = Intake(app, TOPIC, most=10)
        tracked: list[int] = []
        await intake.put(records(0, 0, 5), 1)
        await served(intake, 1, lambda _: tracked.append(len(consumer._unacked_messages)))
        return (tracked, consumer._acked[TP(TOPIC, 0)], consumer._n_acked,
                [len(consumer._unacked_messages)])

    tracked, acked, n, after = asyncio.run(main())
    assert tracked == [1]  # a rebalance would wait for it
    assert acked == [2, 3, 4] and n == 3
    assert after == [0]


def test_a_batch_that_fails_is_not_acknowledged() -> None:
    async def main() -> tuple[list[int], int]:
        app = App()
        intake = Intake(app, TOPIC, most=10)
        await intake.put(records(0, 0, 3), 1)

        async def fails(batch: Batch) -> None:
            raise RuntimeError("broker gone")

        with pytest.raises(RuntimeError, match="broker gone"):
            await intake.serve(fails)
        return app.consumer._acked[TP(TOPIC, 0)], len(app.consumer._unacked_messages)

    assert asyncio.run(main()) == ([], 0)


@pytest.mark.parametrize("stale", ["new generation", "flow suspended"])
def test_records_fetched_before_a_rebalance_are_dropped_unacknowledged(stale: str) -> None:
    async def main() -> tuple[list[list[tuple[int, int]]], list[int]]:
        app = App()
        intake = Intake(app, TOPIC, most=10)
        await intake.put(records(0, 0, 3), 1)
        if stale == "new generation":
            app.consumer_generation_id = 2
        else:
            app.flow_control.suspend()

        async def later() -> None:
            await asyncio.sleep(0.05)
            app.flow_control.resume()  # clears the intake too
            await intake.put(records(0, 0, 2), app.consumer_generation_id)  # after the seek

        pending = asyncio.ensure_future(later())
        seen = await served(intake, 1)
        await pending
        return [offsets(b) for b in seen], app.consumer._acked[TP(TOPIC, 0)]

    seen, acked = asyncio.run(main())
    assert seen == [[(0, 0), (0, 1)]]  # only what was fetched again
    assert acked == [0, 1]


def test_a_full_intake_holds_the_fetch_loop_until_taken_or_cleared() -> None:
    async def main() -> tuple[bool, bool]:
        app = App()
        intake = Intake(app, TOPIC, most=2, chunks=1)
        await intake.put(records(0, 0, 2), 1)
        put = asyncio.ensure_future(intake.put(records(0, 2, 2), 1))
        await asyncio.sleep(0.05)
        held = not put.done()
        app.flow_control.clear()  # a rebalance: what waits is dropped, the put goes on
        await asyncio.wait_for(put, 1)
        return held, put.done()

    assert asyncio.run(main()) == (True, True)


@pytest.mark.parametrize("backlog", [True, False])
def test_a_batch_waits_to_fill_only_while_the_broker_holds_more(backlog: bool) -> None:
    async def main() -> list[list[tuple[int, int]]]:
        app = App()
        if backlog:
            app.consumer.high[TP(TOPIC, 0)] = 100  # the broker has offsets up to 99
        intake = Intake(app, TOPIC, most=10, within=1.0)
        await intake.put(records(0, 0, 3), 1)

        async def next_fetch() -> None:
            await asyncio.sleep(0.1)
            await intake.put(records(0, 3, 3), 1)

        pending = asyncio.ensure_future(next_fetch())
        seen = await served(intake, 1)
        await pending
        return [offsets(b) for b in seen]

    (batch,) = asyncio.run(main())
    assert len(batch) == (6 if backlog else 3)


def test_acknowledging_counts_each_offset_once() -> None:
    consumer = Consumer()
    batch = records(0, 0, 3) + records(1, 5, 2)
    acknowledge(consumer, batch)
    acknowledge(consumer, records(0, 1, 3))  # 1 and 2 again, 3 new
    assert consumer._acked[TP(TOPIC, 0)] == [0, 1, 2, 3]
    assert consumer._acked[TP(TOPIC, 1)] == [5, 6]
    assert consumer._n_acked == 6
