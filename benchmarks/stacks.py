"""`make stacks` / `python -m benchmarks.stacks`: fresh streaming stacks, one after another.

Each stack gets new topics, a new SQLite store and a sink group of its own; a worker and a
sink are started on them, the first `--lines` lines of a generated year are published, and
the store must equal `vardgaranti report` on the same lines within `--timeout` seconds. Then
both processes get SIGTERM. With `--hog` a CPU-bound child runs alongside, as on a busy
machine. One line per stack, then the count of failures; a failure's diagnosis (the first
differing cell, the offsets of both groups, the process logs) is kept in its directory.

Exit status: 0 when every stack matched, 1 when any did not, 2 for bad options.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pytest

from benchmarks.streaming import broker
from tests.support.streaming import Stack, report_cells, wait_until
from vardgaranti.generate import generate

YEAR = 2024
PERIODS = ((date(YEAR, 1, 1), date(YEAR, 12, 31)),)


@contextlib.contextmanager
def cpu_hog(on: bool) -> Iterator[None]:
    """A busy loop in a child process while the stacks run (when `on`)."""
    if not on:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def one_stack(bootstrap: str, workdir: Path, log: Path, timeout_s: float,
              sink_first: bool) -> float:
    """Seconds from publishing until the store equals the report; raises on a mismatch."""
    stack = Stack(bootstrap, workdir, partitions=6)
    try:
        stack.create_topics()
        if sink_first:  # before the worker has made its changelog topics
            sink, worker = stack.sink(wait=False), stack.worker()
            wait_until("the sink to be ready", sink.ready, logs=stack.logs)
        else:
            worker, sink = stack.worker(), stack.sink()
        want = report_cells(log, PERIODS)
        published = time.monotonic()
        stack.publish(log)
        stack.wait_for_store(want, timeout_s)
        took = time.monotonic() - published
        for proc in (worker, sink):
            code = proc.stop(signal.SIGTERM)
            if code != 0:
                pytest.fail(f"{proc.name} exited with {code} after SIGTERM\n{proc.tail()}")
        return took
    finally:
        stack.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stacks", description=__doc__)
    parser.add_argument("--stacks", type=int, default=50, help="how many (default 50)")
    parser.add_argument("--lines", type=int, default=15, help="lines published (default 15)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per stack")
    parser.add_argument("--hog", action="store_true", help="a CPU-bound process alongside")
    parser.add_argument("--sink-first", action="store_true",
                        help="start the sink before the worker (every other stack with --mixed)")
    parser.add_argument("--mixed", action="store_true",
                        help="alternate: worker first, then sink first")
    parser.add_argument("--keep", type=Path, help="directory for the stacks (default: temp)")
    args = parser.parse_args(argv)
    if args.stacks < 1 or args.lines < 1 or args.timeout <= 0:
        parser.error("--stacks, --lines and --timeout must be positive")

    root = args.keep or Path(tempfile.mkdtemp(prefix="vg-stacks-"))
    root.mkdir(parents=True, exist_ok=True)
    year = root / "year.jsonl"
    generate(year, YEAR, seed=3, scale=0.0005, bad_rate=0.0, progress=False)
    log = root / "small.jsonl"
    log.write_bytes(b"".join(year.read_bytes().splitlines(keepends=True)[: args.lines]))

    took: list[float] = []
    failed: list[int] = []
    with broker() as (bootstrap, _), cpu_hog(args.hog):
        for i in range(1, args.stacks + 1):
            workdir = root / f"stack-{i:03d}"
            workdir.mkdir()
            try:
                sink_first = args.sink_first or (args.mixed and i % 2 == 0)
                took.append(one_stack(bootstrap, workdir, log, args.timeout, sink_first))
                print(f"stack {i}: store equal to the report {took[-1]:.1f} s after publishing",
                      flush=True)
            except pytest.fail.Exception as exc:
                failed.append(i)
                (workdir / "failure.txt").write_text(str(exc))
                print(f"stack {i}: FAILED: {str(exc).splitlines()[0]} "
                      f"(details in {workdir / 'failure.txt'})", flush=True)
    spread = (f"; time to the store: median {statistics.median(took):.1f} s, "
              f"max {max(took):.1f} s" if took else "")
    print(f"{args.stacks} stacks ({args.lines} lines each{', CPU hog' if args.hog else ''}): "
          f"{len(failed)} failed{spread}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
