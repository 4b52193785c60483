"""An offset is acknowledged only for a record that a stream took to process.

When flow control is suspended (a stop, a rebalance) Faust's stream still drains its queue,
drops each record ("skipped", never handed to the agent) and acknowledges it, so that the
offsets are committed. At a SIGTERM that committed the events waiting in the agent's queue
without processing them: a worker stopped mid-stream committed 77 and 79 offsets past its
last batch on two partitions, and its successor began after them (fulfilments lost, clocks
left open). A stream marks a record as tracked when it takes it, before any skip, so the
consumer here refuses to record the ack of a record that was never tracked: its offset
stays uncommitted and the record is read again after the restart or the rebalance.

That needs one more guard: Faust commits past an unacknowledged record when it is the one
at the committed offset itself (it checks that the first acknowledged offset is at most
one past the committed offset, which is the next to read). Our topics are neither
compacted nor transactional, so the record at the committed offset exists and must be
acknowledged before anything after it is committed.
The worker's own topics no longer pass through Faust's streams: their batches are
acknowledged by streams/intake.py, after processing, so `ack` below now guards only a
record a Faust stream would take; the guard at the committed offset covers both.
See docs/streaming.md, "Delivery guarantees".
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("vardgaranti.worker")


class TakenOnly:
    """Consumer mixin: acks of records no stream took leave their offsets uncommitted."""

    def ack(self, message: Any) -> bool:
        if not message.tracked:
            message.acked = True  # done with here; read again from the committed offset
            log.debug("%s p%d %d dropped untaken: not acknowledged", message.topic,
                      message.partition, message.offset)
            return False
        acked: bool = super().ack(message)  # type: ignore[misc]
        return acked

    def _new_offset(self, tp: Any) -> int | None:
        committed = self._committed_offset[tp]  # type: ignore[attr-defined]
        acked = self._acked[tp]  # type: ignore[attr-defined]
        if committed is not None and acked and min(acked) > committed:
            return None  # the record at the committed offset is not acknowledged yet
        offset: int | None = super()._new_offset(tp)  # type: ignore[misc]
        return offset


class FetchedNotDropped:
    """Consumer mixin: a fetch asks for, and hands on, one fixed set of partitions.

    Faust hands its own set of active partitions to the fetch on the consumer thread and
    keeps changing it meanwhile (pauses at the end of a recovery, at a rebalance). The
    consumer library takes an empty set as "every partition", and Faust then drops, without
    a word, the records of partitions that are not active by the time they arrive; the
    fetch position has moved past them. Seen after a restart: a partition's offsets
    1101-1274 fetched during the end of the recovery, dropped, and never read again (the
    commit held at 1101 behind them). Here the fetch gets a snapshot, nothing when it is
    empty, and the records of every partition in it are passed on (a stream that is not to
    take them skips them unacknowledged, and they are read again after the seek).
    """

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        this: Any = self
        if not this.flow_active:
            await this.wait(this.can_resume_flow)
        try:
            this.not_waiting_next_records.set()
            active = None if this.app.client_only else set(this._get_active_partitions())
            records: Any = {}
            if active is None or active:
                records = await this._getmany(active_partitions=active, timeout=timeout)
            else:
                await this.sleep(1)
            return records, active
        finally:
            this.not_waiting_next_records.set()
