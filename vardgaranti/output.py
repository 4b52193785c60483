"""Rendering report rows: rich table, JSON (the contract of SPEC §5.1) and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from models.indicators import BY_ID
from models.measures import Row

COLUMNS = (
    "indicator", "unit_id", "completed", "completed_within", "completed_ratio", "waiting",
    "waiting_over_limit", "waiting_ratio", "paused", "excluded", "cancelled", "target",
)


def as_json(header: dict[str, Any], rows: list[Row]) -> str:
    doc = {**header, "rows": [r.as_dict() for r in rows]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def as_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in r.as_dict().items()})
    return buf.getvalue()


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f} %"


def as_table(title: str, rows: list[Row], console: Console) -> None:
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("indicator", "left"), ("unit", "left"), ("completed", "right"), ("within", "right"),
        ("share", "right"), ("waiting", "right"), ("over limit", "right"),
        ("vårdgarantivärde", "right"), ("paused", "right"), ("excluded", "right"),
        ("cancelled", "right"), ("target", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        d = r.as_dict()
        share = d["completed_ratio"]
        met = share is not None and share >= BY_ID[r.indicator].target
        style = "bold" if r.unit_id == "ALL" else None
        table.add_row(
            r.indicator, r.unit_id, str(r.completed), str(r.completed_within),
            f"[{'green' if met else 'red'}]{_pct(share)}[/]" if share is not None else "–",
            str(r.waiting), str(r.waiting_over_limit), _pct(d["waiting_ratio"]),
            str(r.paused), str(r.excluded), str(r.cancelled), _pct(d["target"]),
            style=style,
        )
    console.print(table)
