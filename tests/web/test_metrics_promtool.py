"""`/metrics` of a real embedded pipeline through `promtool check metrics` (the linter).

The exposition comes from the app's own route (FastAPI `create_app` over the replay pipeline,
as `vardgaranti demo` serves it), fed with a generated log that includes malformed lines.
Skipped only when promtool is absent (`apt-get install prometheus`; CI installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from consumers.replay import Pipeline, replay
from consumers.store import Store
from models.clocks import Rules
from tests.dashboards.test_build import CATALOGUE
from vardgaranti.generate import generate
from vardgaranti.serve import pipeline_snapshot, pipeline_source
from web.api import create_app
from web.metrics import MetricsSnapshot, registry_for

pytestmark = pytest.mark.integration

Exposition = Callable[[Callable[[], MetricsSnapshot]], str]


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def promtool_lint(promtool: str, text: str) -> tuple[int, str]:
    """(exit code, problems) of `promtool check metrics` on an exposition."""
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=120, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, Store]:
    tmp = tmp_path_factory.mktemp("metrics-promtool")
    log = tmp / "year.jsonl.gz"
    generate(log, 2024, seed=11, scale=0.003, bad_rate=0.02, progress=False)
    store = Store(f"sqlite:///{tmp / 'store.db'}")
    pipe = Pipeline.restore(store, Rules())
    replay([log], store, pipe)
    return pipe, store


@pytest.fixture(scope="module")
def exposition(pipeline: tuple[Pipeline, Store]) -> Exposition:
    """GET /metrics from the app over `snapshot`."""
    pipe, store = pipeline

    def get(snapshot: Callable[[], MetricsSnapshot]) -> str:
        app = create_app(pipeline_source(pipe, store), registry_for(snapshot), pipe.today,
                         "token")
        response = TestClient(app).get("/metrics")
        assert response.status_code == 200
        return str(response.text)

    return get


def _families_with_samples(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_embedded_metrics_pass_promtool(
    promtool: str, pipeline: tuple[Pipeline, Store], exposition: Exposition
) -> None:
    pipe, _ = pipeline
    text = exposition(lambda: pipeline_snapshot(pipe))
    assert promtool_lint(promtool, text) == (0, "")
    # everything in the catalogue is there, except what only a streaming worker knows
    assert _families_with_samples(text) == CATALOGUE - {"vardgaranti_consumer_lag_messages"}
    assert 'vardgaranti_events_rejected_total{reason="' in text


def test_streaming_metrics_pass_promtool(
    promtool: str, pipeline: tuple[Pipeline, Store], exposition: Exposition
) -> None:
    """With consumer lag, as the Faust worker exposes it: every family has samples."""
    pipe, _ = pipeline

    def streaming() -> MetricsSnapshot:
        lag = {("vardgaranti.events", 0): 12, ("vardgaranti.events", 1): 0}
        return replace(pipeline_snapshot(pipe), consumer_lag=lag)

    text = exposition(streaming)
    assert promtool_lint(promtool, text) == (0, "")
    assert _families_with_samples(text) == CATALOGUE


def test_promtool_reports_lint_problems(promtool: str) -> None:
    """The check above can fail: promtool's linter flags what the catalogue must avoid."""
    bad = (
        "# TYPE vardgaranti_breaches counter\nvardgaranti_breaches 1\n"
        "# HELP vardgaranti_waiting_total Clocks open now\n"
        "# TYPE vardgaranti_waiting_total gauge\nvardgaranti_waiting_total 3\n"
    )
    code, problems = promtool_lint(promtool, bad)
    assert code != 0
    assert 'vardgaranti_breaches counter metrics should have "_total" suffix' in problems
    assert "vardgaranti_breaches no help text" in problems
    assert 'vardgaranti_waiting_total non-counter metrics should not have "_total"' in problems


def test_exposition_has_no_identity(
    pipeline: tuple[Pipeline, Store], exposition: Exposition
) -> None:
    """Labels name indicators, units, windows, event types, reasons and years: no case, no
    patient (a streaming worker adds topic and partition)."""
    pipe, _ = pipeline
    text = exposition(lambda: pipeline_snapshot(pipe))
    labels = {k for f in text_string_to_metric_families(text) for s in f.samples
              for k in s.labels}
    assert labels == {"indicator", "unit", "window", "type", "reason", "year"}
