"""The figures derived across bench steps (given results, nothing timed here)."""

from __future__ import annotations

from benchmarks.suite import StepResult, derive


def _step(seconds: float, cpu_s: float | None) -> StepResult:
    data = {"events": 10, "seconds": seconds}
    if cpu_s is not None:
        data["cpu_s"] = cpu_s
    return StepResult(data=data)


def test_ratios_are_given_in_cpu_time_too() -> None:
    figures = {f.name: f.value for f in derive({
        "json": _step(2.0, 1.0), "report": _step(3.0, 4.0), "duckdb": _step(6.0, 8.0)})}
    assert figures["report time / json.loads time"] == 1.5
    assert figures["report CPU / json.loads CPU"] == 4.0
    assert figures["report time / DuckDB time"] == 0.5
    assert figures["report CPU / DuckDB CPU"] == 0.5


def test_results_without_cpu_time_give_no_cpu_ratio() -> None:
    names = {f.name for f in derive({"json": _step(2.0, None), "report": _step(3.0, 4.0)})}
    assert names == {"report time / json.loads time"}
