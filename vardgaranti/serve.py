"""Serving the API and /metrics of an embedded pipeline until SIGINT/SIGTERM (exit 0)."""

from __future__ import annotations

import logging
import signal
from datetime import date

import uvicorn

from consumers.replay import Pipeline
from consumers.store import Store
from models.disclosure import Disclosure
from models.indicators import ORDER
from models.worklist import AtRisk, worklist_at
from web.api import create_app
from web.metrics import MetricsSnapshot, registry_for, snapshot_of
from web.reads import LiveSource, freeze_loaded


def pipeline_snapshot(pipeline: Pipeline) -> MetricsSnapshot:
    return snapshot_of(pipeline.view, pipeline.processed, pipeline.rejected,
                       pipeline.engine.duplicates, pipeline.last_event_wall)


def pipeline_source(pipeline: Pipeline, store: Store) -> LiveSource:
    """Reads at the watermark from the live view; other periods and past worklists from
    the store."""
    def past_worklist(day: date, indicator: str | None, unit: str | None,
                      limit: int) -> list[AtRisk]:
        cases = store.worklist_cases(day.toordinal(), indicator)
        return worklist_at(cases.items(), pipeline.engine.rules, day.toordinal(),
                           ORDER[indicator] if indicator is not None else None, unit, limit)

    return LiveSource(pipeline.view, store.per_unit, store.ping, past_worklist)


def serve(
    pipeline: Pipeline, store: Store, host: str, port: int, token: str | None,
    disclosure: Disclosure, synthetic: bool = False,
) -> None:
    app = create_app(
        pipeline_source(pipeline, store), registry_for(lambda: pipeline_snapshot(pipeline)),
        pipeline.today, token, disclosure, watermark_us=lambda: pipeline.view.watermark_us,
        synthetic=synthetic,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    freeze_loaded()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handlers that were there before: make those no-ops so a stop is a clean exit 0
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logging.getLogger("vardgaranti").info("server stopped")
