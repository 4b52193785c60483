"""HTTP API of the demo server and the worker (docs/commands.md), on FastAPI.

`/metrics`, `/healthz` and `/readyz` are open; `/api/v1/*` needs the bearer token (or the
pages' session cookie, see web.auth) when one is configured. The worklist shows case ids and
`patient_ref` only, never identity.

Every endpoint is `async`: it runs on the server's event loop, which in the streaming worker
is the loop the agents run on, and the agents change the live view in one synchronous step
per batch. A read therefore sees the state between two batches, never half of one
(docs/live-view.md).
"""

import logging
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, Protocol

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.registry import CollectorRegistry

from models.disclosure import Disclosure
from models.indicators import INDICATOR_IDS, REGION_UNIT
from models.measures import WINDOWS, Period, Row, arrange, window_first
from models.worklist import AtRisk
from web.auth import Access
from web.metrics import exposition
from web.pages import Freshness, mount_pages
from web.reads import NotKept

log = logging.getLogger("vardgaranti.api")

IndicatorParam = Literal[INDICATOR_IDS]  # type: ignore[valid-type]
WindowParam = Literal[WINDOWS]  # type: ignore[valid-type]
# FastAPI resolves annotations at runtime: this module keeps them unpostponed
# the worklist's rows per answer unless `limit` says otherwise: the region-wide list runs to
# thousands of clocks, and a page of them is what a person reads (the rest: `next_offset`)
WORKLIST_PAGE = 100


class Source(Protocol):
    """What the API reads (web.reads.LiveSource in both runtimes)."""

    def per_unit(
        self, period: Period, indicator: str | None = None
    ) -> dict[tuple[int, str], Row]: ...

    def at_risk(
        self, indicator: str | None = None, unit: str | None = None, limit: int = 1000,
        as_of: date | None = None,
    ) -> list[AtRisk]: ...

    def units(self) -> set[str]: ...

    def ping(self) -> bool: ...


def create_app(
    source: Source,
    registry: CollectorRegistry,
    today: Callable[[], date | None],
    token: str | None = None,
    disclosure: Disclosure = Disclosure(),  # noqa: B008 (frozen: one shared value is fine)
    watermark_us: Callable[[], int | None] | None = None,
    synthetic: bool = False,
) -> FastAPI:
    """`today` gives the watermark's local date (None before the first event); the pages
    also show `watermark_us`, and label the data synthetic when the demo made it up."""
    app = FastAPI(
        title="vårdgaranti monitor",
        description="Care-guarantee compliance per unit and region-wide, and the worklist.",
        version="1", docs_url=None, redoc_url=None,  # served offline by web.pages
    )
    access = Access(token)
    mount_pages(app, source, access, Freshness(today, watermark_us, synthetic))
    authorised = access.api_guard()

    def watermark_day() -> date:
        day = today()
        if day is None:
            raise HTTPException(503, "no events processed yet")
        return day

    def known(as_of: date | None, unit: str | None) -> date:
        """The watermark's date; refuses a later snapshot and a unit never seen."""
        day = watermark_day()
        if as_of is not None and as_of > day:
            raise HTTPException(422, f"as_of: {as_of} is after the newest event's date {day} "
                                     "(the watermark): nothing is known about it yet")
        if unit is not None and unit != REGION_UNIT and unit not in source.units():
            raise HTTPException(404, f"unit: '{unit}' is unknown (no clock has been there)")
        return day

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if not source.ping():
            return PlainTextResponse("not ready: a dependency is unreachable", status_code=503)
        return PlainTextResponse("ready")

    @app.get("/api/v1/aggregates", dependencies=[Depends(authorised)])
    async def aggregates(
        indicator: IndicatorParam | None = None,
        unit: Annotated[str | None, Query(max_length=64)] = None,
        window: WindowParam = "month",
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: date | None = None,
        as_of: date | None = None,
    ) -> Response:
        """Rows as `vardgaranti report`: the window ending today, or `from`..`to`."""
        if (from_ is None) != (to is None):
            raise HTTPException(422, "query parameters 'from' and 'to' go together")
        snap = as_of or to or watermark_day()
        known(snap, unit)
        first = from_ or window_first(window, snap)
        last = to or snap
        try:
            period = Period.of(first, last, snap)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            rows = arrange(source.per_unit(period, indicator), unit)
        except NotKept as exc:
            raise HTTPException(422, str(exc)) from None
        return _json({
            "as_of": snap.isoformat(), "from": first.isoformat(), "to": last.isoformat(),
            "window": window if from_ is None else "custom",
            "rows": [r.as_dict() for r in rows],
            # preliminary until the month is past its end plus the grace days; measures
            # on fewer than min_cases cases are listed, to be shown as "< N"
            "final": disclosure.final(snap, today()), "min_cases": disclosure.min_cases,
            "suppressed": disclosure.listing(rows),
        })

    @app.get("/api/v1/at-risk", dependencies=[Depends(authorised)])
    async def at_risk(
        indicator: IndicatorParam | None = None,
        unit: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = WORKLIST_PAGE,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        as_of: date | None = None,
    ) -> Response:
        """Open clocks past their deadline or about to pass it, most urgent first (the
        worklist), a page at a time, at the watermark or at the end of an earlier `as_of`
        where the source keeps the clocks' facts (embedded); the worker answers 422 for an
        earlier date."""
        day = known(as_of, unit)
        day = as_of or day
        try:  # one row more than the page: whether another page follows
            items = source.at_risk(indicator, None if unit == REGION_UNIT else unit,
                                   offset + limit + 1, as_of)
        except NotKept as exc:
            raise HTTPException(422, str(exc)) from None
        more = len(items) > offset + limit
        return _json({"as_of": day.isoformat(),
                      "cases": [i.as_dict() for i in items[offset:offset + limit]],
                      "next_offset": offset + limit if more else None})

    return app


def _json(body: dict[str, Any]) -> Response:
    """Plain JSON by orjson: FastAPI's own encoding walked every row again."""
    return Response(orjson.dumps(body), media_type="application/json")
