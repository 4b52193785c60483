"""Before the Faust worker starts: wait for the broker, and say so.

Faust's own start fails at once with a traceback when no bootstrap server answers. Instead
the worker waits, one log line per attempt with a growing pause, while a stand-in HTTP
server answers /healthz (alive: nothing to restart) and /readyz with 503 (not ready). The
worker's own server takes the port over once the broker answers. See docs/streaming.md.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from consumers.kafka_config import unreachable, wait_for_broker
from models.settings import Settings

log = logging.getLogger("vardgaranti.worker")


def waiting_app() -> FastAPI:
    app = FastAPI(title="vårdgaranti worker", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    def readyz() -> PlainTextResponse:
        return PlainTextResponse("waiting for the broker", status_code=503)

    return app


def broker_answers(settings: Settings) -> bool:
    """True once a bootstrap server answers; False when SIGINT/SIGTERM came first."""
    if unreachable(settings) is None:
        return True
    stop = threading.Event()
    with _serving(settings), _stopped_by_signals(stop):
        return wait_for_broker(settings, stop, log)


@contextlib.contextmanager
def _serving(settings: Settings) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(waiting_app(), host=settings.http_host,
                                           port=settings.http_port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="waiting-http", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
