"""`vardgaranti worker`: the Faust worker with its agents and its HTTP server.

The agents take their topics' records in batches as they were fetched (up to BATCH, see
streams/intake.py): one evaluation per case per event, but one round of acknowledged sends
per batch. The API and /metrics are our FastAPI app (web/api.py), served by uvicorn inside
the worker's event loop so that it reads the agents' state without locks.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn
from faust import Worker as FaustWorker

from consumers.store import Store, StoreError
from models.settings import Settings
from streams.app import Monitor, MonitorApp, build
from streams.intake import Intake
from streams.waiting import broker_answers
from streams.worker import Worker
from web.api import create_app
from web.metrics import registry_for

BATCH = 4000
TICK = 30.0  # seconds between notice checks on the wall clock (live watermark only)
# The cycle collector's thresholds: with the defaults (700, 10, 10) it ran every few
# hundred messages and walked the tables' many small objects again and again, close to half
# of the worker's CPU (docs/performance.md). The tables hold no cycles; Faust's and
# asyncio's few are still collected, just less often.
GC_THRESHOLDS = (50_000, 20, 100)

log = logging.getLogger("vardgaranti.worker")


class _InLoopServer(uvicorn.Server):
    """uvicorn without its own signal handling: the Faust worker owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def wire(monitor: Monitor) -> Worker:
    """Register the agents and the HTTP server on the app; the worker state they share."""
    app, settings = monitor.app, monitor.settings
    worker = Worker(monitor, open_archive(settings))

    # the agents subscribe the topics; their streams stay unread, the fetch loop hands the
    # records to the intakes instead (streams/intake.py)
    assert isinstance(app, MonitorApp)
    events = Intake(app, monitor.events.get_topic_name(), BATCH)
    deltas = Intake(app, monitor.deltas.get_topic_name(), BATCH)
    app.intakes.update({i.topic: i for i in (events, deltas)})

    @app.agent(monitor.events, name="clocks")
    async def clocks(stream: Any) -> None:
        await events.serve(worker.on_events)

    @app.agent(monitor.deltas, name="counters")
    async def counters(stream: Any) -> None:
        await deltas.serve(worker.on_deltas)

    app.timer(interval=TICK)(worker.tick)

    async def serve() -> None:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        api = create_app(worker.source(), registry_for(worker.snapshot), worker.today, token,
                         settings.disclosure(), watermark_us=lambda: worker.view.watermark_us)
        # no lifespan: the app has no start-up hooks, and Faust cancelling this task at a
        # stop would print the lifespan task's CancelledError as a traceback
        config = uvicorn.Config(api, host=settings.http_host, port=settings.http_port,
                                log_level="warning", access_log=False, lifespan="off")
        log.info("serving /metrics and the API on %s:%d", settings.http_host,
                 settings.http_port)
        await _InLoopServer(config).serve()

    app.task(serve)
    return worker


def open_archive(settings: Settings) -> Store | None:
    """The store the sink fills, where final cases are read back from (None: it cannot be
    opened, and every case stays in memory)."""
    try:
        return Store(settings.database_url, settings.sqlite_cache_mb)
    except StoreError as exc:
        log.warning("final cases stay in memory: %s", exc)
        return None


def run(settings: Settings, loglevel: str = "info", **overrides: Any) -> int:
    """Run until SIGINT/SIGTERM; the exit status (0 after a clean stop)."""
    gc.set_threshold(*GC_THRESHOLDS)
    monitor = build(settings, **overrides)
    if not broker_answers(settings):
        return 0  # stopped while waiting for the broker
    wire(monitor)
    worker = FaustWorker(monitor.app, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG below `info`: records for
    # every library message cost a tenth of the worker's time
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0
