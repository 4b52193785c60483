"""The Faust app takes its fetch wait and producer linger from our settings (no broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from models.settings import Settings
from streams.app import build


def test_fetch_wait_and_linger_reach_the_worker_clients(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", worker_data_dir=str(tmp_path),
                        kafka_fetch_max_wait_ms=25, kafka_producer_linger_ms=7)
    app = build(settings).app
    assert app.conf.producer_linger == 0.007

    async def created() -> tuple[int, int]:
        # constructing the clients does not connect; the consumer reads the wait at start
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        producer = app.producer
        return consumer._fetch_max_wait_ms, producer.linger_ms

    assert asyncio.run(created()) == (25, 7)
