"""Reads while a worker drains a backlog: every answer 2xx and internally consistent."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.streaming import Proc, Stack, wait_until
from vardgaranti.generate import generate

pytestmark = pytest.mark.integration

FIELDS = ("completed", "completed_within", "waiting", "waiting_over_limit", "paused",
          "excluded", "cancelled")


def consistent_aggregates(body: str) -> None:
    """The region row of each indicator is the sum of its unit rows."""
    rows = json.loads(body)["rows"]
    region = {r["indicator"]: r for r in rows if r["unit_id"] == "ALL"}
    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for r in rows:
        if r["unit_id"] != "ALL":
            for f in FIELDS:
                sums[r["indicator"]][f] += r[f]
    assert {i: {f: r[f] for f in FIELDS} for i, r in region.items()} == dict(sums)


def consistent_metrics(body: str) -> None:
    """Per series, completed within and over never go below zero, nor waiting over the
    limit above waiting."""
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    for (name, labels), v in values.items():
        if name in ("vardgaranti_completed_within", "vardgaranti_completed_over",
                    "vardgaranti_waiting"):
            assert v >= 0, (name, labels, v)
        if name == "vardgaranti_waiting_over_limit":
            assert v <= values[("vardgaranti_waiting", labels)]


def consistent_worklist(body: str) -> None:
    cases = json.loads(body)["cases"]
    assert [c["deadline"] for c in cases] == sorted(c["deadline"] for c in cases)


def hammer(worker: Proc, path: str, check: object, stop: threading.Event,
           failures: list[str], answers: list[int]) -> None:
    while not stop.is_set():
        status, body = worker.get(path)
        answers.append(status)
        if status != 200:
            failures.append(f"{path}: HTTP {status}")
            continue
        try:
            check(body)  # type: ignore[operator]
        except AssertionError as exc:
            failures.append(f"{path}: {exc}")


def test_reads_during_a_backlog_are_whole_and_never_fail(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = Stack(kafka_bootstrap, tmp_path)
    stack.create_topics()
    try:
        drained_while_read(stack, tmp_path)
    finally:
        stack.close()


def drained_while_read(stack: Stack, tmp_path: Path) -> None:
    log = tmp_path / "backlog.jsonl"
    generate(log, 2024, seed=3, scale=0.003, progress=False)
    total = stack.publish(log)  # the backlog is there before the worker starts
    worker = stack.worker()
    wait_until("the first batch", lambda: worker.metric("vardgaranti_events_processed_total")
               > 0, logs=stack.logs)
    stop = threading.Event()
    failures: list[str] = []
    answers: list[int] = []
    threads = [
        threading.Thread(target=hammer, args=(worker, path, check, stop, failures, answers))
        for path, check in (("/metrics", consistent_metrics),
                            ("/api/v1/aggregates?window=365d", consistent_aggregates),
                            ("/api/v1/at-risk?limit=200", consistent_worklist))
    ]
    for t in threads:
        t.start()
    try:
        wait_until("the backlog to be drained",
                   lambda: worker.metric("vardgaranti_events_processed_total")
                   + worker.metric("vardgaranti_events_ignored_total")
                   + worker.metric("vardgaranti_events_rejected_total") >= total * 0.95,
                   timeout_s=300, logs=stack.logs)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == [], failures[:5]
    assert len(answers) > 30, "the reads ran while the worker worked"
