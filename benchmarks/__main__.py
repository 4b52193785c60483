"""`make bench` / `python -m benchmarks [STEP …]`: the performance figures of one machine.

Generates the year once (cached under .cache/bench), runs each step of benchmarks.suite in
a child process of its own (its peak RSS is its own), prints the figures against the aims
and writes them to benchmarks/results/latest.json. A failed check (the DuckDB equality)
makes the run exit 1. Tests never assert on time; this suite only measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.suite import BY_NAME, STEPS, Context, Figure, Step, StepResult, derive

RESULTS = Path(__file__).parent / "results"
CACHE = Path(".cache/bench")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/vardgaranti_bench"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("steps", nargs="*", metavar="STEP",
                   help=f"steps to run (default: all): {', '.join(BY_NAME)}")
    p.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1)),
                   help="volume of the generated year (default: BENCH_SCALE or 1)")
    p.add_argument("--year", type=int, default=2024)
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                   help="PostgreSQL for the latency steps, used when reachable "
                        "(default: BENCH_PG_URL or a local vardgaranti_bench database)")
    p.add_argument("--no-pg", action="store_true", help="SQLite only")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    return p


def _selected(names: list[str]) -> list[Step]:
    """The steps asked for plus those they are compared with, in suite order."""
    wanted = set(names or BY_NAME)
    for name in list(wanted):
        wanted.update(BY_NAME[name].needs)
    return [s for s in STEPS if s.name in wanted]


def _log(year: int, scale: float, console: Console) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / f"year-{year}-s{scale:g}.jsonl.gz"
    if not log.exists():
        from vardgaranti.generate import generate

        console.print(f"generating {log} (once; cached) …")
        part = log.with_name(f"{log.name.removesuffix('.jsonl.gz')}.part.jsonl.gz")
        generate(part, year, seed=1, scale=scale, progress=sys.stderr.isatty())
        part.rename(log)
    return log


def _pg_url(url: str | None) -> str | None:
    """The URL if that database answers (created when only the database is missing)."""
    if not url:
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
        return url
    except SQLAlchemyError:
        pass
    try:  # the server is there but not the database: make it
        target = make_url(url)
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        return url
    except SQLAlchemyError:
        return None


def run_step(step: Step, ctx: Context) -> StepResult:
    """The step in a child process of its own; its result, wall time and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        ctx_file, out_file = Path(tmp) / "ctx.json", Path(tmp) / "out.json"
        ctx_file.write_text(json.dumps(ctx.to_json()))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.child", step.target, str(ctx_file),
             str(out_file)],
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0 or not out_file.exists():
            return StepResult(failed=f"the step's process exited with {done.returncode}",
                              wall_s=wall)
        result = StepResult.from_json(json.loads(out_file.read_text()))
    result.wall_s = wall
    return result


def _fmt(value: float, unit: str) -> str:
    if unit in ("events", "cases", "rows", "series", "B", "events/s", "rows/s"):
        return f"{value:,.0f}"
    if unit == "×":
        return f"{value:.2f}"
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _tables(results: dict[str, StepResult], derived: list[Figure]) -> list[Table]:
    base = results.get("json")
    rates = Table(title="throughput over the generated year", title_justify="left")
    for col in ("step", "events", "seconds", "events/s", "× json.loads", "CPU s",
                "CPU × json.loads", "peak RSS MB"):
        rates.add_column(col, justify="left" if col == "step" else "right")
    for name in ("json", "report", "replay", "replay_pg"):
        r = results.get(name)
        if r is None or r.failed:
            continue
        ratio = f"{r.data['seconds'] / base.data['seconds']:.2f}" if base else "–"
        cpu = r.data.get("cpu_s")
        cpu_ratio = (f"{cpu / base.data['cpu_s']:.2f}" if cpu and base
                     and base.data.get("cpu_s") else "–")
        rates.add_row(name, f"{r.data['events']:,}", f"{r.data['seconds']:.1f}",
                      f"{r.data['events'] / r.data['seconds']:,.0f}", ratio,
                      f"{cpu:.1f}" if cpu else "–", cpu_ratio, f"{r.peak_rss_mb:,.0f}")
    figures = Table(title="figures and aims", title_justify="left")
    for col in ("step", "figure", "value", "unit", "aim", "met"):
        figures.add_column(col, justify="right" if col == "value" else "left")
    rows = [(n, f) for n, r in results.items() for f in r.figures
            if n not in ("json", "report", "replay", "replay_pg") or f.aim]
    rows += [("(across)", f) for f in derived]
    for name, f in rows:
        met = "" if f.met is None else ("[green]yes[/]" if f.met else "[red]no[/]")
        figures.add_row(name, f.name, _fmt(f.value, f.unit), f.unit, f.aim, met)
    return [t for t in (rates, figures) if t.row_count]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [n for n in args.steps if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown step {', '.join(unknown)} (steps: {', '.join(BY_NAME)})")
    console = Console(width=max(Console().width, 120))
    steps = _selected(args.steps)
    log = _log(args.year, args.scale, console) if any(s.uses_log for s in steps) else None
    needs_pg = any(s.name in ("query", "api", "replay_pg") for s in steps)
    pg = _pg_url(None if args.no_pg or not needs_pg else args.pg_url)
    if needs_pg and not args.no_pg and pg is None:
        console.print("PostgreSQL not reachable: latency on SQLite only")
    if pg is None and any(s.name == "replay_pg" for s in steps):
        console.print("replay_pg left out: no PostgreSQL")
        steps = [s for s in steps if s.name != "replay_pg"]
    CACHE.mkdir(parents=True, exist_ok=True)
    ctx = Context(str(log or ""), args.year, args.scale, str(CACHE.resolve()), pg)
    results: dict[str, StepResult] = {}
    for step in steps:
        console.print(f"[bold]{step.name}[/]: {step.about} …")
        results[step.name] = r = run_step(step, ctx)
        status = f"[red]FAILED: {r.failed}[/]" if r.failed else "done"
        console.print(f"  {status} in {r.wall_s:.1f} s, peak RSS {r.peak_rss_mb:,.0f} MB")
    derived = derive(results)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    title = f"vårdgaranti benchmarks ({log.name if log else 'no log'}; {machine})"
    console.print(title)
    for table in _tables(results, derived):
        console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "taken": datetime.now(UTC).isoformat(timespec="seconds"),
        "log": log.name if log else None, "scale": args.scale, "year": args.year,
        "machine": platform.platform(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "postgresql": pg is not None,
        "steps": {n: r.to_json() for n, r in results.items()},
        "derived": [f.__dict__ for f in derived],
    }, indent=2))
    console.print(f"written to {args.out}")
    failed = {n: r.failed for n, r in results.items() if r.failed}
    for name, why in failed.items():
        console.print(f"[bold red]{name} FAILED[/]: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
