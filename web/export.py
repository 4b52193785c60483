"""CSV that Excel opens right with Swedish settings: semicolons, decimal comma, UTF-8 with BOM.

Every row carries the period it describes, so a sheet pasted elsewhere still says when.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date

from fastapi.responses import Response

from models.measures import Row
from models.worklist import AtRisk
from web import format as fmt
from web.format import Lang
from web.labels import indicator_name, t, unit_label

Cell = object  # str or int: csv writes either


def excel_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def attachment(body: bytes, filename: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _percent(v: float | None, lang: Lang) -> str:
    """A share as a plain number of percent (88,4): Excel reads it as a number."""
    return fmt.decimal(None if v is None else v * 100, lang)


def aggregates_csv(rows: Sequence[Row], first: date, last: date, as_of: date, lang: Lang) -> bytes:
    header = [t("from", lang), t("to", lang), t("as_of", lang), t("indicator", lang),
              "unit_id", t("unit", lang), t("completed", lang), t("within", lang),
              f"{t('share_within', lang)} (%)", t("waiting", lang), t("over_limit", lang),
              f"{t('vgv', lang)} (%)", t("paused", lang), t("excluded", lang),
              t("cancelled", lang), f"{t('target', lang)} (%)"]
    period = [first.isoformat(), last.isoformat(), as_of.isoformat()]
    body = []
    for r in rows:
        d = r.as_dict()
        body.append([
            *period, indicator_name(r.indicator, lang), r.unit_id, unit_label(r.unit_id, lang),
            r.completed, r.completed_within, _percent(d["completed_ratio"], lang), r.waiting,
            r.waiting_over_limit, _percent(d["waiting_ratio"], lang), r.paused, r.excluded,
            r.cancelled, _percent(d["target"], lang),
        ])
    return excel_csv(header, body)


def worklist_csv(cases: Sequence[AtRisk], as_of: date, lang: Lang) -> bytes:
    header = [t("as_of", lang), t("days_left", lang), t("deadline", lang), t("indicator", lang),
              "unit_id", t("unit", lang), t("patient_ref", lang), t("case", lang),
              t("started", lang)]
    body = [
        [as_of.isoformat(), c.days_left, c.deadline, indicator_name(c.indicator, lang),
         c.unit_id, unit_label(c.unit_id, lang), c.patient_ref or "", c.case_id,
         fmt.local_time(c.started_at)]
        for c in cases
    ]
    return excel_csv(header, body)
