"""The pages staff open: overview, units, one unit, the worklist, sign-in; /docs offline.

Server-rendered HTML (Jinja2) and inline SVG, no script of our own and nothing from another
host: the Swagger UI and ReDoc assets come from the `fastapi-offline` package. Data is read
only through the API's `Source` and the watermark's date, as the API does; the routes are
`async` for the same reason as the API's (a read sees the state between two batches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, quote

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from models.indicators import BY_ID, INDICATORS, REGION_UNIT
from models.measures import WINDOWS, arrange, window_first
from models.region import UNITS_BY_ID
from web import export
from web import format as fmt
from web.auth import Access, SignInRequired, local_path
from web.charts import Series, month_chart
from web.figures import Figures, monthly_shares, rows_of
from web.format import Lang
from web.labels import indicator_name, t, unit_group, unit_label

if TYPE_CHECKING:
    from web.api import Source

log = logging.getLogger("vardgaranti.api")

HERE = Path(__file__).parent
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
LANG_COOKIE = "vardgaranti_lang"
WORKLIST_SHOWN = 500  # rows on the page; the export takes up to the API's maximum
EXPORT_MAX = 10_000
KIND_ORDER = {"vardcentral": 0, "clinic": 1, "bup": 2}
Text = Annotated[str | None, Query(max_length=64)]


@dataclass(frozen=True)
class Freshness:
    """How new the data is: the watermark's date, its instant when the runtime knows it,
    and whether the events are made up (the demo says so)."""

    today: Callable[[], date | None]
    watermark_us: Callable[[], int | None] | None = None
    synthetic: bool = False

    def label(self, lang: Lang) -> str:
        ts = self.watermark_us() if self.watermark_us is not None else None
        if ts is not None:
            return fmt.moment(ts, lang)
        day = self.today()
        return fmt.day(day, lang) if day is not None else t("no_data", lang)


def lang_of(request: Request) -> Lang:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if asked == "en" else "sv"


def mount_pages(app: FastAPI, source: Source, access: Access, fresh: Freshness) -> None:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    figures = Figures(source, fresh.today)
    router = APIRouter(include_in_schema=False)
    signed_in = [Depends(access.page_guard())]

    def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = lang_of(request)
        other: Lang = "sv" if lang == "en" else "en"
        switch = request.url.include_query_params(lang=other)
        html = env.get_template(template).render(
            request=request, lang=lang, t=partial(t, lang=lang),
            number=partial(fmt.number, lang=lang), share=partial(fmt.share, lang=lang),
            day=partial(fmt.day, lang=lang),
            local_time=fmt.local_time, indicator_name=partial(indicator_name, lang=lang),
            unit_label=partial(unit_label, lang=lang), indicators=INDICATORS,
            freshness=fresh.label(lang), synthetic=fresh.synthetic,
            can_sign_out=not access.open,
            switch_url=f"{switch.path}?{switch.query}", **ctx,
        )
        response = HTMLResponse(html, status_code=status)
        if "lang" in request.query_params:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        return response

    def charts(lang: Lang, year: int, today: date, unit: str, ids: list[str]) -> list[Markup]:
        now = monthly_shares(figures.months(year, today), unit)
        last_year = figures.whole_year(year - 1, today)
        before = monthly_shares(last_year, unit) if last_year is not None else None
        months = fmt.month_names(lang)
        out = []
        for ind_id in ids:
            ind = BY_ID[ind_id]
            series = [Series(str(year), now[ind_id], "this-year")]
            if before is not None:
                series.append(Series(str(year - 1), before[ind_id], "last-year"))
            elif unit == REGION_UNIT:  # no data for last year: the published figure
                series.append(Series(f"{t('report', lang)} 2023", [ind.result_2023] * 12,
                                     "report"))
            out.append(Markup(month_chart(
                indicator_name(ind_id, lang), months, series, ind.target,
                f"{t('target', lang)} {fmt.share(ind.target, lang)}",
                partial(fmt.share, lang=lang), partial(fmt.whole_share, lang=lang),
            )))
        return out

    def units_with_data(today: date) -> list[str]:
        per_unit = figures.between(today.replace(day=1), today)
        ids = {u for (_, u), row in per_unit.items() if row.clocks > 0}
        return sorted(ids, key=_unit_order)

    def no_data(request: Request, title: str) -> HTMLResponse:
        return render(request, "empty.html", title=title, nav="", message=t("no_data",
                                                                            lang_of(request)))

    @router.get("/", dependencies=signed_in)
    async def overview(
        request: Request, year: Annotated[int | None, Query(alias="ar")] = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        today = fresh.today()
        if today is None:
            return no_data(request, t("overview", lang))
        year = year if year is not None and today.year - 20 < year <= today.year else today.year
        last = min(date(year, 12, 31), today)
        rows = rows_of(figures.between(date(year, 1, 1), last), REGION_UNIT)
        previous = (rows_of(figures.between(date(year - 1, 1, 1), date(year - 1, 12, 31)),
                            REGION_UNIT) if figures.whole_year(year - 1, today) else {})
        return render(
            request, "overview.html", title=t("overview", lang), nav="overview", year=year,
            first=date(year, 1, 1), last=last, rows=rows, previous=previous,
            charts=charts(lang, year, today, REGION_UNIT, [i.id for i in INDICATORS]),
            newer=year < today.year,
        )

    @router.get("/enheter", dependencies=signed_in)
    async def units(request: Request, q: Text = None, grupp: Text = None) -> HTMLResponse:
        lang = lang_of(request)
        today = fresh.today()
        if today is None:
            return no_data(request, t("units", lang))
        totals: dict[str, list[int]] = {}
        for (_, unit_id), r in figures.between(today.replace(day=1), today).items():
            acc = totals.setdefault(unit_id, [0, 0])
            acc[0] += r.waiting
            acc[1] += r.waiting_over_limit
        needle = (q or "").strip().casefold()
        groups: dict[str, list[tuple[str, str, int, int]]] = {}
        for unit_id in units_with_data(today):
            meta = UNITS_BY_ID.get(unit_id)
            kind = meta.kind if meta is not None else "other"
            if grupp and grupp != kind:
                continue
            town = meta.town if meta is not None else ""
            if needle and not any(needle in s.casefold()
                                  for s in (unit_id, unit_label(unit_id), town)):
                continue
            waiting, over = totals.get(unit_id, [0, 0])
            groups.setdefault(unit_group(unit_id, lang), []).append(
                (unit_id, town, waiting, over))
        return render(request, "units.html", title=t("units", lang), nav="units",
                      groups=groups, q=q or "", grupp=grupp or "", today=today)

    @router.get("/enheter/{unit}", dependencies=signed_in)
    async def unit_page(request: Request, unit: str, window: str = "month") -> HTMLResponse:
        lang = lang_of(request)
        today = fresh.today()
        if today is None:
            return no_data(request, unit_label(unit, lang))
        window = window if window in WINDOWS else "month"
        first = window_first(window, today)
        rows = rows_of(figures.between(first, today), unit)
        year_rows = rows_of(figures.between(date(today.year, 1, 1), today), unit)
        if not year_rows and unit not in units_with_data(today):
            return render(request, "empty.html", 404, title=unit, nav="units",
                          message=t("unknown_unit", lang))
        ids = [i.id for i in INDICATORS if i.id in year_rows]
        return render(
            request, "unit.html", title=unit_label(unit, lang), nav="units", unit=unit,
            group=unit_group(unit, lang), window=window, windows=WINDOWS, first=first,
            today=today, rows=rows, charts=charts(lang, today.year, today, unit, ids),
        )

    @router.get("/aggregat.csv", dependencies=signed_in)
    async def aggregates_export(request: Request, enhet: Text = None,
                          window: str = "month") -> Response:
        today = fresh.today()
        if today is None:
            return Response(t("no_data", lang_of(request)), status_code=503)
        window = window if window in WINDOWS else "month"
        first = window_first(window, today)
        rows = arrange(figures.between(first, today), enhet or None)
        body = export.aggregates_csv(rows, first, today, today, lang_of(request))
        return export.attachment(body, f"vardgaranti-{enhet or 'region'}-{today}.csv")

    def worklist_query(limit: int, enhet: str | None,
                       indikator: str | None) -> tuple[date | None, list[Any]]:
        today = fresh.today()
        if today is None:
            return None, []
        indicator = indikator if indikator in BY_ID else None
        return today, source.at_risk(indicator, enhet or None, limit)

    @router.get("/arbetslista", dependencies=signed_in)
    async def worklist(
        request: Request, enhet: Text = None, indikator: Text = None,
    ) -> HTMLResponse:
        lang = lang_of(request)
        today, cases = worklist_query(WORKLIST_SHOWN + 1, enhet, indikator)
        if today is None:
            return no_data(request, t("worklist", lang))
        return render(
            request, "worklist.html", title=t("worklist", lang), nav="worklist",
            cases=cases[:WORKLIST_SHOWN], more=len(cases) > WORKLIST_SHOWN, today=today,
            enhet=enhet or "", indikator=indikator or "", units=units_with_data(today),
            export_url="/arbetslista.csv" + (f"?{request.url.query}" if request.url.query else ""),
        )

    @router.get("/arbetslista.csv", dependencies=signed_in)
    async def worklist_export(request: Request, enhet: Text = None,
                        indikator: Text = None) -> Response:
        today, cases = worklist_query(EXPORT_MAX, enhet, indikator)
        if today is None:
            return Response(t("no_data", lang_of(request)), status_code=503)
        body = export.worklist_csv(cases, today, lang_of(request))
        return export.attachment(body, f"arbetslista-{today}.csv")

    # ------------------------------------------------------------ sign-in

    @router.get("/logga-in")
    async def sign_in_form(request: Request, next: str | None = None) -> Response:
        if access.open:
            return RedirectResponse(local_path(next), 303)
        return render(request, "signin.html", title=t("sign_in", lang_of(request)), nav="",
                      next=local_path(next), wrong=False)

    @router.post("/logga-in")
    async def sign_in(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        target = local_path((form.get("next") or ["/"])[0])
        if access.open:
            return RedirectResponse(target, 303)
        if not access.token_ok(given):
            log.warning("refused sign-in: %s token", "wrong" if given else "no")
            return render(request, "signin.html", 401, title=t("sign_in", lang_of(request)),
                          nav="", next=target, wrong=True)
        response = RedirectResponse(target, 303)
        access.start_session(request, response)
        return response

    @router.post("/logga-ut")
    async def sign_out() -> Response:
        response = RedirectResponse("/logga-in", 303)
        access.end_session(response)
        return response

    # ------------------------------------------------------------ API documentation, offline

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} – API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from another host
        )

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} – API",
            redoc_js_url="/static/docs/redoc.standalone.js",
            redoc_favicon_url="/static/docs/favicon.png", with_google_fonts=False,
        )

    async def to_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/logga-in?next={quote(exc.next_path, safe='/')}", 303)

    app.include_router(router)
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def _unit_order(unit_id: str) -> tuple[int, str, str]:
    """Units by group, hospital or town, then name, in Swedish alphabetical order."""
    meta = UNITS_BY_ID.get(unit_id)
    if meta is None:
        return (len(KIND_ORDER), "", unit_id)
    return (KIND_ORDER[meta.kind], fmt.swedish_key(meta.hospital or meta.town),
            fmt.swedish_key(meta.name))
