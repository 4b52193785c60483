"""The steps of `make bench`, in the order they run, and the figures derived across steps.

Every step is a function `(Context) -> StepResult` run in a child process of its own, so its
peak RSS is its own. Adding a step is one line in STEPS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Context:
    """What every step gets (as JSON, in its child process)."""

    log: str  # the generated year, .jsonl.gz
    year: int
    scale: float
    work: str  # a directory for the step's files (stores, databases)
    pg_url: str | None  # PostgreSQL for the latency steps; None: SQLite only

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def log_path(self) -> Path:
        return Path(self.log)


@dataclass
class Figure:
    """One measured number, and the aim it is held against (if any)."""

    name: str
    value: float
    unit: str
    aim: str = ""
    met: bool | None = None  # None: no aim, or not decidable in this run


@dataclass
class StepResult:
    figures: list[Figure] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw details, for the JSON file
    failed: str | None = None  # a check that must hold did not: the run exits non-zero
    # filled in by the runner
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StepResult:
        return cls(
            [Figure(**f) for f in d.get("figures", [])], d.get("data", {}), d.get("failed"),
            d.get("wall_s", 0.0), d.get("peak_rss_mb", 0.0),
        )


@dataclass(frozen=True)
class Step:
    name: str
    target: str  # "module:function"
    about: str
    needs: tuple[str, ...] = ()  # steps whose figures this one is compared with
    uses_log: bool = True


STEPS: list[Step] = [
    Step("json", "benchmarks.throughput:json_pass", "bare json.loads over the log: the yardstick"),
    Step("report", "benchmarks.throughput:report", "`vardgaranti report` of the year",
         needs=("json",)),
    Step("replay", "benchmarks.throughput:replay", "embedded replay of the year into SQLite",
         needs=("json",)),
    Step("replay_pg", "benchmarks.throughput:replay_pg",
         "embedded replay of the year into PostgreSQL", needs=("json",)),
    Step("duckdb", "benchmarks.baseline:run", "the report in DuckDB SQL, and the equality check",
         needs=("report",)),
    Step("memory", "benchmarks.memory:run", "engine bytes per open clock (100 k, 1 M)",
         uses_log=False),
    Step("query", "benchmarks.latency:query", "`vardgaranti query` over a stored year",
         uses_log=False),
    Step("api", "benchmarks.latency:api", "GET /api/v1/aggregates over a stored year",
         uses_log=False),
    Step("live", "benchmarks.live:run",
         "/metrics render, aggregates and at-risk p99 from the live view: 1 vs 10 years",
         uses_log=False),
    Step("streaming", "benchmarks.streaming:step",
         "one worker on the test broker: events/s and event-to-metric latency", uses_log=False),
    Step("alerts", "benchmarks.alerts:step",
         "alert quality over a generated year with injected incidents, in a real Prometheus",
         uses_log=False),
]
BY_NAME = {s.name: s for s in STEPS}

# aims of issue 17, as ratios measured in one run (the machines are shared and noisy)
AIM_VS_JSON = 1.5
AIM_VS_DUCKDB = 1.0


def derive(results: dict[str, StepResult]) -> list[Figure]:
    """Figures that compare steps: the throughput ratios behind the aims, in wall time (the
    aims) and in CPU time (all processes; what a busy machine distorts least)."""
    out: list[Figure] = []
    base = results.get("json")
    for name in ("report", "replay", "replay_pg"):
        r = results.get(name)
        if r is None or base is None or r.failed:
            continue
        ratio = r.data["seconds"] / base.data["seconds"]
        aimed = name == "report"  # the replays' aim is their time (the step's own figure)
        out.append(Figure(f"{name} time / json.loads time", ratio, "×",
                          f"≤ {AIM_VS_JSON:g}×" if aimed else "",
                          ratio <= AIM_VS_JSON if aimed else None))
        out += _cpu_ratio(f"{name} CPU / json.loads CPU", r, base)
    duck, report = results.get("duckdb"), results.get("report")
    if duck is not None and report is not None and duck.failed is None:
        ratio = report.data["seconds"] / duck.data["seconds"]
        out.append(Figure("report time / DuckDB time", ratio, "×",
                          f"≤ {AIM_VS_DUCKDB:g}×", ratio <= AIM_VS_DUCKDB))
        out += _cpu_ratio("report CPU / DuckDB CPU", report, duck)
    return out


def _cpu_ratio(name: str, step: StepResult, base: StepResult) -> list[Figure]:
    """The ratio of two steps' CPU times, when both recorded one (results of older runs
    did not)."""
    if not step.data.get("cpu_s") or not base.data.get("cpu_s"):
        return []
    return [Figure(name, step.data["cpu_s"] / base.data["cpu_s"], "×")]
