"""Serving the API and /metrics of an embedded pipeline until SIGINT/SIGTERM (exit 0)."""

from __future__ import annotations

import logging
import signal

import uvicorn

from consumers.replay import Pipeline
from consumers.store import Store
from models.disclosure import Disclosure
from models.engine import at_risk_counts
from web.api import create_app
from web.metrics import MetricsSnapshot, registry_for


def pipeline_snapshot(pipeline: Pipeline) -> MetricsSnapshot:
    engine = pipeline.engine
    today = pipeline.today()
    at_risk = (
        at_risk_counts((c for _, c in engine.clocks()), today.toordinal())
        if today is not None else {}
    )
    return MetricsSnapshot(
        counts=pipeline.counts.items(), watermark_us=engine.watermark_us, at_risk=at_risk,
        processed=pipeline.processed, rejected=pipeline.rejected, ignored=pipeline.ignored,
        last_event_wall=pipeline.last_event_wall, newest_event_us=engine.newest_us,
    )


def serve(
    pipeline: Pipeline, store: Store, host: str, port: int, token: str | None,
    disclosure: Disclosure,
    synthetic: bool = False,
) -> None:
    app = create_app(
        store, registry_for(lambda: pipeline_snapshot(pipeline)), pipeline.today, token,
        disclosure, watermark_us=lambda: pipeline.engine.watermark_us, synthetic=synthetic,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handlers that were there before: make those no-ops so a stop is a clean exit 0
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logging.getLogger("vardgaranti").info("server stopped")
