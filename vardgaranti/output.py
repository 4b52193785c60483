"""Rendering report rows: rich table, JSON (the row contract in docs/commands.md) and CSV.

With a `Disclosure` (what `query` reads from the store), JSON lists the suppressed cells
beside the rows, and the table and CSV show them as "< N" (models.disclosure).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from models.disclosure import SUPPRESSIBLE, Disclosure
from models.indicators import BY_ID
from models.measures import Row

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


def _pct(v: float | str | None) -> str:
    if isinstance(v, str):  # suppressed
        return v
    return "–" if v is None else f"{v * 100:.1f} %"


def as_table(
    title: str, rows: list[Row], console: Console, shown: Disclosure | None = None
) -> None:
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("indicator", "left"), ("unit", "left"), ("completed", "right"), ("within", "right"),
        ("share", "right"), ("waiting", "right"), ("over limit", "right"),
        ("vårdgarantivärde", "right"), ("paused", "right"), ("excluded", "right"),
        ("cancelled", "right"), ("target", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        d = _cells(r, shown)
        share = d["completed_ratio"]
        met = isinstance(share, float) and share >= BY_ID[r.indicator].target
        style = "bold" if r.unit_id == "ALL" else None
        table.add_row(
            r.indicator, r.unit_id, str(d["completed"]), str(d["completed_within"]),
            _pct(share) if not isinstance(share, float)
            else f"[{'green' if met else 'red'}]{_pct(share)}[/]",
            str(d["waiting"]), str(d["waiting_over_limit"]), _pct(d["waiting_ratio"]),
            str(r.paused), str(r.excluded), str(r.cancelled), _pct(d["target"]),
            style=style,
        )
    console.print(table)
