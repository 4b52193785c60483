"""`generate --incident` covers clocks by the deadline they actually have, after pauses and
restarts, as the store sees it."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

from sqlalchemy import select

from consumers.replay import Pipeline, replay
from consumers.store import Store
from models.settings import Settings
from models.tables import ClockRow
from vardgaranti.generate import Incident, generate

UNIT, INDICATOR = "vas-kirurgi", "besok_90"


def _transferred(log: Path) -> set[str]:
    with gzip.open(log, "rt", encoding="utf-8") as f:
        return {e["case_id"] for e in map(json.loads, f) if e["type"] == "case.transferred"}


def test_paused_and_restarted_clocks_due_in_the_incident_are_late(tmp_path: Path) -> None:
    # From April: clocks started in the first quarter whose pause or restart moved their
    # deadline into the incident are covered too (their nominal deadline is before it).
    inc = Incident(UNIT, INDICATOR, date(2024, 4, 1), date(2024, 12, 31), 0.0)
    log = tmp_path / "year.jsonl.gz"
    generate(log, 2024, seed=4, scale=0.05, progress=False, incidents=[inc])
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    settings = Settings()
    replay([log], store, Pipeline.restore(store, settings.rules(),
                                          settings.allowed_lateness_us))
    moved = _transferred(log)  # a clock moved in from another unit is not the incident's

    c = ClockRow.__table__.c  # type: ignore[attr-defined]
    q = select(c.case_id, c.started_at, c.deadline, c.within).where(
        c.unit_id == UNIT, c.indicator == INDICATOR, c.state == "fulfilled",
        c.deadline >= inc.first, c.deadline <= inc.last)
    with store.engine.connect() as conn:
        rows = [r for r in conn.execute(q) if r.case_id not in moved]
    paused = [r for r in rows if (r.deadline - r.started_at.date()).days != 90]
    assert len(rows) >= 100
    assert [r.case_id for r in rows if r.within] == []
    assert paused  # a medical pause moved these deadlines
