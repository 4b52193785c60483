"""Memory per open clock in the embedded engine (models.engine.Engine).

N cases, each one start event and so one open clock, are filed and settled; the growth of
the process's resident set divided by N is the figure (allocator overhead included, which
tracemalloc would leave out). Each N runs in a fresh process of its own:
`python -m benchmarks.memory N` prints its figures as JSON.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time

from benchmarks.suite import Context, Figure, StepResult

SIZES = (100_000, 1_000_000)
AIM_BYTES = 500
# (type rank, indicator position) of the seven start events
_STARTS = ((0, 0), (2, 1), (4, 2), (6, 3), (4, 4), (6, 5), (6, 6))


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(n: int) -> dict[str, float]:
    """Open clocks shaped like the generated year's: ids with serial numbers, a patient
    reference each, 100 units, starts spread over the 90 days before the snapshot."""
    from models.clocks import Fact, Rules
    from models.engine import Engine

    units = [f"unit-{u:03d}" for u in range(100)]
    engine = Engine(Rules())
    end_us = 1_735_600_000_000_000  # late December 2024
    span_us = 90 * 86_400 * 1_000_000
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    for i in range(n):
        rank, ind = _STARTS[i % len(_STARTS)]
        fact = Fact(end_us - (i * 7919 % span_us), rank, f"ev-1-{3_000_000 + i}",
                    units[i % 100], ind, 0, f"p-{(i * 2654435761) % (1 << 32):08x}")
        engine.add(f"c-1-{1_000_000 + i}", fact)
    added = time.perf_counter()
    engine.settle()
    settled = time.perf_counter()
    gc.collect()
    grown = rss_bytes() - before
    clocks = sum(1 for _ in engine.clocks())
    assert clocks == n, clocks
    return {"clocks": n, "bytes_per_clock": grown / n, "add_us": (added - started) / n * 1e6,
            "settle_us": (settled - added) / n * 1e6}


def run(_ctx: Context) -> StepResult:
    figures: list[Figure] = []
    data: dict[str, object] = {}
    for n in SIZES:
        out = subprocess.run([sys.executable, "-m", "benchmarks.memory", str(n)],
                             check=True, capture_output=True, text=True).stdout
        m = json.loads(out)
        data[str(n)] = m
        figures.append(Figure(f"bytes per open clock at {n:,}", m["bytes_per_clock"], "B",
                              f"≤ {AIM_BYTES}", m["bytes_per_clock"] <= AIM_BYTES))
        figures.append(Figure(f"add + settle per clock at {n:,}",
                              m["add_us"] + m["settle_us"], "µs"))
    return StepResult(figures, data)


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
