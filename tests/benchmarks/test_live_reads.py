"""The read benchmark serves each shape and times the whole request mix, in process on one
event loop and through uvicorn over a socket."""

from __future__ import annotations

from benchmarks.live import _requests, _view, measure, over_socket


def test_every_request_of_the_mix_is_answered_and_timed() -> None:
    per_round = _requests()
    aggregates = sum(kind == "aggregates" for kind, _, _ in per_round)
    figures = measure({"1 year": _view(2024, 2, 1), "2 years": _view(2024, 2, 2)}, rounds=2)
    for shape in ("1 year", "2 years"):
        f = figures[shape]
        assert f["aggregates_samples"] == 2 * aggregates
        assert f["at_risk_samples"] == 2 * (len(per_round) - aggregates)
        assert 0 < f["aggregates_p50_ms"] <= f["aggregates_p99_ms"]
        assert f["aggregates_cpu_p99_ms"] > 0 and f["metrics_ms"] > 0
        assert f["series"] > 0


def test_a_served_shape_answers_over_a_socket() -> None:
    served = over_socket(2, 2024, 1, rounds=2)
    assert set(served) == {f"{kind}_{q}_ms" for kind in ("aggregates", "at_risk")
                           for q in ("p50", "p99")}
    assert all(v > 0 for v in served.values())
