"""The measured steps; each returns {"events": n, "seconds": s} (run in a child process)."""

from __future__ import annotations

import gzip
import json
import time
from datetime import date
from pathlib import Path

from consumers.replay import Pipeline
from consumers.replay import replay as run_replay
from consumers.report import build_report
from consumers.store import Store
from models.clocks import Rules
from models.measures import Period


def json_pass(log: str, _tmp: str) -> dict[str, float]:
    started = time.perf_counter()
    n = 0
    with gzip.open(log, "rb") as fh:
        for line in fh:
            json.loads(line)
            n += 1
    return {"events": n, "seconds": time.perf_counter() - started}


def report(log: str, _tmp: str) -> dict[str, float]:
    started = time.perf_counter()
    period = Period.of(date(2024, 1, 1), date(2024, 12, 31), date(2024, 12, 31))
    result = build_report([Path(log)], period)
    return {"events": result.stats.lines, "seconds": time.perf_counter() - started}


def replay(log: str, tmp: str) -> dict[str, float]:
    db = Path(tmp) / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    store = Store(f"sqlite:///{db}")
    stats = run_replay([Path(log)], store, Pipeline.restore(store, Rules()))
    return {"events": stats.lines, "seconds": time.perf_counter() - started}


