"""Faust's fetch loop without four tasks per message (docs/performance.md).

Faust's `Consumer._drain_messages` hands every fetched message to the conductor through
`wait_first(callback(message), suspend_flow.wait())`: four tasks (the callback, the
suspend-flow wait, and the service's stopped and crashed waits) and an `asyncio.wait`, so
that a rebalance can cancel a callback stuck on a full stream buffer. That was a fifth of
the worker's CPU time. Almost always the callback finishes without waiting (it decodes the
message and puts it on a queue with room), so `deliver` runs it in place first and falls
back to Faust's race only when it does wait. The loop is faust-streaming 0.15's, with
that change and one more: the records of the worker's own topics skip the conductor and
go to their agents whole (streams/intake.py). tests/streams/test_drain.py pins the
version it was copied from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from mode import Service, ServiceT


async def deliver(consumer: Any, step: Coroutine[Any, Any, Any]) -> None:
    """Run a message's callback; raced against a suspended flow only once it has to wait
    (then as Faust does: a rebalance cancels it, and the message is fetched again)."""
    if consumer.suspend_flow.is_set():
        step.close()  # what Faust's race gives at once: the callback cancelled unrun
        return
    try:
        awaited = step.send(None)
    except StopIteration:
        return
    await consumer.wait_first(_finish(step, awaited), consumer.suspend_flow.wait())


async def _finish(step: Coroutine[Any, Any, Any], awaited: Any) -> Any:
    """Drive a coroutine that has yielded `awaited` (a future, or None for a bare yield) to
    its end, as a task would; a cancellation is thrown into it."""
    while True:
        try:
            if awaited is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([awaited])  # done or failed: the coroutine reads it
        except asyncio.CancelledError as stop:
            if isinstance(awaited, asyncio.Future):
                awaited.cancel()  # as a task cancels the future it waits on
            awaited = _throw(step, stop)
            continue
        try:
            awaited = step.send(None)
        except StopIteration as done:
            return done.value


def _throw(step: Coroutine[Any, Any, Any], exc: BaseException) -> Any:
    """Throw `exc` into the coroutine; what it yields next, or `exc` again once it ends."""
    try:
        return step.throw(exc)
    except StopIteration:
        raise exc from None


async def drain_messages(self: Any, fetcher: ServiceT) -> None:  # pragma: no cover
    """`faust.transport.consumer.Consumer._drain_messages` with its `getmany` folded in:
    the records of a topic with an intake (the worker's own, streams/intake.py) are put on
    it whole; every other record becomes a message delivered through `deliver`."""
    callback = self.callback
    consumer_should_stop = cast(Service, self)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    intakes = getattr(self.app, "intakes", {})
    to_message = self._to_message
    track_end = self.app.monitor.track_tp_end_offset
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            records, active = await self._wait_next_records(1.0)
            await self.sleep(0)  # a fetch may return at once, again and again
            if records is None or self.should_stop:
                continue
            if not self.flow_active:  # as getmany: fetched while stopped, read again
                try:
                    await self.perform_seek()
                except Exception as exc:
                    self.log.warning("exception performing seek when flow not active %r", exc)
                continue
            generation = self.app.consumer_generation_id
            for tp, fetched in records.items():
                if not self.flow_active or self.app.consumer_generation_id != generation:
                    break  # a rebalance began: the rest is read again after its seek
                if not (active is None or tp in active or tp in self._buffered_partitions):
                    continue
                intake = intakes.get(tp.topic)
                taken = []
                for record in fetched:
                    offset = record.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(tp.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if intake is not None:
                            taken.append(record)
                        else:
                            num_since_yield += 1
                            if num_since_yield > yield_every:
                                await sleep(0)
                                num_since_yield = 0
                            track_end(tp, self.highwater(tp))
                            await deliver(self, callback(to_message(tp, record)))
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset,
                                     record.key, record.value)
                if taken and intake is not None:
                    await intake.put(taken, generation)
            unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)
