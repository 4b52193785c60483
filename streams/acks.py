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
