"""A real Prometheus scraping the embedded demo server while a generated log is fed to it.

Every recording rule and every dashboard panel query (PromQL; the PostgreSQL panels are out of
scope) is evaluated through Prometheus' HTTP API and must return data with values in range:
ratios within 0..1, counts and seconds >= 0, never NaN or Inf. The few queries that are empty
on the demo by construction are in EMPTY_ON_DEMO with the reason, and must stay empty.

The server is the app `vardgaranti demo` serves (`web.api.create_app` over the replay
pipeline), run by uvicorn in a thread; the log is replayed in chunks while Prometheus scrapes
every second, so the counters move and `rate()` has something to see. Skipped only when the
`prometheus` binary is absent (`apt-get install prometheus`; CI installs it).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import pytest
import uvicorn
import yaml

from consumers.replay import Pipeline, replay
from consumers.store import Store
from models.clocks import Rules
from models.indicators import INDICATORS
from tests.support.prometheus import (
    Prometheus,
    Sample,
    free_port,
    prometheus_binary,
    running_prometheus,
    wait_for,
)
from vardgaranti.generate import generate
from vardgaranti.serve import pipeline_snapshot
from web.api import create_app
from web.metrics import MetricsSnapshot, registry_for

pytestmark = pytest.mark.integration

ROOT: Final = Path(__file__).resolve().parents[2]
DASHBOARD_DIR: Final = ROOT / "dashboards"
PROM_DIR: Final = ROOT / "deploy" / "prometheus"
JOB: Final = "vardgaranti"

# ~37 000 events: enough for every indicator to complete a clock in the last 30 days
YEAR, SCALE, SEED, BAD_RATE = 2024, 0.01, 5, 0.01
HEAD_SHARE: Final = 0.7  # replayed before Prometheus starts; the rest arrives while scraped
LIVE_CHUNKS: Final = 4

# Values for Grafana's built-in variables. $__rate_interval is at least four scrape
# intervals in Grafana; a minute also spans the whole live feeding here.
BUILTINS: Final = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
# The demo at test scale has small cells: the data pass shows every non-empty cell, the
# suppression pass hides them all.
SHOW_ALL_CELLS: Final = "1"
HIDE_ALL_CELLS: Final = str(10**9)

PG_DATASOURCE: Final = "grafana-postgresql-datasource"

# (panel title pattern, refId) -> why the query is empty on the demo. Each entry must match a
# query, and that query must be empty: a stale entry fails the test.
EMPTY_ON_DEMO: Final[dict[tuple[str, str], str]] = {
    (r".+ - per månad", "B"): (
        "'Förra året' is the same series a year back (offset 1y); this Prometheus holds "
        "a minute of data"),
    (r"Konsumentfördröjning \(meddelanden\)", "A"): (
        "consumer lag exists in streaming mode only; the embedded demo consumes no topic"),
}


# --------------------------------------------------------------------------- the demo server


class LiveDemo:
    """The embedded pipeline and store behind the real app; replay and scrapes take turns.

    The snapshot is taken under the lock and its lazy views are copied, so a scrape never
    iterates counters that a replay is changing.
    """

    def __init__(self, workdir: Path) -> None:
        self.store = Store(f"sqlite:///{workdir / 'demo.db'}")
        self.pipeline = Pipeline.restore(self.store, Rules())
        self.lock = threading.Lock()

    def snapshot(self) -> MetricsSnapshot:
        with self.lock:
            snap = pipeline_snapshot(self.pipeline)
            return replace(snap, live=dict(snap.live), processed=dict(snap.processed),
                           rejected=dict(snap.rejected))

    def feed(self, log: Path) -> None:
        with self.lock:
            replay([log], self.store, self.pipeline)

    def totals(self) -> tuple[int, int]:
        """(events processed, lines rejected) so far."""
        with self.lock:
            return (sum(self.pipeline.processed.values()),
                    sum(self.pipeline.rejected.values()))


class ServerThread:
    def __init__(self, demo: LiveDemo, port: int) -> None:
        app = create_app(demo.store, registry_for(demo.snapshot), demo.pipeline.today)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), "the demo server")
        assert self.server.started, "the demo server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def split_log(log: Path, workdir: Path) -> list[Path]:
    """The log as a head (HEAD_SHARE of the lines) and LIVE_CHUNKS chunks, in order."""
    lines = log.read_bytes().splitlines(keepends=True)
    head = int(len(lines) * HEAD_SHARE)
    step = math.ceil((len(lines) - head) / LIVE_CHUNKS)
    bounds = [0, head, *range(head + step, len(lines), step), len(lines)]
    parts = []
    for n, (a, b) in enumerate(pairwise(bounds)):
        p = workdir / f"part-{n}.jsonl"
        p.write_bytes(b"".join(lines[a:b]))
        parts.append(p)
    return parts


def prometheus_config(port: int) -> dict[str, Any]:
    """The checked-in configuration's `vardgaranti` job pointed at the demo, every second,
    with the checked-in rule files (no Alertmanager)."""
    checked_in = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = [j for j in checked_in["scrape_configs"] if j["job_name"] == JOB]
    (demo_target,) = [s for s in job["static_configs"] if s.get("labels", {}).get("mode")
                      == "demo"]
    job = {**job, "static_configs": [{**demo_target, "targets": [f"127.0.0.1:{port}"]}]}
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "rule_files": [str(PROM_DIR / f) for f in checked_in["rule_files"]],
        "scrape_configs": [job],
    }


def _rfc3339(text: str) -> datetime:
    # Prometheus gives nanoseconds; datetime takes microseconds
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))


def _synced(prom: Prometheus, totals: tuple[int, int]) -> bool:
    """Prometheus has scraped the demo after its last change."""
    got = []
    for metric in ("vardgaranti_events_processed_total", "vardgaranti_events_rejected_total"):
        samples = prom.query(f'sum({metric}{{job="{JOB}"}})')
        got.append(samples[0].value if samples else None)
    return got == [float(t) for t in totals]


@dataclass
class Live:
    prom: Prometheus
    demo: LiveDemo


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    binary = prometheus_binary()
    if binary is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    tmp = tmp_path_factory.mktemp("prometheus-live")
    log = tmp / "year.jsonl"
    generate(log, YEAR, seed=SEED, scale=SCALE, bad_rate=BAD_RATE, progress=False)
    head, *chunks = split_log(log, tmp)
    demo = LiveDemo(tmp)
    demo.feed(head)
    port = free_port()
    with ServerThread(demo, port), running_prometheus(
        binary, prometheus_config(port), tmp / "prometheus"
    ) as prom:
        wait_for(lambda: prom.query(f'up{{job="{JOB}", mode="demo"}} == 1'),
                 "the first scrape of the demo")
        for chunk in chunks:
            demo.feed(chunk)
            wait_for(lambda: _synced(prom, demo.totals()), f"a scrape after {chunk.name}")
        # every rule evaluated at least once on the final data
        synced_at = datetime.now(UTC)

        def evaluated() -> bool:
            return all(r["health"] == "ok" and _rfc3339(r["lastEvaluation"]) > synced_at
                       for r in prom.rules())

        try:
            wait_for(evaluated, "every rule evaluated after the last scrape")
        except AssertionError:
            bad = [(r["name"], r["health"], r.get("lastError")) for r in prom.rules()
                   if r["health"] != "ok"]
            raise AssertionError(f"rules not evaluated cleanly: {bad}\n"
                                 f"{prom.log_tail()}") from None
        yield Live(prom, demo)


# --------------------------------------------------------------------------- checks


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def is_ratio(name_or_expr: str) -> bool:
    """A ratio by name (`*ratio*`), or a quotient of counts in a panel query."""
    s = _strip_strings(name_or_expr)
    return "ratio" in s or "/" in s


def out_of_range(samples: list[Sample], ratio: bool) -> list[Sample]:
    lo, hi = (0.0, 1.0) if ratio else (0.0, math.inf)
    return [s for s in samples
            if not math.isfinite(s.value) or not lo <= s.value <= hi]


def test_out_of_range_detects_bad_values() -> None:
    ok, nan, inf = Sample({}, 0.5), Sample({}, math.nan), Sample({}, math.inf)
    assert out_of_range([ok, Sample({}, 1.0), Sample({}, 0.0)], ratio=True) == []
    assert out_of_range([Sample({}, 1.01), ok, nan], ratio=True) == [Sample({}, 1.01), nan]
    assert out_of_range([Sample({}, 7.0), Sample({}, -1.0), inf], ratio=False) == [
        Sample({}, -1.0), inf]
    assert is_ratio("vardgaranti:waiting_ratio:unit") and is_ratio("a\n/ (b > 0)")
    assert not is_ratio('sum(vardgaranti_waiting{unit=~"a/b"})')


def test_recording_rules_return_data_in_range(live: Live) -> None:
    records = [
        r["record"]
        for f in sorted((PROM_DIR / "rules").glob("*.yml"))
        for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]
        for r in g["rules"] if "record" in r
    ]
    assert len(records) >= 10
    problems = []
    for record in records:
        samples = live.prom.query(record)
        if not samples:
            problems.append(f"{record}: no data")
        elif bad := out_of_range(samples, is_ratio(record)):
            problems.append(f"{record}: out of range: {bad[:3]}")
    assert not problems, "\n".join(problems)


def test_every_rule_loaded_and_healthy(live: Live) -> None:
    """The alerting rules too: no evaluation errors (e.g. many-to-many matches) on real data."""
    rules = live.prom.rules()
    in_file = sum(
        len(g["rules"])
        for f in sorted((PROM_DIR / "rules").glob("*.yml"))
        for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]
    )
    assert len(rules) == in_file
    assert [r["name"] for r in rules if r["health"] != "ok" or r.get("lastError")] == []


def test_the_region_sums_match_the_pipeline(live: Live) -> None:
    """The recorded region-wide waiting equals what the pipeline holds (nothing lost or
    double-counted between /metrics, the scrape and the rules)."""
    snap = live.demo.snapshot()
    assert snap.watermark_us is not None
    today = live.demo.pipeline.today()
    assert today is not None
    waiting: dict[str, int] = {}
    for (ind, _), row in snap.live.items():
        waiting[INDICATORS[ind].id] = waiting.get(INDICATORS[ind].id, 0) + row.waiting
    got = {s.labels["indicator"]: s.value
           for s in live.prom.query("vardgaranti:waiting:region")}
    assert got == {k: float(v) for k, v in waiting.items()}
    assert sum(waiting.values()) > 0


# --------------------------------------------------------------------------- dashboards

_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))

    return _VAR.sub(one, expr)


def _regex_escape(value: str) -> str:
    # as Grafana escapes a multi-value for `=~`: regex metacharacters, backslash doubled
    # for the PromQL string
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def variable_assignments(prom: Prometheus, board: Mapping[str, Any],
                         fixed: Mapping[str, str]) -> list[dict[str, str]]:
    """Every combination a user can pick: each value of a single-value query variable,
    "All" for a multi-value one, the default for the others (or `fixed`)."""
    combos: list[dict[str, str]] = [dict(BUILTINS)]
    for var in board["templating"]["list"]:
        name = var["name"]
        grown = []
        for chosen in combos:
            if name in fixed:
                options = [fixed[name]]
            elif var["type"] == "query":
                m = re.fullmatch(r"label_values\((.*), *(\w+)\)", var["query"])
                assert m, f"{board['uid']}: ${name}: {var['query']}"
                values = prom.label_values(m.group(2), substitute(m.group(1), chosen))
                assert values, f"{board['uid']}: ${name} offers no value"
                if var.get("multi") or var.get("includeAll"):
                    options = ["(" + "|".join(_regex_escape(v) for v in values) + ")"]
                else:
                    options = values
            else:
                options = [str(var["current"]["value"])]
            grown += [{**chosen, name: o} for o in options]
        combos = grown
    return combos


@dataclass(frozen=True)
class Query:
    board: str
    title: str
    ref: str
    raw: str
    expr: str


def panel_queries(prom: Prometheus, fixed: Mapping[str, str]) -> tuple[list[Query], int]:
    """Every PromQL target of every checked-in dashboard with its variables substituted,
    and the number of PostgreSQL targets skipped."""
    queries: dict[tuple[str, str, str, str], Query] = {}
    skipped = 0
    boards = sorted(DASHBOARD_DIR.glob("*.json"))
    assert len(boards) == 4
    for path in boards:
        board = json.loads(path.read_text(encoding="utf-8"))
        combos = variable_assignments(prom, board, fixed)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                ds = target.get("datasource") or panel["datasource"]
                if ds["type"] == PG_DATASOURCE:  # SQL: not for Prometheus
                    skipped += 1
                    continue
                assert ds["type"] == "prometheus", (panel["title"], ds)
                for values in combos:
                    expr = substitute(target["expr"], values)
                    assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
                    key = (board["uid"], panel["title"], target["refId"], expr)
                    queries[key] = Query(board["uid"], panel["title"], target["refId"],
                                         target["expr"], expr)
    return list(queries.values()), skipped


def _allowed_empty(q: Query) -> tuple[str, str] | None:
    for key in EMPTY_ON_DEMO:
        title, ref = key
        if ref == q.ref and re.fullmatch(title, q.title):
            return key
    return None


def test_every_panel_query_returns_data_in_range(live: Live) -> None:
    queries, skipped = panel_queries(live.prom, {"min_cases": SHOW_ALL_CELLS})
    assert skipped >= 1  # the worklist's monthly history from PostgreSQL
    assert len({(q.board, q.title, q.ref) for q in queries}) >= 60
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    for q in queries:
        samples = live.prom.query(q.expr)
        where = f"[{q.board}] {q.title} / {q.ref}: {q.expr!r}"
        allowed = _allowed_empty(q)
        if allowed is not None:
            used.add(allowed)
            if samples:
                problems.append(f"{where}: has data now, drop it from EMPTY_ON_DEMO")
        elif not samples:
            problems.append(f"{where}: no data")
        elif bad := out_of_range(samples, is_ratio(q.raw)):
            problems.append(f"{where}: out of range: {bad[:3]}")
    assert used == set(EMPTY_ON_DEMO), f"unused EMPTY_ON_DEMO entries: {set(EMPTY_ON_DEMO) - used}"
    assert not problems, "\n".join(problems)


def test_small_cells_are_suppressed_live(live: Live) -> None:
    """The same ratio queries with a huge $min_cases hide every cell."""
    queries, _ = panel_queries(live.prom, {"min_cases": HIDE_ALL_CELLS})
    suppressible = [q for q in queries if "$min_cases" in q.raw]
    assert len(suppressible) >= 2 * 7  # at least the overview's two stats per indicator
    shown = [f"[{q.board}] {q.title} / {q.ref}" for q in suppressible if live.prom.query(q.expr)]
    assert shown == []
