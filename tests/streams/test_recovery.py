"""Issue 18, in process: the end of a table recovery must not throw away stream records.

The worker's real Faust app and consumer, with the broker round trips replaced: the seek to
the committed offsets yields to the event loop, and while it does, a fetcher step puts one
record of every partition the consumer would fetch into an agent's queue (a flow-controlled
queue like Faust's channels, cleared when flow control resumes). That is the interleaving
that lost events on a worker restarted mid-stream (streams/recovery.py).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.tables.recovery import Recovery
from faust.types import TP

from models.settings import Settings
from streams.app import build
from streams.recovery import SeekThenResume

STREAMS = {TP("ev", 0), TP("ev", 1)}
GENERATION = 3


class Harness:
    def __init__(self, rebalance_during_seek: bool = False) -> None:
        monitor = build(Settings(kafka_bootstrap="127.0.0.1:1", events_topic="ev",
                                 partitions=2))
        app: Any = monitor.app
        consumer: Any = app.consumer
        self.app, self.consumer, self.recovery = app, consumer, app.tables.recovery
        consumer.assignment = lambda: set(STREAMS)
        self.consumer.pause_partitions(STREAMS)  # as Faust pauses them for the recovery
        self.app.consumer_generation_id = GENERATION
        self.queue = self.app.FlowControlQueue(maxsize=100, clear_on_resume=True)
        self.taken_during_seek: list[TP] = []
        self.rebalance_during_seek = rebalance_during_seek

        async def perform_seek() -> None:
            self.fetch()
            if self.rebalance_during_seek:
                self.app.consumer_generation_id = GENERATION + 1
            await asyncio.sleep(0)

        async def maybe_start() -> None:
            return None

        consumer.perform_seek = perform_seek
        app._fetcher = SimpleNamespace(maybe_start=maybe_start)

    def fetch(self) -> list[TP]:
        """One fetcher step: a record of each partition being fetched, into the queue."""
        tps = sorted(self.consumer._get_active_partitions())
        for tp in tps:
            self.queue.put_nowait(tp)
        self.taken_during_seek.extend(tps)
        return tps

    async def complete(self, stock: bool = False) -> None:
        method = Recovery.on_recovery_completed if stock else SeekThenResume.on_recovery_completed
        await method(self.recovery, GENERATION)


def completed(stock: bool = False, rebalance_during_seek: bool = False) -> Harness:
    """A recovery completed (the app is built in the loop, as Faust's services expect)."""
    async def run() -> Harness:
        h = Harness(rebalance_during_seek)
        await h.complete(stock)
        return h
    return asyncio.run(run())


def test_stream_partitions_resume_only_after_the_seek_and_the_queue_clearing() -> None:
    h = completed()
    assert isinstance(h.recovery, SeekThenResume)
    assert h.taken_during_seek == []  # nothing fetched while the positions moved
    assert h.consumer._get_active_partitions() == STREAMS
    assert not h.consumer._paused_partitions & STREAMS
    h.taken_during_seek.clear()
    assert h.fetch() == sorted(STREAMS)
    assert h.queue.qsize() == 2  # what is fetched from now on stays for the agents


def test_faust_own_order_throws_away_what_was_fetched_during_the_seek() -> None:
    """Why the recovery is replaced (if a Faust release fixes the order, this fails)."""
    h = completed(stock=True)
    assert sorted(h.taken_during_seek) == sorted(STREAMS)  # fetched past these offsets...
    assert h.queue.qsize() == 0  # ...and cleared before any agent took them


def test_no_resume_when_another_rebalance_began_during_the_seek() -> None:
    h = completed(rebalance_during_seek=True)
    assert h.taken_during_seek == []
    assert h.consumer._paused_partitions >= STREAMS  # the next recovery resumes them
    assert h.consumer.held is None
