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
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError
from rich.console import Console

from models.indicators import INDICATOR_IDS, REGION_UNIT
from models.measures import WINDOWS, Period, Row
from models.settings import Settings, bad_setting

if TYPE_CHECKING:
    from consumers.store import Store
    from models.disclosure import Disclosure

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
    """A log file, or `-` for standard input."""
    from consumers.logs import LogError, check_log

    path = Path(text)
    try:
        check_log(path)
    except LogError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def _no_lines(files: Sequence[Path]) -> UsageError:
    names = ", ".join("standard input" if str(f) == "-" else str(f) for f in files)
    return UsageError(f"{names}: empty log, no lines to read")


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
    from consumers.report import build_report, default_jobs
    from vardgaranti.progress import line_progress

    period = period_from(args.as_of, args.from_, args.to)
    jobs = _processes(default_jobs(args.files) if args.jobs is None else args.jobs)
    with DeadLetterFile(args.dead_letter) as dead, line_progress("reading events") as tick:
        try:
            report = build_report(
                args.files, period, unit=args.unit, rules=settings.rules(), dead=dead,
                progress=tick, phase=tick.phase, jobs=jobs,
            )
        except LogError as exc:
            raise UsageError(str(exc)) from None
    if report.stats.lines == 0:
        raise _no_lines(args.files)
    if not report.rows and args.unit not in (None, REGION_UNIT):
        raise UsageError(f"--unit: '{args.unit}' has no clock in these logs")
    _emit(args.format, _header(period), report.rows)
    s = report.stats
    if s.newest_day is not None and period.as_of > s.newest_day:
        # the contract's snapshot is the end of --as-of; say that no event came after this
        stderr.print(f"note: --as-of {date.fromordinal(period.as_of)} is after the newest "
                     f"event's date {date.fromordinal(s.newest_day)}: the figures assume "
                     "nothing happened since")
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


# what the generator writes at --scale 1 (measured: 3.7 M events; 21 bytes an event
# gzipped, 210 plain); only for telling the user the size before writing
EVENTS_AT_SCALE_1 = 3_700_000
BYTES_PER_EVENT = {".gz": 21, "": 210}
# the generator's own messages name its parameters; users know the options
_OPTION_OF = {"year": "--year", "seed": "--seed", "scale": "--scale", "bad_rate": "--bad-rate",
              "output file": "--out", "output directory": "--out"}


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from vardgaranti.generate import Incident, check_arguments, generate

    out: Path = args.out
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give a file name (.jsonl or .jsonl.gz)")
    if out.exists() and not args.force:
        raise UsageError(f"--out {out}: exists; add --force to overwrite it")
    try:
        check_arguments(out, args.year, args.seed, args.scale, args.bad_rate)
        incidents = [Incident.parse(text) for text in args.incident]
    except ValueError as exc:
        raise UsageError(_as_option(str(exc))) from None
    events = round(EVENTS_AT_SCALE_1 * args.scale)
    size = events * BYTES_PER_EVENT[".gz" if out.suffix == ".gz" else ""]
    stderr.print(f"writing about {events:,} events (about {_megabytes(size)}) to {out}",
                 markup=False)
    stats = generate(out, args.year, seed=args.seed, scale=args.scale, bad_rate=args.bad_rate,
                     progress=sys.stderr.isatty(), incidents=incidents)
    stderr.print(f"wrote {stats.events:,} events to {out} "
                 f"({_megabytes(out.stat().st_size)})", markup=False)
    return 0


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.0f} kB"


def _as_option(message: str) -> str:
    """"bad_rate must be …" → "--bad-rate must be …"."""
    for name, option in _OPTION_OF.items():
        if message.startswith(name + " "):
            return option + message[len(name):]
    return message


# ---------------------------------------------------------------- replay and query


def open_store(url: str, settings: Settings) -> Store:
    from consumers.store import Store, StoreError

    try:
        return Store(url, settings.sqlite_cache_mb)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _processes(jobs: int) -> int:
    """--jobs, checked."""
    if jobs < 1:
        raise UsageError(f"--jobs: {jobs} is not a number of processes (1 or more)")
    return jobs


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
    jobs = _processes(args.jobs)
    store = open_store(args.db or settings.database_url, settings)
    try:
        pipeline = Pipeline.restore(store, settings.rules(), settings.allowed_lateness_us,
                                    settings.grace_days)
        with line_progress("replaying") as tick:
            stats = replay(args.files, store, pipeline, progress=tick, jobs=jobs, serve=False)
    except (LogError, StoreError) as exc:
        raise UsageError(str(exc)) from None
    if stats.lines == 0:
        raise _no_lines(args.files)
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


def known_until(newest: int | None, period: Period) -> None:
    """Refuses a snapshot after the newest stored event (µs): nothing is known about it."""
    from models.calendar import local_day

    if newest is None:
        raise UsageError("the store is empty: run `vardgaranti replay FILE…` first")
    last = date.fromordinal(local_day(newest))
    if period.as_of > last.toordinal():
        raise UsageError(f"--as-of: {date.fromordinal(period.as_of)} is after the newest "
                         f"event's date {last}: nothing is known about it yet")


def cmd_query(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.store import StoreError
    from models.calendar import local_day
    from models.measures import arrange

    store = open_store(args.db or settings.database_url, settings)
    shown = settings.disclosure()
    try:
        period = window_period(store, args.window, args.from_, args.to, args.as_of)
        newest = store.newest_event_us()
        known_until(newest, period)
        rows = arrange(store.per_unit(period, args.indicator), args.unit)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    if not rows and args.unit not in (None, REGION_UNIT):
        raise UsageError(f"--unit: '{args.unit}' has no clock in the store"
                         + (f" for {args.indicator}" if args.indicator else ""))
    watermark = (None if newest is None else
                 date.fromordinal(local_day(newest - settings.allowed_lateness_us)))
    as_of = date.fromordinal(period.as_of)
    header: dict[str, Any] = _header(period)
    header["window"] = args.window if not (args.from_ or args.to) else "custom"
    header["final"] = shown.final(as_of, watermark)
    header["min_cases"] = shown.min_cases
    _emit(args.format, header, rows, shown)
    if not header["final"]:
        stderr.print(f"preliminary: late events may still change these figures; final once "
                     f"the store has events after {shown.final_after(as_of)} "
                     "(VARDGARANTI_GRACE_DAYS)", markup=False)
    return 0


def _header(period: Period) -> dict[str, Any]:
    return {
        "as_of": date.fromordinal(period.as_of).isoformat(),
        "from": date.fromordinal(period.first).isoformat(),
        "to": date.fromordinal(period.last).isoformat(),
    }


def _emit(fmt: str, header: dict[str, Any], rows: list[Row],
          shown: Disclosure | None = None) -> None:
    from vardgaranti import output

    if fmt == "json":
        print(output.as_json(header, rows, shown))
    elif fmt == "csv":
        sys.stdout.write(output.as_csv(rows, shown))
        sys.stdout.flush()  # before any note on stderr, so a terminal shows them in order
    else:
        from web.format import day
        from web.labels import t

        first, last, as_of = (date.fromisoformat(header[k]) for k in ("from", "to", "as_of"))
        title = (f"Vårdgaranti {day(first)} – {day(last)}, "
                 + t("waiting_at_end").format(day(as_of)))
        if shown is not None:
            title += "; " + t("suppressed_note").format(shown.label, shown.min_cases)
        output.as_table(title, rows, Console(highlight=False), shown)


# ---------------------------------------------------------------- units


def cmd_units(args: argparse.Namespace, settings: Settings) -> int:
    import csv
    import io

    import orjson
    from rich.table import Table
    from sqlalchemy import case, func, select
    from sqlalchemy.exc import SQLAlchemyError

    from models.region import UNITS_BY_ID
    from models.tables import ClockRow

    store = open_store(args.db or settings.database_url, settings)
    c = ClockRow.__table__.c  # type: ignore[attr-defined]
    query = (select(c.unit_id, func.count(), func.sum(case((c.state == "open", 1), else_=0)))
             .group_by(c.unit_id).order_by(c.unit_id))
    try:
        with store.engine.connect() as conn:
            found = [(str(u), int(n), int(o or 0)) for u, n, o in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise UsageError(f"the store cannot be read: {str(exc).splitlines()[0]}") from None
    if not found:
        raise UsageError("the store has no clocks: run `vardgaranti replay FILE…` first")
    units: list[dict[str, Any]] = [
        {"unit_id": u, "name": UNITS_BY_ID[u].name if u in UNITS_BY_ID else "", "clocks": n,
         "open": o} for u, n, o in found]
    if args.format == "json":
        print(orjson.dumps({"units": units}, option=orjson.OPT_INDENT_2).decode())
    elif args.format == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(units[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(units)
        sys.stdout.write(buf.getvalue())
    else:
        table = Table(title=f"{len(units)} enheter i lagret", title_justify="left")
        for col, justify in (("enhet (--unit)", "left"), ("namn", "left"),
                             ("klockor", "right"), ("öppna nu", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for u in units:
            table.add_row(u["unit_id"], u["name"], _sv(u["clocks"]), _sv(u["open"]))
        Console().print(table)
    return 0


def _sv(n: int) -> str:
    """A whole number the Swedish way: thin space between thousands."""
    return f"{n:,}".replace(",", "\u202f")


# ---------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.export import export_openmetrics
    from consumers.store import StoreError

    if args.from_ > args.to:
        raise UsageError(f"--from {args.from_} is after --to {args.to}")
    store = open_store(args.db or settings.database_url, settings)
    try:
        if args.out is None:
            samples = export_openmetrics(store, args.from_, args.to, sys.stdout)
        else:
            with args.out.open("w", encoding="utf-8") as out:
                samples = export_openmetrics(store, args.from_, args.to, out)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out {args.out}: {exc.strerror}") from None
    stderr.print(f"wrote {samples} samples ({args.from_} – {args.to})", markup=False)
    return 0


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.store import StoreError
    from vardgaranti.demo import DemoOptions, PortBusy, run

    if args.scale <= 0:
        raise UsageError("--scale must be above 0")
    opts = DemoOptions(
        year=args.year, scale=args.scale, seed=args.seed, data_dir=args.data_dir,
        host=settings.http_host, port=args.port or settings.http_port,
    )
    try:
        return run(opts, settings)
    except (StoreError, PortBusy) as exc:
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


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help names it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (default is None or default is argparse.SUPPRESS or default is False
                or "default" in text or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vardgaranti", formatter_class=_Help,
        description="Monitor of the Swedish care guarantee (vårdgaranti): guarantee clocks "
        "per case, compliance per unit and region-wide, alerts and the worklist.",
        epilog="Start with `vardgaranti demo`. `vardgaranti COMMAND --help` describes each "
        "command. Settings: VARDGARANTI_* environment variables (see docs/settings.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")

    def command(name: str, summary: str, description: str, run: Command) -> _Parser:
        p: _Parser = sub.add_parser(name, help=summary, description=description,
                                    formatter_class=_Help)
        p.set_defaults(run=run)
        return p

    def logs(p: argparse.ArgumentParser) -> None:
        p.add_argument("files", nargs="+", type=_existing, metavar="FILE",
                       help="event log, .jsonl or .jsonl.gz; - reads standard input")

    def dates(p: argparse.ArgumentParser, first: str, last: str, as_of: str,
              as_of_required: bool = False) -> None:
        p.add_argument("--from", dest="from_", type=_date, metavar="DATE", help=first)
        p.add_argument("--to", type=_date, metavar="DATE", help=last)
        p.add_argument("--as-of", type=_date, metavar="DATE", help=as_of,
                       required=as_of_required)

    def fmt(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                       help="table for people, json or csv for programs")

    def streaming(p: argparse.ArgumentParser, port: str) -> None:
        p.add_argument("--bootstrap", metavar="HOST:PORT",
                       help="Kafka servers (default: VARDGARANTI_KAFKA_BOOTSTRAP)")
        p.add_argument("--port", type=int, help=port)

    def db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", metavar="URL",
                       help="database URL (default: VARDGARANTI_DATABASE_URL, "
                       "sqlite:///vardgaranti.db)")

    p = command(
        "demo", "generate a year, replay it, show it, serve the API",
        "The main job on the embedded default, no servers needed: generates a synthetic "
        "year for the region, replays it into a SQLite store, prints the compliance table "
        "against the targets and last year's figures, then serves /metrics and the API "
        "until Ctrl-C. The log and the store are cached in --data-dir.", cmd_demo)
    p.add_argument("--scale", type=float, default=0.1,
                   help="share of the region's real volume (1 = about 3.7 million events)")
    p.add_argument("--port", type=int,
                   help="HTTP port (default: VARDGARANTI_HTTP_PORT, 8000)")
    p.add_argument("--year", type=int, default=date.today().year - 1,
                   help="calendar year to generate")
    p.add_argument("--seed", type=int, default=1, help="random seed: same seed, same log")
    p.add_argument("--data-dir", type=Path, default=Path(".cache/demo"),
                   help="where the generated log and the demo store are kept")

    p = command(
        "report", "compute the measures straight from event logs",
        "Reads event logs and prints, per indicator and unit, the completed and waiting "
        "measures at a snapshot (the end of --as-of, Europe/Stockholm). Nothing is stored. "
        "Rejected lines are counted on stderr and kept with --dead-letter.", cmd_report)
    logs(p)
    dates(p, "first local date of the period (default: the first of --as-of's month)",
          "last local date of the period (default: --as-of)",
          "snapshot: the end of this local day", as_of_required=True)
    p.add_argument("--unit", metavar="UNIT",
                   help="only this unit's rows; ALL: region-wide only (list: `units`)")
    fmt(p)
    p.add_argument("--dead-letter", type=Path, metavar="FILE",
                   help="write rejected lines here, as JSON lines")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes sharing the cases (default: the number of cores; "
                        "1: this process only; standard input is read by one process)")

    p = command(
        "generate", "write a synthetic event log for the region",
        "Writes a deterministic synthetic year (same seed, same bytes) for a region like "
        "Västmanland, with every event type, late and duplicate lines, and malformed lines "
        "at --bad-rate. At --scale 1 that is about 3.7 million events (87 MB gzipped).",
        cmd_generate)
    p.add_argument("--year", type=int, required=True, help="calendar year, e.g. 2024")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="output file, .jsonl or .jsonl.gz (gzip: a tenth of the size)")
    p.add_argument("--seed", type=int, default=1, help="random seed: same seed, same log")
    p.add_argument("--scale", type=float, default=0.1,
                   help="share of the region's real volume (1 = about 3.7 million events)")
    p.add_argument("--bad-rate", type=float, default=0.0, metavar="SHARE",
                   help="share of malformed lines, 0 to 0.5")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--incident", action="append", default=[],
                   metavar="UNIT:INDICATOR:FROM:TO:RATE",
                   help="inject a collapse: of the unit's clocks due FROM..TO only the share "
                   "RATE is within the limit (repeatable; docs/alerts.md)")

    p = command(
        "replay", "process event logs into the store, or publish them to Kafka",
        "Process event logs into the store (embedded mode), or with --to-kafka publish "
        "every line unchanged to the events topic (key: case_id, record timestamp: "
        "occurred_at) for the worker. Replaying or publishing the same log twice is safe: "
        "repeated event ids are ignored.", cmd_replay)
    logs(p)
    db(p)
    p.add_argument("--to-kafka", type=_bootstrap, metavar="BOOTSTRAP",
                   help="publish to Kafka (host:port[,host:port…]) instead of the store")
    p.add_argument("--topic", help="with --to-kafka: topic (default: VARDGARANTI_EVENTS_TOPIC)")
    p.add_argument("--rate", type=_rate, metavar="EVENTS_PER_S",
                   help="with --to-kafka: at most this many lines a second (default: no limit)")
    p.add_argument("--compression", choices=("none", "gzip", "snappy", "lz4", "zstd"),
                   help="with --to-kafka: record batch compression (default: gzip)")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="with --to-kafka: give up connecting after this many seconds "
                   "(default: 15)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="processes reading the lines, each for its part of the cases, while "
                   "this one writes; into an empty store they evaluate their cases too and "
                   "keep every case of their part in memory (default 1: this process only, "
                   "which lets final cases go; standard input is read by one process)")

    p = command(
        "query", "read stored aggregates",
        "Reads the store that `replay` (or the streaming sink) wrote: the rows of `report` "
        "for a window ending at the newest stored event, or for --from/--to. Says whether "
        "the figures are final (the month is past its end plus VARDGARANTI_GRACE_DAYS) and "
        "shows measures built on fewer than VARDGARANTI_MIN_CASES cases as \"< N\".",
        cmd_query)
    p.add_argument("--indicator", choices=INDICATOR_IDS, help="one indicator (default: all)")
    p.add_argument("--unit", metavar="UNIT",
                   help="only this unit's rows; ALL: region-wide only (list: `units`)")
    p.add_argument("--window", choices=WINDOWS, default="month",
                   help="period ending at the newest event's date")
    dates(p, "first local date (with --to; instead of --window)",
          "last local date (with --from)",
          "day of the waiting snapshot (default: --to, or the newest event's date)")
    fmt(p)
    db(p)

    p = command(
        "units", "list the units in the store",
        "Lists the units (enheter) the store has clocks for, with the synthetic region's "
        "name where known, the number of clocks and how many are open now: the values "
        "--unit takes.", cmd_units)
    fmt(p)
    db(p)

    p = command(
        "topics", "create the Kafka topics of the streaming mode",
        "Creates the events, dead-letter and breaches topics; existing ones are kept.",
        cmd_topics)
    p.add_argument("action", choices=("create",),
                   help="create the events, DLQ and breaches topics (existing ones are kept)")
    p.add_argument("--bootstrap", type=_bootstrap, metavar="HOST:PORT",
                   help="Kafka servers (default: VARDGARANTI_KAFKA_BOOTSTRAP)")
    p.add_argument("--partitions", type=_at_least_one, metavar="N",
                   help="partitions per topic (default: VARDGARANTI_PARTITIONS, 6)")
    p.add_argument("--replication-factor", type=_at_least_one, metavar="N",
                   help="replicas per partition (default: VARDGARANTI_REPLICATION_FACTOR, 1)")
    p.add_argument("--timeout", type=_seconds, default=15.0, metavar="SECONDS",
                   help="give up after this many seconds")

    p = command(
        "worker", "the Faust worker (streaming mode)",
        "Consumes the events topic, keeps the clocks in changelogged tables, sends breach "
        "and at-risk notices, and serves /metrics and the API like the demo.", cmd_worker)
    streaming(p, "HTTP port (default: VARDGARANTI_HTTP_PORT, 8000)")
    p.add_argument("--loglevel", choices=("debug", "info", "warning", "error"), default="info",
                   help="how much the worker logs")

    p = command(
        "sink", "write the worker's output into the store (streaming mode)",
        "Reads the worker's table changelogs, notices and dead letters and writes the store "
        "that `query` and SQL read.", cmd_sink)
    streaming(p, "health/metrics port (default: VARDGARANTI_SINK_PORT, 8001)")
    db(p)

    p = command(
        "export", "write stored daily figures for Prometheus (backfill)",
        "Writes the stored figures as OpenMetrics, one sample per series and day at the end "
        "of the local day, for `promtool tsdb create-blocks-from openmetrics` (docs/alerts.md).",
        cmd_export)
    p.add_argument("format", choices=("openmetrics",), help="the output format")
    p.add_argument("--from", dest="from_", type=_date, required=True, metavar="DATE",
                   help="first local date")
    p.add_argument("--to", type=_date, required=True, metavar="DATE", help="last local date")
    db(p)
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="file to write (default: standard output)")

    p = command(
        "dashboards", "push the Grafana dashboards, or check them",
        "Pushes the dashboards through the Grafana HTTP API, or lists how the deployed ones "
        "differ from the files (exit 1 when they differ).", cmd_dashboards)
    p.add_argument("action", choices=("push", "check"), help="push the files, or compare")
    p.add_argument("--url", required=True, help="Grafana base URL")
    p.add_argument("--token", help="Grafana service-account token (default: GRAFANA_TOKEN)")
    p.add_argument("--folder", default="vardgaranti", help="folder uid for push")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        stderr.print(f"vardgaranti: error: {bad_setting(exc)}", markup=False)
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
