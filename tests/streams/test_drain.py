"""The fetch loop's message delivery (streams/drain.py): in place when the callback does not
wait, Faust's race against a suspended flow when it does."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import faust
import pytest
from faust.transport.consumer import Consumer
from mode import Service

from streams.drain import deliver, drain_messages


class FakeConsumer(Service):
    """What `deliver` needs of a Faust consumer: the suspend-flow event and `wait_first`."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


def test_a_callback_that_does_not_wait_runs_in_place() -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        async def callback() -> None:
            seen.append("delivered")

        tasks = len(asyncio.all_tasks())
        consumer = FakeConsumer()
        step = callback()
        await deliver(consumer, step)
        assert len(asyncio.all_tasks()) == tasks  # no task was made for it
        return seen

    assert asyncio.run(main()) == ["delivered"]


def test_a_callback_that_waits_finishes_with_its_result_and_errors() -> None:
    async def main() -> list[Any]:
        seen: list[Any] = []
        consumer = FakeConsumer()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)  # full: the next put waits

        async def put(n: int) -> None:
            await queue.put(n)
            await asyncio.sleep(0)
            seen.append(n)

        async def drain() -> None:
            await asyncio.sleep(0.01)
            seen.append(queue.get_nowait())

        async def fails() -> None:
            await asyncio.sleep(0)
            raise ValueError("bad message")

        await asyncio.gather(deliver(consumer, put(1)), drain())
        with pytest.raises(ValueError, match="bad message"):
            await deliver(consumer, fails())
        return seen

    assert asyncio.run(main()) == [0, 1]


def test_a_suspended_flow_cancels_a_waiting_callback() -> None:
    async def main() -> tuple[list[str], int]:
        seen: list[str] = []
        consumer = FakeConsumer()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)

        async def put() -> None:
            try:
                await queue.put(1)
                seen.append("put")
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        async def rebalance() -> None:
            await asyncio.sleep(0.01)
            consumer.suspend_flow.set()

        await asyncio.gather(deliver(consumer, put()), rebalance())
        await asyncio.sleep(0)
        await deliver(consumer, put())  # while suspended: not run at all
        return seen, queue.qsize()

    assert asyncio.run(main()) == (["cancelled"], 1)


def test_the_loop_is_the_one_of_the_faust_version_it_was_copied_from() -> None:
    """streams/drain.py copies Faust's fetch loop: a new Faust needs a look at it first."""
    assert faust.__version__ == "0.15.3"
    faust_loop = inspect.getsource(Consumer._drain_messages)
    assert "await self.wait_first(\n                                callback(message)" in faust_loop
    # and the checks of `getmany`, which the loop folds in: a stopped flow, a new
    # generation, the active partitions, the end offsets for Faust's monitor
    faust_getmany = inspect.getsource(Consumer.getmany)
    for check in ("if not self.flow_active:", "await self.perform_seek()",
                  "if new_generation_id != generation_id:", "tp in self._buffered_partitions",
                  "self.app.monitor.track_tp_end_offset(tp, highwater_mark)"):
        assert check in faust_getmany, check
    assert inspect.iscoroutinefunction(drain_messages)
