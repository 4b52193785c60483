"""The streaming worker's own work per event, in process: no broker, no Faust.

The generated log goes through the worker's two agents (`on_events`, then `on_deltas` with
the deltas it sent) in batches, with the tests' fake topics and tables
(tests/streams/fakes.py), and the CPU time of that is divided by the lines. What the fakes
cost is left out as far as it can be: the producer under the worker keeps the delta
records (the next step needs them) and drops the changelog records unread. So the figure is
the worker's logic (validation, evaluation, deltas, counters, live view, JSON) without
Faust's consuming and the Kafka client, which the broker benchmark (benchmarks.streaming)
adds.

    python -m benchmarks.worker_logic --scale 0.01 --batch 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from benchmarks.streaming import log_file
from streams.run import GC_THRESHOLDS
from tests.streams.fakes import Driver, FakeProducer, fake_worker, faust_producer


def run(lines: list[bytes], batch: int, partitions: int = 6) -> dict[str, float]:
    """Every line through one fake worker in batches of `batch`; the figures."""
    gc.set_threshold(*GC_THRESHOLDS)  # as the worker process sets it
    worker = fake_worker(partitions=partitions)
    driver = Driver(worker, partitions=partitions)
    deltas: Any = worker.m.deltas
    written = {"changelog": 0}

    def deliver(topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        if topic == deltas.name:
            deltas.sent.append((key, value))
        else:
            written["changelog"] += 1

    app: Any = worker.m.app
    app.producer = faust_producer(FakeProducer(deliver))

    async def go() -> None:
        for i in range(0, len(lines), batch):
            await driver.events(lines[i:i + batch])

    cpu = time.process_time()
    asyncio.run(go())
    cpu = time.process_time() - cpu
    return {"lines": len(lines), "cpu_s": cpu, "events_per_cpu_s": len(lines) / cpu,
            "delta_records_per_event": driver.delta_offset / len(lines),
            "changelog_records_per_event": written["changelog"] / len(lines)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.worker_logic",
        description="The streaming worker's logic per event, in process (no broker).")
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--batch", type=int, default=2000, help="events per batch")
    parser.add_argument("--rounds", type=int, default=3, help="runs; each is printed")
    args = parser.parse_args(argv)
    if not args.scale > 0 or args.batch < 1 or args.rounds < 1:
        parser.error("--scale above 0, --batch and --rounds at least 1")
    console = Console()
    with gzip.open(log_file(args.scale, args.year, console), "rb") as fh:
        lines = fh.read().splitlines()
    for _ in range(args.rounds):
        r = run(lines, args.batch)
        console.print(
            f"{r['lines']:,.0f} lines in batches of {args.batch}: {r['cpu_s']:.2f} CPU s, "
            f"{r['events_per_cpu_s']:,.0f} events per CPU second "
            f"({1e6 / r['events_per_cpu_s']:.0f} µs per event); per event "
            f"{r['delta_records_per_event']:.2f} delta records, "
            f"{r['changelog_records_per_event']:.2f} changelog records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
