"""`vardgaranti` command line: thin wrappers over the runtimes.

Exit codes: 0 ok, 2 usage or input error with a one-line message (never a traceback for a
user mistake), 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console

from models.indicators import INDICATOR_IDS
from models.measures import WINDOWS, Period, Row
from models.settings import Settings

if TYPE_CHECKING:
    from consumers.store import Store

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, not argparse's usage dump: the usage is one `--help` away
        self.exit(2, f"{self.prog}: error: {message}\n")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _existing(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def period_from(as_of: date, first: date | None, last: date | None) -> Period:
    """--from/--to default to the month of --as-of up to --as-of; they may not pass it."""
    last = last or as_of
    first = first or last.replace(day=1)
    try:
        return Period.of(first, last, as_of)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# ---------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.deadletter import DeadLetterFile
    from consumers.logs import LogError
    from consumers.report import build_report
    from vardgaranti.progress import line_progress

    period = period_from(args.as_of, args.from_, args.to)
    with DeadLetterFile(args.dead_letter) as dead, line_progress("reading events") as tick:
        try:
            report = build_report(
                args.files, period, unit=args.unit, rules=settings.rules(), dead=dead,
                progress=tick, phase=tick.phase,
            )
        except LogError as exc:
            raise UsageError(str(exc)) from None
    _emit(args.format, _header(period), report.rows)
    s = report.stats
    summary = f"{s.lines} lines, {s.events} events"
    if s.rejected:
        summary += "; rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(s.rejected.items()))
    if s.ignored:
        summary += "; ignored: " + ", ".join(f"{k} {v}" for k, v in sorted(s.ignored.items()))
    if dead.counts and args.dead_letter is None:
        summary += " (use --dead-letter FILE to keep them)"
    stderr.print(summary)
    return 0


# ---------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from vardgaranti.generate import generate

    try:
        stats = generate(
            args.out, args.year, seed=args.seed, scale=args.scale, bad_rate=args.bad_rate,
            progress=sys.stderr.isatty(),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stderr.print(f"wrote {stats.events} events to {args.out}")
    return 0


# ---------------------------------------------------------------- replay and query


def open_store(url: str) -> Store:
    from consumers.store import Store, StoreError

    try:
        return Store(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.logs import LogError
    from consumers.replay import Pipeline, replay
    from consumers.store import StoreError
    from vardgaranti.progress import line_progress

    if args.to_kafka is not None:
        return replay_to_kafka(args, settings)
    for option, value in (("--rate", args.rate), ("--topic", args.topic),
                          ("--compression", args.compression), ("--timeout", args.timeout)):
        if value is not None:
            raise UsageError(f"{option} needs --to-kafka")
    store = open_store(args.db or settings.database_url)
    try:
        pipeline = Pipeline.restore(store, settings.rules(), settings.allowed_lateness_us)
        with line_progress("replaying") as tick:
            stats = replay(args.files, store, pipeline, progress=tick)
    except (LogError, StoreError) as exc:
        raise UsageError(str(exc)) from None
    rate = stats.lines / stats.seconds if stats.seconds else 0.0
    line = (f"{stats.lines} lines in {stats.seconds:.1f} s ({rate:,.0f}/s): "
            f"{stats.new_events} new events, {stats.duplicates} already known")
    if stats.rejected:
        line += "; rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.rejected.items()))
    stderr.print(line)
    return 0


# ---------------------------------------------------------------- Kafka producers


def _bootstrap(text: str) -> str:
    from consumers.kafka_config import KafkaConfigError, parse_bootstrap

    try:
        return ",".join(parse_bootstrap(text))
    except KafkaConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds above 0")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a rate (events/s, 0 = no limit)")
    return value


def replay_to_kafka(args: argparse.Namespace, settings: Settings) -> int:
    """`replay --to-kafka`: publish the lines, unchanged, to the events topic."""
    from consumers.kafka_config import KafkaConfigError
    from consumers.logs import LogError
    from consumers.publish import PublishError, TokenBucket, check_topic, open_producer, publish
    from vardgaranti.progress import line_progress

    if args.db is not None:
        raise UsageError("--db has no effect with --to-kafka (the sink writes the store)")
    topic = args.topic or settings.events_topic
    rate = args.rate or 0.0
    try:
        check_topic(settings, args.to_kafka, topic, args.timeout or 15.0)
        producer = open_producer(settings, args.to_kafka, args.compression or "gzip",
                                 args.timeout or 15.0)
    except (KafkaConfigError, PublishError) as exc:
        raise UsageError(str(exc)) from None
    limiter = TokenBucket(rate) if rate else None
    # about ten screen updates a second when limited, every 1000 lines otherwise
    every = max(1, min(1000, int(rate / 10))) if rate else 1000
    stats = None
    try:
        with line_progress(f"publishing to {topic}") as tick:
            stats = publish(args.files, producer, topic, limiter=limiter, progress=tick,
                            progress_every=every)
    except LogError as exc:
        raise UsageError(str(exc)) from None
    finally:
        producer.close(timeout=0 if stats is None or stats.unconfirmed else 10)

    where = f"at {stats.position}" if stats.position else "before the first line"
    again = "publishing again is safe (the worker ignores repeated event ids)"
    if not stats.ok:
        stderr.print(f"vardgaranti: error: stopped {where}: {stats.failed} of {stats.lines} "
                     f"lines not delivered ({stats.first_error}); {again}", markup=False)
        return 1
    if stats.interrupted:
        done = (f"{stats.lines} lines handed to the producer, not all acknowledged"
                if stats.unconfirmed else f"{stats.delivered} lines published")
        stderr.print(f"vardgaranti: interrupted {where}: {done}; {again}", markup=False)
        return 130
    achieved = stats.lines / stats.seconds if stats.seconds else 0.0
    line = (f"{stats.delivered} lines published to {topic} in {stats.seconds:.1f} s "
            f"({achieved:,.0f}/s); {stats.unkeyed} without a key (no case_id)")
    if stats.untimed:
        line += f", {stats.untimed} stamped with the wall clock (no usable occurred_at)"
    stderr.print(line, markup=False)
    return 0


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.kafka_config import KafkaConfigError
    from consumers.topics import TopicsError, create_topics

    try:
        statuses = create_topics(settings, args.bootstrap, args.partitions,
                                 args.replication_factor, args.timeout)
    except (KafkaConfigError, TopicsError) as exc:
        raise UsageError(str(exc)) from None
    for status in statuses:
        print(status.line())
    return 0


def window_period(
    store: Store, window: str, first: date | None, last: date | None, as_of: date | None
) -> Period:
    """--from/--to win; otherwise the window ending at the store's watermark date."""
    from models.calendar import local_day
    from models.measures import window_first

    if first or last:
        if not (first and last):
            raise UsageError("--from and --to go together")
        return period_from(as_of or last, first, last)
    if as_of is None:
        newest = store.newest_event_us()
        if newest is None:
            raise UsageError("the store is empty: run `vardgaranti replay FILE…` first")
        as_of = date.fromordinal(local_day(newest))
    try:
        return period_from(as_of, window_first(window, as_of), as_of)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_query(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.store import StoreError
    from models.measures import arrange

    store = open_store(args.db or settings.database_url)
    try:
        period = window_period(store, args.window, args.from_, args.to, args.as_of)
        rows = arrange(store.per_unit(period, args.indicator), args.unit)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    header = _header(period)
    header["window"] = args.window if not (args.from_ or args.to) else "custom"
    _emit(args.format, header, rows)
    return 0


def _header(period: Period) -> dict[str, str]:
    return {
        "as_of": date.fromordinal(period.as_of).isoformat(),
        "from": date.fromordinal(period.first).isoformat(),
        "to": date.fromordinal(period.last).isoformat(),
    }


def _emit(fmt: str, header: dict[str, str], rows: list[Row]) -> None:
    from vardgaranti import output

    if fmt == "json":
        print(output.as_json(header, rows))
    elif fmt == "csv":
        sys.stdout.write(output.as_csv(rows))
    else:
        title = (
            f"Vårdgaranti {header['from']} – {header['to']}, "
            f"waiting at the end of {header['as_of']}"
        )
        output.as_table(title, rows, Console(width=max(Console().width, 140)))


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.store import StoreError
    from vardgaranti.demo import DemoOptions, run

    if args.scale <= 0:
        raise UsageError("--scale must be above 0")
    opts = DemoOptions(
        year=args.year, scale=args.scale, seed=args.seed, data_dir=args.data_dir,
        host=settings.http_host, port=args.port or settings.http_port,
    )
    try:
        return run(opts, settings)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


# ---------------------------------------------------------------- dashboards


def cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.grafana import GrafanaError, check, push

    token = args.token or os.environ.get("GRAFANA_TOKEN")
    try:
        if args.action == "push":
            pushed = push(args.url, token, folder=args.folder)
            stderr.print(f"pushed {len(pushed)} dashboards: {', '.join(pushed)}")
            return 0
        differences = check(args.url, token)
    except GrafanaError as exc:
        raise UsageError(str(exc)) from None
    for line in differences:
        print(line)
    stderr.print("dashboards match the files" if not differences
                 else f"{len(differences)} differences")
    return 0 if not differences else 1


# ---------------------------------------------------------------- streaming


def _streaming_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """Command-line options over the environment's settings."""
    update: dict[str, object] = {}
    if args.bootstrap:
        update["kafka_bootstrap"] = args.bootstrap
    if args.port:
        update["http_port" if args.command == "worker" else "sink_port"] = args.port
    return settings.model_copy(update=update)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.kafka_config import KafkaConfigError
    from streams.run import run

    try:
        return run(_streaming_settings(args, settings), loglevel=args.loglevel)
    except KafkaConfigError as exc:
        raise UsageError(str(exc)) from None


def cmd_sink(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.kafka_config import KafkaConfigError
    from consumers.sink import run
    from consumers.store import StoreError

    settings = _streaming_settings(args, settings)
    if args.db:
        settings = settings.model_copy(update={"database_url": args.db})
    try:
        return run(settings)
    except (StoreError, KafkaConfigError) as exc:
        raise UsageError(str(exc)) from None


# ---------------------------------------------------------------- parser


Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vardgaranti", description="Monitor of the Swedish care guarantee.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("report", help="compute the measures straight from event logs")
    p.add_argument("files", nargs="+", type=_existing, metavar="FILE")
    p.add_argument("--as-of", type=_date, required=True, help="snapshot: end of this local day")
    p.add_argument("--from", dest="from_", type=_date, help="first local date (default: month)")
    p.add_argument("--to", type=_date, help="last local date (default: --as-of)")
    p.add_argument("--unit", help="only this unit's rows (ALL: region-wide only)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--dead-letter", type=Path, help="write rejected lines here (JSON lines)")
    p.set_defaults(run=cmd_report)

    p = sub.add_parser("generate", help="write a synthetic year for the region")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help=".jsonl or .jsonl.gz")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="1 = the region's real volume")
    p.add_argument("--bad-rate", type=float, default=0.0, help="share of malformed lines")
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser("demo", help="generate a year, replay it, show it, serve the API")
    p.add_argument("--scale", type=float, default=0.1, help="share of the region's volume")
    p.add_argument("--port", type=int, help="HTTP port (default: VARDGARANTI_HTTP_PORT, 8000)")
    p.add_argument("--year", type=int, default=date.today().year - 1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=Path(".cache/demo"),
                   help="where the generated log and the demo store are kept")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("dashboards", help="push the Grafana dashboards, or check them")
    p.add_argument("action", choices=("push", "check"))
    p.add_argument("--url", required=True, help="Grafana base URL")
    p.add_argument("--token", help="Grafana service-account token (default: GRAFANA_TOKEN)")
    p.add_argument("--folder", default="vardgaranti", help="folder uid for push")
    p.set_defaults(run=cmd_dashboards)

    p = sub.add_parser(
        "replay", help="process event logs into the store (embedded), or publish them to Kafka",
        description="Process event logs into the store, or with --to-kafka publish every line "
        "unchanged to the events topic (key: case_id, record timestamp: occurred_at) for the "
        "worker. Publishing the same file twice is safe: the worker ignores repeated event "
        "ids.")
    p.add_argument("files", nargs="+", type=_existing, metavar="FILE")
    p.add_argument("--db", help="database URL (default: VARDGARANTI_DATABASE_URL)")
    p.add_argument("--to-kafka", type=_bootstrap, metavar="BOOTSTRAP",
                   help="publish to Kafka (host:port[,host:port…]) instead of the store")
    p.add_argument("--topic", help="with --to-kafka: topic (default: VARDGARANTI_EVENTS_TOPIC)")
    p.add_argument("--rate", type=_rate, metavar="EVENTS_PER_S",
                   help="with --to-kafka: at most this many lines a second (default: no limit)")
    p.add_argument("--compression", choices=("none", "gzip", "snappy", "lz4", "zstd"),
                   help="with --to-kafka: record batch compression (default: gzip)")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="with --to-kafka: give up connecting after this many seconds (15)")
    p.set_defaults(run=cmd_replay)

    p = sub.add_parser("topics", help="create the Kafka topics of the streaming mode")
    p.add_argument("action", choices=("create",),
                   help="create the events, DLQ and breaches topics (existing ones are kept)")
    p.add_argument("--bootstrap", type=_bootstrap,
                   help="Kafka servers (default: VARDGARANTI_KAFKA_BOOTSTRAP)")
    p.add_argument("--partitions", type=_at_least_one, metavar="N",
                   help="partitions per topic (default: VARDGARANTI_PARTITIONS, 6)")
    p.add_argument("--replication-factor", type=_at_least_one, metavar="N",
                   help="replicas per partition (default: VARDGARANTI_REPLICATION_FACTOR, 1)")
    p.add_argument("--timeout", type=_seconds, default=15.0, metavar="SECONDS",
                   help="give up after this many seconds (default: 15)")
    p.set_defaults(run=cmd_topics)

    p = sub.add_parser("query", help="read stored aggregates")
    p.add_argument("--indicator", choices=INDICATOR_IDS, help="one indicator (default: all)")
    p.add_argument("--unit", help="only this unit's rows (ALL: region-wide only)")
    p.add_argument("--window", choices=WINDOWS, default="month",
                   help="ending at the newest event's date (default: month)")
    p.add_argument("--from", dest="from_", type=_date, help="first local date")
    p.add_argument("--to", type=_date, help="last local date")
    p.add_argument("--as-of", type=_date, help="snapshot day (default: --to, or the newest)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--db", help="database URL (default: VARDGARANTI_DATABASE_URL)")
    p.set_defaults(run=cmd_query)

    p = sub.add_parser("worker", help="the Faust worker (streaming mode)")
    p.add_argument("--bootstrap", help="Kafka servers (default: VARDGARANTI_KAFKA_BOOTSTRAP)")
    p.add_argument("--port", type=int, help="HTTP port (default: VARDGARANTI_HTTP_PORT, 8000)")
    p.add_argument("--loglevel", choices=("debug", "info", "warning", "error"), default="info")
    p.set_defaults(run=cmd_worker)

    p = sub.add_parser("sink", help="write the worker's output into the store (streaming mode)")
    p.add_argument("--bootstrap", help="Kafka servers (default: VARDGARANTI_KAFKA_BOOTSTRAP)")
    p.add_argument("--port", type=int, help="health/metrics port (default: VARDGARANTI_SINK_PORT)")
    p.add_argument("--db", help="database URL (default: VARDGARANTI_DATABASE_URL)")
    p.set_defaults(run=cmd_sink)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: one line per bad variable
        stderr.print(f"vardgaranti: error: bad setting: {str(exc).splitlines()[1:3]}")
        return 2
    run: Command = args.run
    try:
        return run(args, settings)
    except UsageError as exc:
        stderr.print(f"vardgaranti: error: {exc}", markup=False)
        return 2
    except KeyboardInterrupt:
        stderr.print("vardgaranti: interrupted")
        return 130
