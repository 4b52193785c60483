"""The arithmetic of the streaming benchmark and the soak: what they count, how they conclude.

The runs themselves (a broker, a worker, a sink) are measurements, not tests; these check the
pieces that turn what they observe into figures: /metrics series, percentiles, the memory
slope, the peak hour of a log, and the profile's categories.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from benchmarks import soak
from benchmarks.soak import Sample, Soak, peak_per_hour, scale_for, slope
from benchmarks.streaming import (
    _category,
    accounted,
    drained,
    pct,
    probe_event,
    read_profile,
    report_rate,
    total,
)
from models.events import Rejection, parse_event
from vardgaranti.generate import generate

SERIES = {
    'vardgaranti_events_processed_total{type="contact.requested"}': 10.0,
    'vardgaranti_events_processed_total{type="visit.completed"}': 5.0,
    'vardgaranti_events_rejected_total{reason="invalid_json"}': 2.0,
    'vardgaranti_events_ignored_total{reason="duplicate"}': 3.0,
    'vardgaranti_events_ignored_total{reason="orphan"}': 7.0,  # processed already
    'vardgaranti_waiting{indicator="samma_dag",unit="vc-a"}': 4.0,
    'vardgaranti_waiting_over_limit{indicator="samma_dag",unit="vc-a"}': 1.0,
}


def test_total_sums_one_metric_and_not_its_longer_namesakes() -> None:
    assert total(SERIES, "vardgaranti_waiting") == 4.0
    assert total(SERIES, "vardgaranti_events_ignored_total", 'reason="duplicate"') == 3.0


def test_a_line_is_accounted_for_once_processed_rejected_or_repeated() -> None:
    # orphans and inconsistent events are processed events: not counted twice
    assert accounted(SERIES) == 10 + 5 + 2 + 3


def test_drained_needs_the_lag_of_every_partition_and_all_zero() -> None:
    lag = "vardgaranti_consumer_lag_messages"

    def series(*values: float) -> dict[str, float]:
        return {f'{lag}{{partition="{i}",topic="t"}}': v for i, v in enumerate(values)}

    assert drained(series(0, 0, 0, 0), partitions=2)
    assert not drained(series(0, 0, 0), partitions=2)  # one partition not reported yet
    assert not drained(series(0, 0, 1, 0), partitions=2)


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert pct(values, 50) == pytest.approx(50.5)
    assert pct(values, 99) == pytest.approx(99.01)
    assert pct([], 99) == 0.0
    assert pct([3.0], 99) == 3.0


def test_probe_events_are_valid_and_distinct() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    when = datetime(2024, 12, 31, 23, 59, 59, tzinfo=ZoneInfo("Europe/Stockholm"))
    (k1, v1), (k2, v2) = (probe_event(n, "run", when, "vc-malarbacken") for n in (0, 1))
    assert k1 != k2
    first = parse_event(v1)
    assert not isinstance(first, Rejection), first
    assert first["case_id"].encode() == k1 and first["type"] == "contact.requested"
    assert orjson.loads(v2)["event_id"] != orjson.loads(v1)["event_id"]
    # a random run id of digits only must not make a personnummer-shaped patient reference
    assert not any(isinstance(parse_event(probe_event(n, "12345678", when, "vc-a")[1]),
                              Rejection) for n in range(300))


def test_slope_is_least_squares() -> None:
    assert slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert slope([(0, 1.0), (1, 2.0), (2, 1.0), (3, 2.0)]) == pytest.approx(0.2)
    assert slope([(5, 1.0)]) == 0.0
    assert slope([(5, 1.0), (5, 9.0)]) == 0.0


def test_soak_slope_leaves_out_the_first_minute_and_judges_levelling_off() -> None:
    def soak(worker_mb: list[float]) -> Soak:
        s = Soak(rate=4.0, duration_s=300)
        s.samples = [Sample(30.0 * i, 100 * i, 100.0 * i, 0, mb, 80.0)
                     for i, mb in enumerate(worker_mb, start=1)]
        return s

    # a fast climb during warm-up, then flat: levelled off
    flat = soak([100, 150, 151, 151, 151, 151]).figures()
    assert flat["worker_rss_slope_mb_per_min"] == pytest.approx(0.0, abs=0.1)
    assert flat["levelled_off"] == 1.0
    # 1 MB every 30 s after the first minute: 2 MB/min, not levelled off
    growing = soak([100, 150, 152, 153, 154, 155]).figures()
    assert growing["worker_rss_slope_mb_per_min"] == pytest.approx(2.0)
    assert growing["worker_kb_per_event"] == pytest.approx(2.0 * 1024 / 240)
    assert growing["levelled_off"] == 0.0
    # two samples after the first minute: too few to judge
    assert soak([100, 150, 150, 190]).figures()["levelled_off"] == -1.0


def test_peak_hour_of_a_log(tmp_path: Path) -> None:
    lines = [
        {"occurred_at": "2024-01-15T09:05:00+01:00"},
        {"occurred_at": "2024-01-15T09:59:59+01:00"},
        {"occurred_at": "2024-01-15T10:00:00+01:00"},
        {"occurred_at": "2024-01-16T09:30:00+01:00"},
    ]
    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"".join(orjson.dumps(x) + b"\n" for x in lines) + b"not json\n")
    assert peak_per_hour(path) == 2


def test_scale_for_picks_the_smallest_log_that_is_long_enough() -> None:
    assert scale_for(100) == 0.002
    assert scale_for(3.6 * 600) == 0.002
    assert scale_for(20_000) == 0.01
    with pytest.raises(Exception, match="more than a generated year"):
        scale_for(10_000_000)


def test_profile_categories_charge_socket_writes_to_the_kafka_client() -> None:
    loop = ["run (streams/run.py)", "BaseEventLoop._run_once (asyncio/base_events.py)",
            "Handle._run (asyncio/events.py)"]
    send = [*loop, "Sender._send_produce_req (aiokafka/producer/sender.py)",
            "AIOKafkaClient.send (aiokafka/client.py)",
            "_SelectorSocketTransport.write (asyncio/selector_events.py)"]
    assert _category(send) == "Kafka producing (faust/aiokafka producer)"
    core = [*loop, "Worker.on_events (streams/worker.py)",
            "CaseState.add (models/casestate.py)", "evaluate (models/engine.py)"]
    assert _category(core) == "core rules (models/)"
    state = [*loop, "Worker._case (streams/worker.py)",
             "CaseState.from_json (models/casestate.py)"]
    assert _category(state) == "case state / counter JSON"
    render = ["Thread._bootstrap (threading.py)", "metrics (web/api.py)",
              "live_at (models/measures.py)"]
    assert _category(render).startswith("/metrics")
    agent = [*loop, "Agent._execute_actor (faust/agents/agent.py)",
             "Worker.on_events (streams/worker.py)"]
    assert _category(agent) == "worker logic (streams/worker.py)"
    fetch = [*loop, "Consumer._drain_messages (faust/transport/consumer.py)",
             "Fetcher.fetched_records (aiokafka/consumer/fetcher.py)"]
    assert _category(fetch) == "Kafka client I/O and protocol (aiokafka)"
    assert _category(loop) == "asyncio event loop"


def test_read_profile_separates_the_idle_loop_from_busy_threads(tmp_path: Path) -> None:
    main = "_run_module_as_main (<frozen runpy>:198);BaseEventLoop._run_once (a/b.py:1)"
    thread = "Thread._bootstrap (threading.py:1002);WorkerThread.run (anyio/x.py:1)"
    raw = tmp_path / "p.raw"
    raw.write_text("\n".join([
        f"{main};EpollSelector.select (selectors.py:468) 60",
        f"{main};Handle._run (asyncio/events.py:80);parse_event (models/events.py:9) 40",
        f"{thread};Condition.wait (threading.py:327) 500",
        f"{thread};metrics (web/api.py:80) 10",
        "Thread._bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:83) 700",
    ]))
    prof = read_profile(raw)
    assert (prof.samples, prof.idle, prof.busy) == (100, 60, 50)
    assert prof.categories["event parsing (models/events.py)"] == 40


def test_soak_years_make_one_history_whose_clocks_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two generated years replayed as one history: the first year's cases still moving at
    its end (cut off by the generator) are left out, since the second year's backlog holds
    such cases whole; every line of the second year is there, merged by event time."""
    monkeypatch.setattr(soak, "CACHE", tmp_path)
    years = []
    for i in range(2):
        years.append(tmp_path / f"year-{2024 + i}.jsonl.gz")
        generate(years[-1], 2024 + i, seed=1 + i, scale=0.001, progress=False)
    first, second = (list(soak._keyed(p)) for p in years)
    cut = soak._moving(first)
    assert len(cut) > 10
    out = soak.continuous(years, soak.Console(quiet=True))
    merged = list(soak._keyed(out))
    assert [x[3] for x in merged if x[1] not in cut] == [x[3] for x in merged]
    assert sorted(x[3] for x in merged) == sorted(
        [x[3] for x in first if x[1] not in cut] + [x[3] for x in second])
    assert soak._moving(merged) == soak._moving(second)  # only the last year's end is open
    lines = [x[3] for x in merged]  # interleaved by event time, not one year after the other
    last_kept = next(x[3] for x in reversed(first) if x[1] not in cut)
    assert lines.index(second[0][3]) < lines.index(last_kept)


def test_the_report_rate_counts_every_line_of_the_log(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate the worker is held to: the log's lines over `report`'s time on it."""
    path = tmp_path / "year.jsonl.gz"
    generate(path, 2024, seed=3, scale=0.001, progress=False)
    lines = len(gzip.decompress(path.read_bytes()).splitlines())
    clock = iter([10.0, 12.0, 20.0, 24.0])  # two rounds: 2 s and 4 s
    monkeypatch.setattr("benchmarks.streaming.time.perf_counter", lambda: next(clock))
    assert report_rate(path, 2024, rounds=2) == pytest.approx(lines / 2)
