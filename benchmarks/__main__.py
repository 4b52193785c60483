"""`make bench`: throughput and memory of report and embedded replay on a generated year.

Each measured step runs in a fresh subprocess so its peak RSS is its own. The bare
`json.loads` pass over the same file is the yardstick the aims are stated against.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"

STEPS = {
    "json.loads (baseline)": "benchmarks.steps:json_pass",
    "report": "benchmarks.steps:report",
    "replay (SQLite)": "benchmarks.steps:replay",
}


def run_step(target: str, log: Path, tmp: Path) -> dict[str, float]:
    """Run one step in a child; returns its own figures plus its peak RSS."""
    code = (
        "import json, sys, importlib; m, f = sys.argv[1].split(':'); "
        "print(json.dumps(getattr(importlib.import_module(m), f)(sys.argv[2], sys.argv[3])))"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, target, str(log), str(tmp)],
        check=True, capture_output=True, text=True,
    ).stdout
    wall = time.perf_counter() - started
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    figures["wall_s"] = wall
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1)))
    parser.add_argument("--year", type=int, default=2024)
    args = parser.parse_args()
    console = Console()
    cache = Path(".cache/bench")
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / f"year-{args.year}-s{args.scale:g}.jsonl.gz"
    if not log.exists():
        from vardgaranti.generate import generate

        console.print(f"generating {log} …")
        generate(log, args.year, seed=1, scale=args.scale, progress=sys.stderr.isatty())
    results: dict[str, dict[str, float]] = {}
    for name, target in STEPS.items():
        console.print(f"running {name} …")
        results[name] = run_step(target, log, cache)
    base = results["json.loads (baseline)"]["seconds"]
    table = Table(title=f"vårdgaranti benchmarks ({log.name}, {platform.machine()}, "
                        f"{os.cpu_count()} cores)", title_justify="left")
    for col in ("step", "events", "seconds", "events/s", "× json.loads", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['events']:,.0f}", f"{r['seconds']:.1f}",
                      f"{r['events'] / r['seconds']:,.0f}", f"{r['seconds'] / base:.2f}",
                      f"{r['peak_rss_mb']:,.0f}")
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(
        {"log": log.name, "machine": platform.platform(), "cpus": os.cpu_count(),
         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
