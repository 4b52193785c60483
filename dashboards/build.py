"""The four Grafana dashboards, generated from the indicator table.

`python -m dashboards.build` writes `dashboards/*.json` (provisioned from files by Grafana,
pushed or checked by `dashboards.grafana`). Every PromQL query uses only the metrics the
app exposes (no recording rules), so the dashboards work against a bare `vardgaranti demo`.
Ratios are computed from summed counts and suppressed below `$min_cases` cases.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from dashboards import sqlpanels
from dashboards.alerts import MIN_CASES, far_threshold
from models.indicators import INDICATORS, Indicator

DASHBOARD_DIR: Final = Path(__file__).resolve().parent
DS_PROM: Final = {"type": "prometheus", "uid": "prometheus"}
WINDOWS: Final = ("month", "7d", "30d", "90d", "365d")
TAG: Final = "vardgaranti"

UIDS: Final = {
    "overview": "vardgaranti-overview",
    "unit": "vardgaranti-unit",
    "worklist": "vardgaranti-worklist",
    "pipeline": "vardgaranti-pipeline",
}

Json = dict[str, Any]

# --------------------------------------------------------------------------- PromQL


def _sel(*matchers: str) -> str:
    return "{" + ", ".join(matchers) + "}"


def _sum(metric: str, sel: str, by: str, offset: str = "") -> str:
    off = f" offset {offset}" if offset else ""
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}({metric}{sel}{off})"


def completed_total(sel: str, by: str, offset: str = "") -> str:
    return (
        f"{_sum('vardgaranti_completed_within', sel, by, offset)} + "
        f"{_sum('vardgaranti_completed_over', sel, by, offset)}"
    )


def completed_ratio(sel: str, by: str, offset: str = "") -> str:
    """within / (within + over), no value when nothing was completed."""
    within = _sum("vardgaranti_completed_within", sel, by, offset)
    return f"{within}\n/ ({completed_total(sel, by, offset)} > 0)"


def waiting_ratio(sel: str, by: str) -> str:
    waiting = _sum("vardgaranti_waiting", sel, by)
    over = _sum("vardgaranti_waiting_over_limit", sel, by)
    return f"({waiting} - {over})\n/ ({waiting} > 0)"


def suppressed(ratio: str, count: str, by: str) -> str:
    """Small-cell suppression: the ratio only where the count reaches $min_cases."""
    on = f"on ({by}) " if by else ""
    return f"({ratio})\nand {on}({count} >= $min_cases)"


def completed_ratio_suppressed(sel: str, by: str, offset: str = "") -> str:
    return suppressed(completed_ratio(sel, by, offset), completed_total(sel, by, offset), by)


def waiting_ratio_suppressed(sel: str, by: str) -> str:
    return suppressed(waiting_ratio(sel, by), _sum("vardgaranti_waiting", sel, by), by)


# --------------------------------------------------------------------------- panels


class Layout:
    """Hands out panel ids and grid positions, row by row (24 columns)."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0

    def place(self, w: int, h: int) -> tuple[int, Json]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        pid, self.next_id = self.next_id, self.next_id + 1
        return pid, pos

    def newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0


def prom_target(ref: str, expr: str, legend: str = "", *, instant: bool = False,
                table: bool = False, interval: str = "") -> Json:
    t: Json = {
        "datasource": DS_PROM,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": ref,
    }
    if table:
        t["format"] = "table"
    if interval:
        t["interval"] = interval
    return t


def thresholds(*steps: tuple[str, float | None]) -> Json:
    return {"mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in steps]}


def percent_defaults(steps: Json | None = None) -> Json:
    d: Json = {"decimals": 1, "max": 1, "min": 0, "unit": "percentunit"}
    if steps is not None:
        d["thresholds"] = steps
    return d


def panel(layout: Layout, kind: str, title: str, targets: list[Json], *, w: int, h: int,
          description: str = "", defaults: Json | None = None,
          overrides: list[Json] | None = None, options: Json | None = None,
          transformations: list[Json] | None = None, datasource: Json = DS_PROM) -> Json:
    pid, pos = layout.place(w, h)
    p: Json = {
        "datasource": datasource,
        "description": description,
        "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []},
        "gridPos": pos,
        "id": pid,
        "options": options or {},
        "targets": targets,
        "title": title,
        "type": kind,
    }
    if transformations:
        p["transformations"] = transformations
    return p


def text_panel(layout: Layout, title: str, content: str, *, w: int, h: int) -> Json:
    pid, pos = layout.place(w, h)
    return {"gridPos": pos, "id": pid, "options": {"content": content, "mode": "markdown"},
            "title": title, "type": "text"}


def stat_options() -> Json:
    return {"colorMode": "background", "graphMode": "area", "justifyMode": "auto",
            "orientation": "auto", "textMode": "value_and_name",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}


def timeseries_options() -> Json:
    return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"}}


def line_override(name: str, color: str, dash: bool) -> Json:
    props: list[Json] = [{"id": "color", "value": {"fixedColor": color, "mode": "fixed"}}]
    if dash:
        props.append({"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def table_organize(renames: dict[str, str]) -> list[Json]:
    return [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True},
                                       "renameByName": renames}},
    ]


# --------------------------------------------------------------------------- variables


def var_query(name: str, label: str, query: str, *, multi: bool = False) -> Json:
    v: Json = {
        "current": {},
        "datasource": DS_PROM,
        "definition": query,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": query,
        "refresh": 2,
        "sort": 1,
        "type": "query",
    }
    if multi:
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return v


def var_min_cases() -> Json:
    d = str(MIN_CASES)
    return {
        "current": {"selected": False, "text": d, "value": d},
        "description": "Small-cell suppression: ratios over fewer cases are not shown.",
        "label": "Minsta antal fall",
        "name": "min_cases",
        "options": [{"selected": True, "text": d, "value": d}],
        "query": d,
        "type": "textbox",
    }


def var_window(default: str = "30d") -> Json:
    return {
        "current": {"selected": True, "text": default, "value": default},
        "includeAll": False,
        "label": "Fönster",
        "multi": False,
        "name": "window",
        "options": [{"selected": w == default, "text": w, "value": w} for w in WINDOWS],
        "query": ",".join(WINDOWS),
        "type": "custom",
    }


def dashboard(uid: str, title: str, description: str, panels: list[Json],
              variables: list[Json], time_from: str) -> Json:
    return {
        "annotations": {"list": []},
        "description": description,
        "editable": False,
        "graphTooltip": 1,
        "links": [{"asDropdown": False, "icon": "external link", "includeVars": False,
                   "keepTime": True, "tags": [TAG], "title": "Vårdgaranti",
                   "type": "dashboards"}],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": [TAG],
        "templating": {"list": variables},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
    }


# --------------------------------------------------------------------------- dashboards


def _pct(x: float) -> str:
    return f"{round(x * 100, 2):g} %"


def _ind_sel(ind: Indicator, window: str | None = None) -> str:
    m = [f'indicator="{ind.id}"']
    if window:
        m.append(f'window="{window}"')
    return _sel(*m)


def _target_steps(ind: Indicator) -> Json:
    """Red below the paging level, orange below target, green at target: from the table."""
    steps: list[tuple[str, float | None]] = [("red", None)]
    if far_threshold(ind) > 0:
        steps.append(("orange", far_threshold(ind)))
    if ind.result_2023 < ind.target:
        steps.append(("yellow", ind.result_2023))
    steps.append(("green", ind.target))
    return thresholds(*steps)


def _limit_text(ind: Indicator) -> str:
    return "same day" if ind.limit_days == 0 else f"{ind.limit_days} days"


def overview() -> Json:
    lay = Layout()
    panels: list[Json] = []
    for ind in INDICATORS:
        facts = (
            f"{ind.name_en} ({ind.care_level}). Limit {_limit_text(ind)}, target "
            f"{_pct(ind.target)}; 2022: {_pct(ind.result_2022)}, 2023: "
            f"{_pct(ind.result_2023)}."
        )
        panels.append(panel(
            lay, "stat", f"{ind.name_sv} - genomförda 30 d",
            [prom_target("A", completed_ratio_suppressed(_ind_sel(ind, "30d"), ""),
                         "Inom gränsen")],
            w=4, h=8, defaults=percent_defaults(_target_steps(ind)), options=stat_options(),
            description=facts + " Completed in the last 30 days: share within the limit "
            "(hidden below $min_cases cases).",
        ))
        panels.append(panel(
            lay, "stat", f"{ind.name_sv} - vårdgarantivärde",
            [prom_target("A", waiting_ratio_suppressed(_ind_sel(ind), ""), "Väntande inom")],
            w=4, h=8, defaults=percent_defaults(_target_steps(ind)), options=stat_options(),
            description=facts + " Waiting now: share of open clocks still within the limit "
            "(hidden below $min_cases waiting).",
        ))
        month = _ind_sel(ind, "month")
        panels.append(panel(
            lay, "timeseries", f"{ind.name_sv} - per månad",
            [
                prom_target("A", completed_ratio_suppressed(month, ""), "I år",
                            interval="1d"),
                prom_target("B", completed_ratio_suppressed(month, "", "1y"), "Förra året",
                            interval="1d"),
                prom_target("C", f"max by (year) (vardgaranti_reference_ratio{_ind_sel(ind)})",
                            "Resultat {{year}}", interval="1d"),
                prom_target("D", f"max(vardgaranti_target_ratio{_ind_sel(ind)})", "Mål",
                            interval="1d"),
            ],
            w=16, h=8, defaults={**percent_defaults(), "custom": {"lineWidth": 2}},
            overrides=[line_override("Mål", "red", True),
                       line_override("Förra året", "text", False),
                       line_override("Resultat 2022", "purple", True),
                       line_override("Resultat 2023", "blue", True)],
            options=timeseries_options(),
            description=facts + " Calendar month to date, like the annual report: the value "
            "on a month's last day is that month's figure. 'Förra året' is the same series a "
            "year earlier; 'Resultat' are the published annual results; 'Mål' the target.",
        ))
        lay.newline()
    panels += sqlpanels.history_panels(
        lay, panel, [line_override("Mål", "red", True)] + [
            line_override(s.legend, "text", s.cases == "waiting") for s in sqlpanels.HISTORY_SERIES
            if s.years_back],
        {**percent_defaults(), "custom": {"lineWidth": 2}}, timeseries_options(), INDICATORS)
    return dashboard(
        UIDS["overview"], "Vårdgaranti - region",
        "All seven care-guarantee indicators region-wide against their targets.",
        panels, [var_min_cases()], "now-1y")


UNIT_SEL: Final = _sel('indicator="$indicator"', 'unit=~"$unit"')
UNIT_WIN_SEL: Final = _sel('indicator="$indicator"', 'unit=~"$unit"', 'window="$window"')


def unit_drilldown() -> Json:
    lay = Layout()
    by = "indicator, unit"
    renames = {"unit": "Enhet", "indicator": "Indikator",
               "Value #A": "Andel inom gränsen", "Value #B": "Genomförda",
               "Value #C": "Vårdgarantivärde", "Value #D": "Väntande",
               "Value #E": "Väntande över gränsen", "Value #F": "Nära tidsgränsen"}
    table = panel(
        lay, "table", "Enheter ($window)",
        [
            prom_target("A", completed_ratio_suppressed(UNIT_WIN_SEL, by), instant=True,
                        table=True),
            prom_target("B", completed_total(UNIT_WIN_SEL, by), instant=True, table=True),
            prom_target("C", waiting_ratio_suppressed(UNIT_SEL, by), instant=True, table=True),
            prom_target("D", _sum("vardgaranti_waiting", UNIT_SEL, by), instant=True,
                        table=True),
            prom_target("E", _sum("vardgaranti_waiting_over_limit", UNIT_SEL, by),
                        instant=True, table=True),
            prom_target("F", _sum("vardgaranti_at_risk", UNIT_SEL, by), instant=True,
                        table=True),
        ],
        w=24, h=10, transformations=table_organize(renames),
        overrides=[{"matcher": {"id": "byRegexp", "options": "Andel.*|Vårdgarantivärde"},
                    "properties": [{"id": "unit", "value": "percentunit"},
                                   {"id": "decimals", "value": 1}]}],
        description="One row per unit. Ratios with fewer than $min_cases cases are empty.",
    )
    ratio = panel(
        lay, "timeseries", "Andel genomförda inom gränsen ($window)",
        [prom_target("A", completed_ratio_suppressed(UNIT_WIN_SEL, by), "{{unit}}"),
         prom_target("B", "max(vardgaranti_target_ratio{indicator=\"$indicator\"})", "Mål")],
        w=12, h=9, defaults=percent_defaults(), overrides=[line_override("Mål", "red", True)],
        options=timeseries_options(),
        description="Completed within the limit / completed, per unit; hidden below "
        "$min_cases cases.",
    )
    wratio = panel(
        lay, "timeseries", "Vårdgarantivärde (väntande inom gränsen)",
        [prom_target("A", waiting_ratio_suppressed(UNIT_SEL, by), "{{unit}}"),
         prom_target("B", "max(vardgaranti_target_ratio{indicator=\"$indicator\"})", "Mål")],
        w=12, h=9, defaults=percent_defaults(), overrides=[line_override("Mål", "red", True)],
        options=timeseries_options(),
        description="(waiting - waiting over limit) / waiting, per unit; hidden below "
        "$min_cases waiting.",
    )
    counts = panel(
        lay, "timeseries", "Väntande, över gränsen och nära tidsgränsen",
        [prom_target("A", _sum("vardgaranti_waiting", UNIT_SEL, "unit"), "Väntande {{unit}}"),
         prom_target("B", _sum("vardgaranti_waiting_over_limit", UNIT_SEL, "unit"),
                     "Över gränsen {{unit}}"),
         prom_target("C", _sum("vardgaranti_at_risk", UNIT_SEL, "unit"),
                     "Nära tidsgränsen {{unit}}"),
         prom_target("D", _sum("vardgaranti_paused", UNIT_SEL, "unit"), "Pausade {{unit}}")],
        w=12, h=9, defaults={"decimals": 0, "min": 0, "unit": "short"},
        options=timeseries_options(),
    )
    done = panel(
        lay, "timeseries", "Genomförda ($window)",
        [prom_target("A", _sum("vardgaranti_completed_within", UNIT_WIN_SEL, "unit"),
                     "Inom {{unit}}"),
         prom_target("B", _sum("vardgaranti_completed_over", UNIT_WIN_SEL, "unit"),
                     "Över {{unit}}"),
         prom_target("C", _sum("vardgaranti_excluded", UNIT_SEL, "unit"),
                     "Undantagna {{unit}}")],
        w=12, h=9, defaults={"decimals": 0, "min": 0, "unit": "short"},
        options=timeseries_options(),
    )
    variables = [
        var_query("indicator", "Indikator",
                  "label_values(vardgaranti_completed_within, indicator)"),
        var_query("unit", "Enhet",
                  'label_values(vardgaranti_completed_within{indicator="$indicator"}, unit)',
                  multi=True),
        var_window(),
        var_min_cases(),
    ]
    return dashboard(
        UIDS["unit"], "Vårdgaranti - enhet",
        "One indicator per unit: completed and waiting measures, with small cells hidden.",
        [table, ratio, wratio, counts, done], variables, "now-90d")


WL_SEL: Final = _sel('indicator=~"$indicator"', 'unit=~"$unit"')

def worklist() -> Json:
    lay = Layout()
    by = "indicator, unit"
    panels = [
        text_panel(
            lay, "Om arbetslistan",
            "Prometheus holds **counts only**. The individual cases (case id, unit, start, "
            "deadline, days left; never patient identity beyond `patient_ref`) come from "
            "the API: `GET /api/v1/at-risk?indicator=&unit=` (bearer token).\n\n"
            "Prometheus innehåller **endast antal**. De enskilda ärendena hämtas från "
            "API:t `GET /api/v1/at-risk`.",
            w=24, h=4,
        ),
        panel(
            lay, "table", "Arbetslista: ärenden nära tidsgränsen",
            [prom_target("A", f"sort_desc({_sum('vardgaranti_at_risk', WL_SEL, by)} > 0)",
                         instant=True, table=True)],
            w=10, h=12, transformations=table_organize(
                {"indicator": "Indikator", "unit": "Enhet", "Value": "Nära tidsgränsen"}),
            description="Open clocks within the indicator's at-risk days of their deadline, "
            "per unit (the Vårdgarantienhet's worklist).",
        ),
        panel(
            lay, "table", "Väntelista",
            [
                prom_target("A", _sum("vardgaranti_waiting", WL_SEL, by), instant=True,
                            table=True),
                prom_target("B", _sum("vardgaranti_waiting_over_limit", WL_SEL, by),
                            instant=True, table=True),
                prom_target("C", waiting_ratio_suppressed(WL_SEL, by), instant=True,
                            table=True),
                prom_target("D", _sum("vardgaranti_paused", WL_SEL, by), instant=True,
                            table=True),
                prom_target("E", _sum("vardgaranti_excluded", WL_SEL, by), instant=True,
                            table=True),
            ],
            w=14, h=12,
            transformations=table_organize({
                "indicator": "Indikator", "unit": "Enhet", "Value #A": "Väntande",
                "Value #B": "Över gränsen", "Value #C": "Vårdgarantivärde",
                "Value #D": "Pausade", "Value #E": "Undantagna"}),
            overrides=[{"matcher": {"id": "byName", "options": "Vårdgarantivärde"},
                        "properties": [{"id": "unit", "value": "percentunit"},
                                       {"id": "decimals", "value": 1}]}],
            description="Open clocks now. Vårdgarantivärde hidden below $min_cases waiting.",
        ),
        panel(
            lay, "timeseries", "Väntande över gränsen",
            [prom_target("A", _sum("vardgaranti_waiting_over_limit", WL_SEL, "indicator"),
                         "{{indicator}}")],
            w=12, h=9, defaults={"decimals": 0, "min": 0, "unit": "short"},
            options=timeseries_options(),
        ),
        panel(
            lay, "timeseries", "Nya överskridanden per dag",
            [prom_target(
                "A", f"sum by (indicator) (increase(vardgaranti_breaches_total{WL_SEL}[1d]))",
                "{{indicator}}", interval="1d")],
            w=12, h=9, defaults={"decimals": 0, "min": 0, "unit": "short"},
            options={**timeseries_options()},
        ),
        panel(
            lay, "table", "Månadshistorik per enhet (PostgreSQL)",
            [sqlpanels.sql_target("A", sqlpanels.MONTH_TABLE_SQL, "table")],
            w=24, h=10, datasource=sqlpanels.DS_PG,
            overrides=[{"matcher": {"id": "byRegexp",
                                    "options": "Andel.*|Vårdgarantivärde|Mål"},
                        "properties": [{"id": "unit", "value": "percentunit"},
                                       {"id": "decimals", "value": 1}]}],
            description="Per month, from the store (window_counts): completed in the month "
            "and waiting at its last day. Ratios below $min_cases cases are empty.",
        ),
    ]
    variables = [
        var_query("indicator", "Indikator",
                  "label_values(vardgaranti_waiting, indicator)", multi=True),
        var_query("unit", "Enhet",
                  'label_values(vardgaranti_waiting{indicator=~"$indicator"}, unit)',
                  multi=True),
        var_min_cases(),
    ]
    return dashboard(
        UIDS["worklist"], "Vårdgaranti - väntelista",
        "Waiting list and the at-risk worklist for the Vårdgarantienhet.",
        panels, variables, "now-30d")


def pipeline() -> Json:
    lay = Layout()
    rate = "[$__rate_interval]"
    seconds = {"decimals": 0, "unit": "s"}
    panels = [
        panel(lay, "stat", "Vattenstämpelns ålder",
              [prom_target("A", "time() - min(vardgaranti_watermark_timestamp_seconds)")],
              w=6, h=5, defaults=seconds, options=stat_options(),
              description="Wall clock minus the oldest worker watermark (event time). Large "
              "after a replay of old logs; it must shrink while live."),
        panel(lay, "stat", "Sedan senaste händelse",
              [prom_target("A", "time() - max(vardgaranti_last_event_timestamp_seconds)")],
              w=6, h=5, defaults=seconds, options=stat_options()),
        panel(lay, "stat", "Bearbetningsfördröjning",
              [prom_target("A", "max(vardgaranti_processing_lag_seconds)")],
              w=6, h=5, defaults=seconds, options=stat_options(),
              description="Wall clock at processing minus event time of the newest event."),
        panel(lay, "stat", "Andel avvisade (15 min)",
              [prom_target(
                  "A",
                  "sum(rate(vardgaranti_events_rejected_total[15m]))\n/ ("
                  "sum(rate(vardgaranti_events_processed_total[15m]))"
                  " + sum(rate(vardgaranti_events_rejected_total[15m])) > 0)")],
              w=6, h=5, defaults={**percent_defaults(thresholds(("green", None),
                                                               ("red", 0.05)))},
              options=stat_options()),
        panel(lay, "timeseries", "Händelser per sekund (per typ)",
              [prom_target("A", f"sum by (type) (rate(vardgaranti_events_processed_total{rate}))",
                           "{{type}}")],
              w=12, h=9, defaults={"unit": "ops"}, options=timeseries_options()),
        panel(lay, "timeseries", "Avvisade per sekund (per orsak, dead letters)",
              [prom_target("A", f"sum by (reason) (rate(vardgaranti_events_rejected_total{rate}))",
                           "{{reason}}")],
              w=12, h=9, defaults={"unit": "ops"}, options=timeseries_options()),
        panel(lay, "timeseries", "Ignorerade per sekund (per orsak)",
              [prom_target("A", f"sum by (reason) (rate(vardgaranti_events_ignored_total{rate}))",
                           "{{reason}}")],
              w=12, h=9, defaults={"unit": "ops"}, options=timeseries_options()),
        panel(lay, "timeseries", "Vattenstämpel per arbetare",
              [prom_target("A", "max by (instance) (vardgaranti_watermark_timestamp_seconds)"
                           " * 1000", "{{instance}}")],
              w=12, h=9, defaults={"unit": "dateTimeAsIso"}, options=timeseries_options()),
        panel(lay, "timeseries", "Bearbetningsfördröjning per arbetare",
              [prom_target("A", "max by (instance) (vardgaranti_processing_lag_seconds)",
                           "{{instance}}")],
              w=12, h=9, defaults={"unit": "s"}, options=timeseries_options()),
        panel(lay, "timeseries", "Konsumentfördröjning (meddelanden)",
              [prom_target("A", "sum by (topic, partition) (vardgaranti_consumer_lag_messages)",
                           "{{topic}}/{{partition}}")],
              w=12, h=9, defaults={"decimals": 0, "min": 0, "unit": "short"},
              options=timeseries_options(),
              description="Streaming mode only (empty in the embedded demo)."),
    ]
    return dashboard(
        UIDS["pipeline"], "Vårdgaranti - pipeline",
        "Health of the event pipeline: throughput, dead letters, watermark and lag.",
        panels, [], "now-6h")


def build_all() -> dict[str, Json]:
    """The dashboards by file name (`<uid>.json`)."""
    boards = [overview(), unit_drilldown(), worklist(), pipeline()]
    return {f"{b['uid']}.json": b for b in boards}


def render(board: Json) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path | str = DASHBOARD_DIR) -> list[Path]:
    d = Path(directory)
    out = []
    for name, board in build_all().items():
        p = d / name
        p.write_text(render(board), encoding="utf-8")
        out.append(p)
    return out


def main(argv: Iterable[str] | None = None) -> int:
    del argv
    for p in write_all():
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
