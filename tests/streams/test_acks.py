"""Issue 18: only records a stream took may have their offsets committed (streams/acks.py).

Faust's stream drains its queue while flow control is suspended (a stop, a rebalance),
dropping each record before it marks it as taken ("tracked") and acknowledging it anyway.
Here the worker's real consumer gets both kinds of ack: the dropped record's offset must
not be recorded for the commit, the taken one's must.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from models.settings import Settings
from streams.app import build

TOPIC = "ev"


def consumer_at(committed: int, acked: list[int]) -> Any:
    async def run() -> Any:
        app: Any = build(Settings(kafka_bootstrap="127.0.0.1:1", events_topic=TOPIC,
                                  partitions=1)).app
        consumer = app.consumer
        consumer._committed_offset[TP(TOPIC, 0)] = committed
        consumer._acked[TP(TOPIC, 0)] = list(acked)
        return consumer
    return asyncio.run(run())


def acks(taken: dict[int, bool], stock: bool = False) -> list[int]:
    """Ack a record at each offset (taken or dropped); the offsets recorded for the commit."""
    async def run() -> list[int]:
        app: Any = build(Settings(kafka_bootstrap="127.0.0.1:1", events_topic=TOPIC,
                                  partitions=1)).app
        app.topics._acking_topics.add(TOPIC)
        consumer = app.consumer
        for offset, was_taken in taken.items():
            message = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None,
                                      generation_id=app.consumer_generation_id)
            message.tracked = was_taken  # what the stream sets when it takes a record
            if stock:
                faust_aiokafka.Consumer.ack(consumer, message)
            else:
                message.ack(consumer)  # the way a stream's ack reaches the consumer
            assert message.acked
        return list(consumer._acked[TP(TOPIC, 0)])

    return asyncio.run(run())


def test_records_dropped_before_a_stream_took_them_are_not_committed() -> None:
    assert acks({10: True, 11: False, 12: False, 13: True}) == [10, 13]
    # the gap at 11-12 holds the commit at 11: both are read again after the restart


def test_faust_alone_would_commit_them() -> None:
    assert acks({10: True, 11: False, 12: False, 13: True}, stock=True) == [10, 11, 12, 13]


def test_nothing_is_committed_past_an_unacknowledged_record_at_the_committed_offset() -> None:
    """Offset 11 is the next to read (committed); 12 and 13 are acknowledged, 11 is not."""
    tp = TP(TOPIC, 0)
    assert consumer_at(11, [12, 13])._new_offset(tp) is None
    assert consumer_at(11, [11, 12, 13])._new_offset(tp) == 14
    stock = consumer_at(11, [12, 13])
    assert faust_aiokafka.Consumer._new_offset(stock, tp) == 14  # Faust would skip 11


def test_a_fetch_asks_for_and_hands_on_the_partitions_active_when_it_began() -> None:
    """A pause while the fetch is under way neither widens it (an empty set would mean
    every partition to the consumer library) nor makes its records be dropped."""
    a, b = TP(TOPIC, 0), TP(TOPIC, 1)

    async def run() -> tuple[Any, Any, list[Any]]:
        app: Any = build(Settings(kafka_bootstrap="127.0.0.1:1", events_topic=TOPIC,
                                  partitions=2)).app
        consumer = app.consumer
        consumer.assignment = lambda: {a, b}
        consumer._set_active_tps({a, b})
        consumer.resume_flow()
        asked: list[Any] = []

        async def getmany(active_partitions: Any, timeout: float) -> Any:
            asked.append(active_partitions)
            consumer.pause_partitions({a, b})  # the recovery ends meanwhile
            return {a: ["record"]}

        consumer._getmany = getmany
        first = await consumer._wait_next_records(0.1)
        second = await consumer._wait_next_records(0.1)  # all paused now: no fetch
        return first, second, asked

    (records, handed_on), (nothing, _), asked = asyncio.run(run())
    assert asked == [{a, b}]  # once, and the set it was given was not emptied under it
    assert records == {a: ["record"]} and a in handed_on  # so getmany passes them on
    assert nothing == {}
