"""Stream partitions resume only after they are seeked and the agents' queues are cleared.

Faust ends a table recovery (`Recovery.on_recovery_completed`) in this order: resume the
stream partitions, seek them to their committed offsets (a round trip per partition), then
resume flow control, which clears every agent's queue. The fetcher is already running at
that point (it read the changelogs), so records of the resumed partitions arrive while the
seek is under way: some reach an agent, the rest wait in its queue and are thrown away by
the clearing. The consumer's read position is past them by then, and once the seek has
reset it to the committed offset the next record looks like a jump, which Faust records as
a gap (as for a compacted topic) and counts as acknowledged: the thrown-away events were
committed without being processed. Seen on a worker restarted mid-stream: one partition's
offsets 951-998 never processed yet committed (fulfilments lost, their clocks left open),
another partition's commits stuck behind a gap it could not close.

Here the stream partitions stay paused through all of it and are resumed as the last step,
so the first record the agents see is the one at the committed offset.
See docs/streaming.md, "Delivery guarantees".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP

from streams.restore import BulkRecovery

log = logging.getLogger("vardgaranti.worker")


class HeldResume:
    """Consumer mixin: while `held` is a set, resumed partitions are collected in it
    instead of being fetched."""

    held: set[TP] | None = None

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        if self.held is not None:
            self.held.update(tps)
            return
        super().resume_partitions(tps)  # type: ignore[misc]


class SeekThenResume(BulkRecovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        consumer: Any = self.app.consumer
        consumer.held = set()
        try:
            await super().on_recovery_completed(generation_id)
        finally:
            held, consumer.held = consumer.held, None
        # not when another rebalance began meanwhile: its own recovery resumes them
        if held and self.app.consumer_generation_id == generation_id:
            streams = held & set(consumer.assignment())
            consumer.resume_partitions(streams)
            log.info("stream partitions resumed after the seek: %s", ", ".join(
                f"{tp.topic} p{tp.partition}" for tp in sorted(streams)))


class SeekingTableManager(TableManager):
    """The table manager with the recovery above (`TableManager` app setting)."""

    async def on_start(self) -> None:
        # Faust first sleeps a second, for tables that agents declare as they start; the
        # app's tables are all declared when it is built (streams/app.py)
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekThenResume(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
