"""Rendering report rows: terminal tables, JSON (the row contract in docs/commands.md) and CSV.

The tables speak the pages' language: Swedish labels and unit names, `129 292` and
`88,4 %` (web.format, web.labels), and fit the terminal: when it is narrow the least
needed columns go first, and names wrap rather than being cut. With a `Disclosure` (what
`query` reads from the store), JSON lists the suppressed cells beside the rows, and the
table and CSV show them as "< N" (models.disclosure).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from models.disclosure import SUPPRESSIBLE, Disclosure
from models.indicators import BY_ID, REGION_UNIT
from models.measures import Row
from web import format as fmt
from web.labels import indicator_name, t, unit_label

COLUMNS = (
    "indicator", "unit_id", "completed", "completed_within", "completed_ratio", "waiting",
    "waiting_over_limit", "waiting_ratio", "paused", "excluded", "cancelled", "target",
)


def as_json(header: dict[str, Any], rows: list[Row], shown: Disclosure | None = None) -> str:
    doc = {**header, "rows": [r.as_dict() for r in rows]}
    if shown is not None:
        doc["suppressed"] = shown.listing(rows)
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def _cells(row: Row, shown: Disclosure | None) -> dict[str, Any]:
    """The row's values, suppressed measures replaced by "< N"."""
    cells = row.as_dict()
    if shown is not None:
        for measure in shown.suppressed(row):
            cells.update(dict.fromkeys(SUPPRESSIBLE[measure], shown.label))
    return cells


def as_csv(rows: list[Row], shown: Disclosure | None = None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in _cells(r, shown).items()})
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    numeric: bool = True
    # 0: always shown; otherwise dropped when the terminal is too narrow, highest first
    drop: int = 0


def fitting_table(
    title: str, columns: Sequence[Column], rows: Sequence[tuple[Sequence[str], str | None]],
    available: int,
) -> Table:
    """A table of the columns that fit `available` cells; `rows` are (cells with markup,
    row style). Text columns must come with `numeric=False`."""

    def width(i: int, narrow: bool) -> int:
        """Natural width, or when `narrow` the least: text and headers wrap at spaces,
        numbers never (their spaces are no-break)."""
        texts = [Text.from_markup(cells[i]).plain for cells, _ in rows]
        if narrow and not columns[i].numeric:
            texts = [w for x in texts for w in x.split()]
        header = columns[i].header.split() if narrow else [columns[i].header]
        return max(Text(x).cell_len for x in [*texts, *header])

    def need(keep: list[int], narrow: bool) -> int:
        return 1 + sum(3 + width(i, narrow) for i in keep)

    keep = list(range(len(columns)))
    for level in sorted({c.drop for c in columns if c.drop}, reverse=True):
        if need(keep, narrow=True) <= available:
            break
        keep = [i for i in keep if columns[i].drop != level]
    # rich shares out a shortfall evenly; fix the numbers' widths so that the names give
    narrow = need(keep, narrow=False) > available
    spare = available - need(keep, narrow=True)
    table = Table(title=title, title_justify="left")
    for i in keep:
        col = columns[i]
        fixed = width(i, True) + (spare if not col.numeric else 0) if narrow else None
        table.add_column(col.header, justify="right" if col.numeric else "left", width=fixed)
    for cells, style in rows:
        table.add_row(*(cells[i] for i in keep), style=style)
    return table


def coloured_share(share: float | None, target: float) -> str:
    """The share, green when it meets the target, red when not."""
    if share is None:
        return fmt.DASH
    return f"[{'green' if share >= target else 'red'}]{fmt.share(share)}[/]"


def _shown(value: Any, show: Any) -> str:
    """A cell as shown: a suppressed one as its label ("< 20"), else `show(value)`."""
    return value if isinstance(value, str) else show(value)


def as_table(
    title: str, rows: list[Row], console: Console, shown: Disclosure | None = None
) -> None:
    """One table per indicator (rows come indicator by indicator, region-wide first)."""
    columns = (
        Column(t("unit"), numeric=False), Column(t("completed")), Column(t("within"), drop=1),
        Column(t("share_within")), Column(t("waiting")), Column(t("over_limit")),
        Column(t("vgv"), drop=2), Column(t("paused"), drop=3), Column(t("excluded"), drop=3),
        Column(t("cancelled"), drop=3),
    )
    console.print(title)
    by_indicator: dict[str, list[Row]] = {}
    for r in rows:
        by_indicator.setdefault(r.indicator, []).append(r)
    for ind_id, group in by_indicator.items():
        target = BY_ID[ind_id].target
        cells = []
        for r in group:
            d = _cells(r, shown)
            cells.append(([
                unit_label(r.unit_id), _shown(d["completed"], fmt.number),
                _shown(d["completed_within"], fmt.number),
                _shown(d["completed_ratio"], partial(coloured_share, target=target)),
                _shown(d["waiting"], fmt.number), _shown(d["waiting_over_limit"], fmt.number),
                _shown(d["waiting_ratio"], fmt.share),
                fmt.number(r.paused), fmt.number(r.excluded), fmt.number(r.cancelled),
            ], "bold" if r.unit_id == REGION_UNIT else None))
        heading = f"{indicator_name(ind_id)} · {t('target').lower()} {fmt.share(target)}"
        console.print(fitting_table(heading, columns, cells, console.width))
