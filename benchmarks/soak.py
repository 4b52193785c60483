"""`make soak` / `python -m benchmarks.soak`: a worker and a sink held under a steady load.

A generated log is replayed to the events topic at a fixed rate, by default 5× the region's
peak inflow, for 10 minutes (`--years N`: N generated years one after the other), through
one `vardgaranti worker` and one `vardgaranti sink` on a mock broker of our own (or the Kafka
named by VARDGARANTI_BENCH_KAFKA_BOOTSTRAP). Every 30 s it prints the events sent, the
events the worker is done with, its consumer lag, and the resident memory of both processes;
at the end, the memory slope (least squares over the samples after the warm-up, by default
the first minute) and whether it levelled off.

The worker keeps per-day counters for the longest window and the grace period (~390 days of
event time) before it folds older days: its memory can only level off once the events are
that far apart, and the SQLite page caches of the worker and the sink fill as the store grows,
so a soak that shows it replays years and leaves the first half hour out: `make soak` runs
`--rate 30 --years 20 --duration 2700 --warm-up 1800` (10.9 years of event time; at this
rate the worker's memory levels off after 27-34 minutes, docs/live-view.md).

Several years are one continuous history (`continuous`): a generated year ends with the
clocks still open on 31 December cut off, and the next year (another seed, other ids)
starts with its own backlog of such cases written whole. Replayed one after the other, the
first year's open clocks would wait for ever, which no region's log does; so they are left
out and the next year's lines are merged in by event time.

The peak inflow comes from the generator at scale 1 (the region's volumes, generate.py's
hour-of-day, weekday and month profiles): the busiest hour of a generated 2024 holds 2,599
events (Monday 15 January, 09:00-10:00), 0.72 events/s; `--peak-from LOG` counts it again
from any log.

Exit status: 0; 3 when the memory did not level off; 1 when a process failed; 2 for bad
options.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import json
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.streaming import (
    CACHE,
    LAG,
    BenchError,
    BenchStack,
    Scraper,
    accounted,
    broker,
    log_file,
    rss_mb,
    stop_on_sigterm,
    total,
)
from models.clocks import Fact

PEAK_EVENTS_PER_HOUR = 2_599  # busiest hour of `generate(2024, seed=1, scale=1)`
PEAK_FACTOR = 5.0
EVENTS_PER_YEAR = 3_720_000  # lines of that log: what scale 1 holds
SCALES = (0.002, 0.005, 0.01, 0.03, 0.1, 0.3, 1.0)  # logs generated on demand, cached
WARM_UP_S = 60.0  # samples before this are left out of the slope (imports, first caches)
MAX_SLOPE_MB_PER_MIN = 0.2  # at most 12 MB an hour: "levelled off" (RSS moves in 0.1 MB steps)
MIN_SAMPLES = 3  # after the warm-up, for a slope worth judging

_HOUR = re.compile(rb'"occurred_at":"(\d{4}-\d\d-\d\dT\d\d)[^"]*"')


def peak_per_hour(path: Path) -> int:
    """Events in the busiest hour of a log (local hours, as the log writes them)."""
    hours: Counter[bytes] = Counter()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for line in fh:
            if m := _HOUR.search(line):
                hours[m.group(1)] += 1
    return max(hours.values(), default=0)


def scale_for(lines: float) -> float:
    """The smallest cached scale whose log holds at least `lines` lines (with a margin)."""
    for scale in SCALES:
        if scale * EVENTS_PER_YEAR >= 1.2 * lines:
            return scale
    raise BenchError(f"{lines:,.0f} lines is more than a generated year holds; lower --rate "
                     "or --duration")


# (the log's newest event time up to this line, its case, its fact, the line); no case and
# no fact for a line that is no event
_Line = tuple[int, str, Fact | None, bytes]


def _keyed(path: Path) -> Iterator[_Line]:
    """A log's lines with their case and fact, each keyed by the newest event time seen up
    to it: a late line keeps its place behind the lines delivered before it."""
    from consumers.logs import read_lines
    from models.ingest import Ingested, ingest

    newest = 0
    for _, line in read_lines(path):
        got = ingest(line, path.name, refs=False)
        if isinstance(got, Ingested):
            newest = max(newest, got.fact.ts)
            yield newest, got.case_id, got.fact, line
        else:
            yield newest, "", None, line


def _moving(lines: Sequence[_Line]) -> set[str]:
    """The cases with a clock open or paused after these lines: at the end of a generated
    year, those whose later events the year cut off."""
    from models.clocks import AT_REST, Rules, evaluate

    facts: dict[str, dict[str, Fact]] = {}
    for _, case_id, fact, _ in lines:
        if fact is not None:
            facts.setdefault(case_id, {}).setdefault(fact.event_id, fact)
    rules = Rules()
    return {case_id for case_id, by_id in facts.items()
            if any(c.state not in AT_REST for c in evaluate(sorted(by_id.values()), rules).clocks)}


def continuous(paths: Sequence[Path], console: Console) -> Path:
    """The generated years as one history, cached next to them: each year but the last
    without its cases still moving at its end, merged by event time with the next year,
    whose backlog holds such cases whole (their starts dated the year before)."""
    if len(paths) == 1:
        return paths[0]
    out = CACHE / f"{paths[0].name.removesuffix('.jsonl.gz')}-continuous{len(paths)}.jsonl.gz"
    if out.exists():
        return out
    console.print(f"merging {', '.join(p.name for p in paths)} into {out} …")
    merged: list[_Line] = list(_keyed(paths[0]))
    for path in paths[1:]:
        cut = _moving(merged)
        merged = list(heapq.merge((x for x in merged if x[1] not in cut), _keyed(path),
                                  key=lambda x: x[0]))
    part = out.with_name(out.name + ".part")
    with gzip.GzipFile(part, "wb", mtime=0) as fh:
        fh.write(b"".join(line + b"\n" for *_, line in merged))
    part.replace(out)
    return out


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points; 0 with fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


@dataclass
class Sample:
    t: float  # seconds since the load started
    sent: int
    done: float  # lines the worker is done with (processed, rejected, repeated ids)
    lag: float  # consumer lag of the worker (events and deltas topics)
    worker_mb: float
    sink_mb: float


class Replayer(threading.Thread):
    """Sends the logs' lines at a fixed rate until stopped or the logs end."""

    def __init__(self, stack: BenchStack, paths: Sequence[Path], rate: float) -> None:
        super().__init__(name="replayer", daemon=True)
        self.stack, self.paths, self.rate = stack, paths, rate
        self.sent = 0
        self.failed = 0
        self.first_error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        from consumers.logs import read_lines
        from consumers.publish import TokenBucket, open_producer, record_meta
        from models.settings import Settings

        producer = open_producer(Settings(), self.stack.bootstrap)
        limiter = TokenBucket(self.rate, burst=1)
        topic = self.stack.topics["events"]
        try:
            for _, line in (x for path in self.paths for x in read_lines(path)):
                if self.stop.is_set():
                    break
                limiter.take()
                key, timestamp_ms = record_meta(line)
                producer.send(topic, value=line, key=key,
                              timestamp_ms=timestamp_ms).add_errback(self._failed)
                self.sent += 1
        finally:
            producer.flush()
            producer.close()

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"


@dataclass
class Soak:
    rate: float
    duration_s: float
    samples: list[Sample] = field(default_factory=list)
    warm_up_s: float = WARM_UP_S

    def after_warm_up(self) -> list[Sample]:
        # the sample taken at the end of the warm-up (a little after it) is warm-up too
        return [s for s in self.samples if s.t > self.warm_up_s + 1.0]

    def slope_mb_per_min(self, which: str) -> float:
        return 60 * slope([(s.t, getattr(s, which)) for s in self.after_warm_up()])

    def figures(self) -> dict[str, float]:
        last = self.samples[-1]
        worker_slope = self.slope_mb_per_min("worker_mb")
        sink_slope = self.slope_mb_per_min("sink_mb")
        return {
            "rate_events_per_s": self.rate, "seconds": last.t, "sent": last.sent,
            "done": last.done, "final_lag": last.lag,
            "max_lag": max(s.lag for s in self.samples),
            "worker_rss_mb": last.worker_mb, "sink_rss_mb": last.sink_mb,
            "warm_up_s": self.warm_up_s,
            "worker_rss_slope_mb_per_min": worker_slope, "sink_rss_slope_mb_per_min": sink_slope,
            # per event sent: what the worker keeps for each (its cases table grows by design)
            "worker_kb_per_event": worker_slope * 1024 / (60 * self.rate),
            # 1 yes, 0 no, -1 too few samples after the warm-up to tell
            "levelled_off": (float(max(worker_slope, sink_slope) <= MAX_SLOPE_MB_PER_MIN)
                             if len(self.after_warm_up()) >= MIN_SAMPLES else -1.0),
        }


def scrape(scraper: Scraper, tries: int = 5) -> dict[str, float]:
    for _ in range(tries):
        if series := scraper.scrape():
            return series
        time.sleep(1.0)
    raise BenchError(f"the worker's /metrics did not answer {tries} times in a row")


def soak(stack: BenchStack, paths: Sequence[Path], rate: float, duration_s: float,
         every_s: float, console: Console, warm_up_s: float = WARM_UP_S) -> Soak:
    stack.create_topics()
    worker = stack.worker(wait=True)
    sink = stack.sink()  # after the worker made its changelogs (see streaming.backlog)
    scraper = Scraper(worker.port)
    replayer = Replayer(stack, paths, rate)
    result = Soak(rate, duration_s, warm_up_s=warm_up_s)
    console.print(f"{'s':>5} {'sent':>8} {'done':>8} {'ev/s':>7} {'lag':>6} "
                  f"{'worker MB':>10} {'sink MB':>8}")
    started = time.monotonic()
    replayer.start()
    try:
        n = 0
        while True:
            n += 1
            due = started + min(n * every_s, duration_s)
            while (pause := due - time.monotonic()) > 0:
                time.sleep(min(pause, 1.0))
                for proc in (worker, sink):
                    if proc.process.poll() is not None:
                        raise BenchError(f"the {proc.name} exited during the soak\n"
                                         f"{stack.logs()}")
            if replayer.first_error is not None:
                raise BenchError(f"publishing failed: {replayer.first_error}")
            series = scrape(scraper)
            sample = Sample(time.monotonic() - started, replayer.sent, accounted(series),
                            total(series, LAG), rss_mb(worker.process.pid),
                            rss_mb(sink.process.pid))
            before = result.samples[-1] if result.samples else Sample(0, 0, 0, 0, 0, 0)
            result.samples.append(sample)
            console.print(
                f"{sample.t:5.0f} {sample.sent:8,} {sample.done:8,.0f} "
                f"{(sample.done - before.done) / (sample.t - before.t):7.1f} {sample.lag:6,.0f} "
                f"{sample.worker_mb:10.1f} {sample.sink_mb:8.1f}")
            if sample.t >= duration_s:
                break
            if not replayer.is_alive():
                console.print("the log ran out before the end of the soak")
                break
    finally:
        replayer.stop.set()
        replayer.join(30)
        scraper.close()
    return result


def table(r: dict[str, float], paths: Sequence[Path]) -> Table:
    names = ", ".join(p.name for p in paths)
    t = Table(title=f"soak ({names}, {r['rate_events_per_s']:.3g} events/s for "
                    f"{r['seconds']:.0f} s)", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, value in (
        ("events sent / done by the worker", f"{r['sent']:,.0f} / {r['done']:,.0f}"),
        ("consumer lag: max / at the end", f"{r['max_lag']:,.0f} / {r['final_lag']:,.0f}"),
        ("worker RSS at the end, MB", f"{r['worker_rss_mb']:.1f}"),
        (f"worker RSS slope after {r['warm_up_s']:g} s, MB/min",
         f"{r['worker_rss_slope_mb_per_min']:+.2f}"),
        ("  = KB kept per event", f"{r['worker_kb_per_event']:+.2f}"),
        ("sink RSS at the end, MB", f"{r['sink_rss_mb']:.1f}"),
        (f"sink RSS slope after {r['warm_up_s']:g} s, MB/min",
         f"{r['sink_rss_slope_mb_per_min']:+.2f}"),
        (f"memory levelled off (both slopes ≤ {MAX_SLOPE_MB_PER_MIN} MB/min)",
         {1.0: "yes", 0.0: "NO"}.get(r["levelled_off"], "too short to tell")),
    ):
        t.add_row(name, value)
    return t


def run(duration_s: float = 600.0, rate: float | None = None, every_s: float = 30.0,
        partitions: int = 6, year: int = 2024, peak_from: Path | None = None,
        console: Console | None = None, years: int = 1,
        warm_up_s: float = WARM_UP_S) -> dict[str, float]:
    """The soak; its figures as a flat dict."""
    console = console or Console()
    if rate is None:
        peak = peak_per_hour(peak_from) if peak_from is not None else PEAK_EVENTS_PER_HOUR
        rate = PEAK_FACTOR * peak / 3600
        console.print(f"peak inflow {peak:,} events/h ({peak / 3600:.2f}/s): replaying at "
                      f"{PEAK_FACTOR:g}× = {rate:.2f} events/s")
    scale = scale_for(rate * duration_s / years)
    paths = [continuous([log_file(scale, year + i, console, seed=1 + i)
                         for i in range(years)], console)]
    with broker() as (bootstrap, mock), tempfile.TemporaryDirectory(prefix="vg-soak-") as tmp:
        names = ", ".join(p.name for p in paths)
        console.print(f"soak: {names} through {'a mock broker' if mock else bootstrap} for "
                      f"{duration_s:g} s")
        stack = BenchStack(bootstrap, Path(tmp), partitions=partitions, mock=mock)
        try:
            result = soak(stack, paths, rate, duration_s, every_s, console, warm_up_s)
        finally:
            stack.close()
    figures = result.figures()
    console.print(table(figures, paths))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description="Replay at a fixed rate through a worker and a sink; watch lag and memory.")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--rate", type=float,
                        help=f"events/s (default {PEAK_FACTOR:g}× the region's peak inflow)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--years", type=int, default=1,
                        help="generated years replayed one after the other (default 1)")
    parser.add_argument("--warm-up", type=float, default=WARM_UP_S, metavar="SECONDS",
                        help=f"left out of the slope (default {WARM_UP_S:g})")
    parser.add_argument("--peak-from", type=Path, metavar="LOG",
                        help="count the peak hour in this log instead of the built-in figure")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    for name in ("duration", "rate", "every"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            parser.error(f"--{name}: must be above 0")
    if args.partitions < 1:
        parser.error("--partitions: must be at least 1")
    if args.years < 1:
        parser.error("--years: must be at least 1")
    if not 0 <= args.warm_up < args.duration:
        parser.error("--warm-up: must be at least 0 and below --duration")
    if args.peak_from is not None and not args.peak_from.is_file():
        parser.error(f"--peak-from: no such file: {args.peak_from}")
    try:
        figures = run(args.duration, args.rate, args.every, args.partitions,
                      peak_from=args.peak_from, years=args.years, warm_up_s=args.warm_up)
    except BenchError as exc:
        print(f"soak failed: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 3 if figures["levelled_off"] == 0.0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
