"""`vardgaranti` command line: thin wrappers over the runtimes.

Exit codes: 0 ok, 2 usage or input error with a one-line message (never a traceback for a
user mistake), 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn

from rich.console import Console

from models.measures import Period
from models.settings import Settings

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
    from vardgaranti import output
    from vardgaranti.progress import line_progress

    period = period_from(args.as_of, args.from_, args.to)
    with DeadLetterFile(args.dead_letter) as dead, line_progress("reading events") as tick:
        try:
            report = build_report(
                args.files, period, unit=args.unit, rules=settings.rules(), dead=dead,
                progress=tick,
            )
        except LogError as exc:
            raise UsageError(str(exc)) from None
    header = {
        "as_of": date.fromordinal(period.as_of).isoformat(),
        "from": date.fromordinal(period.first).isoformat(),
        "to": date.fromordinal(period.last).isoformat(),
    }
    if args.format == "json":
        print(output.as_json(header, report.rows))
    elif args.format == "csv":
        sys.stdout.write(output.as_csv(report.rows))
    else:
        title = (
            f"Vårdgaranti {header['from']} – {header['to']}, "
            f"waiting at the end of {header['as_of']}"
        )
        output.as_table(title, report.rows, Console(width=max(Console().width, 140)))
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
