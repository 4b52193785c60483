"""Store round trip on SQLite and PostgreSQL; idempotent re-replay; resume; query = report."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from consumers.replay import Pipeline, replay
from consumers.report import build_report
from consumers.store import CLOCKS, COUNTS, DEAD, EVENTS, Store
from models.calendar import end_of_day_micros
from models.clocks import Rules
from models.indicators import ORDER
from models.measures import WINDOWS, Period, arrange, window_first
from tests.support.events import ev

EXAMPLE = Path(__file__).parents[2] / "vardgaranti" / "examples" / "example.jsonl"


def synthetic(n_cases: int, seed: int = 7) -> list[dict[str, Any]]:
    """A small mixed log: every indicator, pauses, transfers, cancellations, late fulfilments."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    starts = [
        ("contact.requested", {"channel": "phone"}, "contact.completed", {}, 0, 2),
        ("assessment.needed", {}, "assessment.completed", {"profession": "lakare"}, 0, 6),
        ("referral.issued", {"pathway": "specialist"}, "visit.completed", {}, 20, 130),
        ("decision.made", {"pathway": "specialist", "kind": "treatment"}, "treatment.started",
         {}, 20, 130),
        ("referral.issued", {"pathway": "bup"}, "visit.completed", {}, 5, 50),
        ("decision.made", {"pathway": "bup", "kind": "investigation"}, "investigation.started",
         {}, 5, 50),
    ]
    for n in range(n_cases):
        st, sa, ft, fa, lo, hi = rnd.choice(starts)
        unit = rnd.choice(["u1", "u2", "u3"])
        day = rnd.randrange(0, 300)
        start = date.fromordinal(date(2024, 1, 1).toordinal() + day)
        ts = f"{start.isoformat()}T{rnd.randrange(7, 19):02d}:{rnd.randrange(60):02d}:00+01:00"
        case = f"c{n}"
        events.append(ev(st, case, ts, unit, **sa))
        roll = rnd.random()
        if roll < 0.05:
            events.append(ev("wait.paused", case, ts.replace("T", "T").replace(":00+", ":30+"),
                             unit, reason=rnd.choice(["medical", "patient_choice"])))
        elif roll < 0.08:
            events.append(ev("case.cancelled", case, ts.replace(":00+", ":40+"), unit))
        elif roll < 0.1:
            events.append(ev("case.transferred", case, ts.replace(":00+", ":20+"), unit,
                             to_unit_id="u4"))
        fday = date.fromordinal(start.toordinal() + rnd.randrange(lo, hi))
        if fday.year == 2024 and rnd.random() < 0.9:
            events.append(ev(ft, case, f"{fday.isoformat()}T20:00:00+01:00", unit, **fa))
    rnd.shuffle(events)  # out of order, like a real merged extract
    return events


def write_log(path: Path, events: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> Path:
    path.write_text("\n".join([json.dumps(e) for e in events] + list(extra)) + "\n")
    return path


def table_contents(store: Store) -> tuple[list[Any], list[Any]]:
    with store.engine.connect() as conn:
        counts = sorted(tuple(r) for r in conn.execute(select(COUNTS)))
        dead = sorted(tuple(r) for r in conn.execute(select(DEAD)))
    return counts, dead


def run(store: Store, *paths: Path, batch: int = 1000) -> Pipeline:
    pipeline = Pipeline.restore(store, Rules())
    replay(paths, store, pipeline, batch=batch)
    return pipeline


def test_round_trip_query_equals_report(store: Store, tmp_path: Path) -> None:
    log = write_log(tmp_path / "year.jsonl", synthetic(1500), ("not json",))
    run(store, log)
    for as_of in (date(2024, 3, 31), date(2024, 8, 15), date(2024, 12, 31)):
        for window in WINDOWS:
            period = Period.of(window_first(window, as_of), as_of, as_of)
            expected = [r.as_dict() for r in build_report([log], period).rows]
            got = [r.as_dict() for r in arrange(store.per_unit(period))]
            assert got == expected, (as_of, window)
            assert got, "the log should produce rows"
    assert store.dead_letter_counts() == {"invalid_json": 1}


def test_replaying_twice_changes_nothing(store: Store, tmp_path: Path) -> None:
    log = write_log(tmp_path / "year.jsonl", synthetic(800), ("{broken",))
    run(store, log)
    first = table_contents(store)
    run(store, log)
    assert table_contents(store) == first


def test_resume_after_interruption_gives_the_same_contents(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = synthetic(800)
    log = write_log(tmp_path / "year.jsonl", events)
    clean = Store(f"sqlite:///{tmp_path / 'clean.db'}")
    run(clean, log)

    calls = {"n": 0}
    original = Store.write_batch

    def crash_on_third(self: Store, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-replay
        original(self, *args)

    monkeypatch.setattr(Store, "write_batch", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(store, log, batch=200)
    monkeypatch.setattr(Store, "write_batch", original)
    assert table_contents(store) != table_contents(clean)  # really interrupted
    # the load into the empty store left its secondary indexes out, to be built at its end
    assert not secondary_indexes(store)
    run(store, log, batch=200)
    assert table_contents(store) == table_contents(clean)
    assert secondary_indexes(store) == secondary_indexes(clean) == EXPECTED_INDEXES


EXPECTED_INDEXES = {"ix_events_ts", "ix_clocks_state_deadline", "ix_clocks_unit_id"}


def secondary_indexes(store: Store) -> set[str]:
    schema = inspect(store.engine)
    return {i["name"] for t in ("events", "clocks") for i in schema.get_indexes(t)
            if i["name"]}


def test_a_store_opened_again_builds_the_indexes_an_interrupted_load_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    assert secondary_indexes(store) == EXPECTED_INDEXES
    def interrupted(self: Store, *args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "write_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(store, write_log(tmp_path / "year.jsonl", synthetic(50)))
    assert not secondary_indexes(store)
    assert secondary_indexes(Store(url)) == EXPECTED_INDEXES


def test_second_log_continues_the_first(store: Store, tmp_path: Path) -> None:
    events = synthetic(600)
    half = len(events) // 2
    a = write_log(tmp_path / "a.jsonl", events[:half])
    b = write_log(tmp_path / "b.jsonl", events[half:])
    whole = write_log(tmp_path / "whole.jsonl", events)
    run(store, a)
    run(store, b)
    period = Period.of(date(2024, 1, 1), date(2024, 12, 31), date(2024, 12, 31))
    expected = [r.as_dict() for r in build_report([whole], period).rows]
    assert [r.as_dict() for r in arrange(store.per_unit(period))] == expected


def test_worklist_from_the_live_view(store: Store, tmp_path: Path) -> None:
    log = write_log(tmp_path / "r.jsonl", [
        {**ev("referral.issued", "soon", "2024-01-02T10:00:00+01:00", "u1",
              pathway="specialist"), "patient_ref": "p-1"},  # deadline 1 April
        ev("referral.issued", "later", "2024-02-02T10:00:00+01:00", "u1", pathway="specialist"),
        ev("referral.issued", "done", "2024-01-02T10:00:00+01:00", "u1", pathway="specialist"),
        ev("visit.completed", "done", "2024-03-01T10:00:00+01:00", "u1"),
    ])
    view = run(store, log).view  # restored from the store too: the same worklist
    for again in (view, Pipeline.restore(store, Rules()).view):
        again.advance(end_of_day_micros(date(2024, 3, 29).toordinal()))
        assert again.worklist() == []  # 3 days left: not yet
        again.advance(end_of_day_micros(date(2024, 3, 30).toordinal()))
        assert [(w.case_id, w.days_left, w.patient_ref) for w in again.worklist()] == [
            ("soon", 2, "p-1")]
        assert again.at_risk_counts() == {(ORDER["besok_90"], "u1"): 1}
        again.advance(end_of_day_micros(date(2024, 4, 2).toordinal()))
        # past the deadline: still on the worklist, with the days over, and no longer at risk
        assert [(w.case_id, w.days_left, w.days_over) for w in again.worklist()] == [
            ("soon", -1, 1)]
        assert again.at_risk_counts() == {}


def test_example_log_round_trip(store: Store) -> None:
    pipeline = run(store, EXAMPLE)
    assert pipeline.engine.duplicates == 1
    assert store.dead_letter_counts() == {"invalid_json": 1, "naive_timestamp": 1}


# ------------------------------------------------------------------ bounded memory (issue 11)


def test_evicting_final_cases_changes_no_figure_even_with_late_events(
    store: Store, tmp_path: Path
) -> None:
    """Cases leave memory as soon as they are final (grace 0 here); the shuffled log's
    late events for them, and repeats of their events, read them back: the store and the
    live view equal the report, and the repeats are counted as repeats."""
    events = synthetic(800)
    log = write_log(tmp_path / "s.jsonl", events + events[:50])  # 50 repeated lines
    pipeline = Pipeline.restore(store, Rules(), grace_days=0)
    stats = replay([log], store, pipeline, batch=150)
    assert pipeline.engine.evicted > 100
    assert len(pipeline.engine.cases) < 800 - 100
    assert stats.duplicates == pipeline.engine.duplicates == 50
    assert stats.new_events == len(events)
    period = Period.of(date(2024, 1, 1), date(2024, 12, 31), date(2024, 12, 31))
    report = build_report([log], period)
    assert [r.as_dict() for r in arrange(store.per_unit(period))] == [
        r.as_dict() for r in report.rows]
    assert sum(pipeline.processed.values()) == len(events)
    today = pipeline.today()
    assert today is not None
    for window in WINDOWS:
        live = Period.of(window_first(window, today), today, today)
        assert [r.as_dict() for r in arrange(pipeline.view.rows(window))] == [
            r.as_dict() for r in build_report([log], live).rows]


def test_a_late_event_for_an_evicted_case_reads_it_back(store: Store, tmp_path: Path) -> None:
    start = ev("referral.issued", "done", "2024-01-02T10:00:00+01:00", "u1",
               pathway="specialist")
    first = write_log(tmp_path / "a.jsonl", [
        start,
        ev("visit.completed", "done", "2024-01-20T10:00:00+01:00", "u1"),
        ev("referral.issued", "other", "2024-06-01T10:00:00+02:00", "u1", pathway="specialist"),
    ])
    late = write_log(tmp_path / "b.jsonl", [
        start,  # a repeat
        ev("wait.paused", "done", "2024-01-10T10:00:00+01:00", "u1", reason="medical"),
    ])
    pipeline = Pipeline.restore(store, Rules(), grace_days=25)
    replay([first], store, pipeline)
    assert "done" not in pipeline.engine.cases and pipeline.engine.evicted == 1
    stats = replay([late], store, pipeline)
    assert (stats.new_events, stats.duplicates) == (1, 1)
    period = Period.of(date(2024, 1, 1), date(2024, 6, 1), date(2024, 6, 1))
    want = [r.as_dict() for r in build_report([first, late], period).rows]
    assert [r.as_dict() for r in arrange(store.per_unit(period))] == want
    assert any(r["paused"] for r in want) is False  # the pause ended with the visit
    # a restart restores, then lets the final case leave again
    again = Pipeline.restore(store, Rules(), grace_days=25)
    assert "done" not in again.engine.cases and "other" in again.engine.cases


def test_an_excluded_case_leaves_and_a_resume_reads_it_back(
    store: Store, tmp_path: Path
) -> None:
    """A clock excluded by the patient's choice changes only with a new event of its case
    (a resume, a cancellation), never with the passing days: the case leaves memory like a
    final one, a restart does not load it, and a resume months later restarts the clock
    exactly as if it had stayed."""
    first = write_log(tmp_path / "a.jsonl", [
        ev("referral.issued", "pvv", "2024-01-02T10:00:00+01:00", "u1", pathway="specialist"),
        ev("wait.paused", "pvv", "2024-01-05T10:00:00+01:00", "u1", reason="patient_choice"),
        ev("referral.issued", "other", "2024-06-01T10:00:00+02:00", "u1", pathway="specialist"),
    ])
    resume = write_log(tmp_path / "b.jsonl", [
        ev("wait.resumed", "pvv", "2024-06-03T10:00:00+02:00", "u1"),
    ])
    pipeline = Pipeline.restore(store, Rules(), grace_days=25)
    replay([first], store, pipeline)
    assert "pvv" not in pipeline.engine.cases and pipeline.engine.evicted == 1
    assert "pvv" not in Pipeline.restore(store, Rules(), grace_days=25).engine.cases
    stats = replay([resume], store, pipeline)
    assert stats.new_events == 1
    today = pipeline.today()
    assert today == date(2024, 6, 3)
    period = Period.of(date(2024, 1, 1), today, today)
    want = [r.as_dict() for r in build_report([first, resume], period).rows]
    assert [r.as_dict() for r in arrange(store.per_unit(period))] == want
    assert [r.as_dict() for r in arrange(pipeline.view.rows("month"))] == [
        r.as_dict() for r in build_report([first, resume], Period.of(
            window_first("month", today), today, today)).rows]
    waiting = {r["unit_id"]: r["waiting"] for r in want if r["indicator"] == "besok_90"}
    assert waiting == {"ALL": 2, "u1": 2}  # the restarted clock waits again


def test_a_restart_loads_only_the_cases_that_may_change(store: Store, tmp_path: Path) -> None:
    """A restart over a store loads the cases with a clock not ended or an event within the
    grace period, nothing else; its live view comes from the stored counters, and late
    events for cases it did not load are read back and counted exactly."""
    events = synthetic(800)
    log = write_log(tmp_path / "s.jsonl", events)
    first = Pipeline.restore(store, Rules(), grace_days=10)
    replay([log], store, first, batch=150)
    again = Pipeline.restore(store, Rules(), grace_days=10)
    assert set(again.engine.cases) == set(first.engine.cases)
    assert 0 < len(again.engine.cases) < 800 - 100
    today = again.today()
    assert today is not None and today == first.today()
    assert again.view.live() == first.view.live()
    assert again.view.worklist() == first.view.worklist()
    # late events for a case that was not loaded: a repeat, and a new one an hour later
    gone = next(e for e in events if e["case_id"] not in again.engine.cases)
    hour_later = datetime.fromisoformat(gone["occurred_at"]) + timedelta(hours=1)
    later = {**gone, "event_id": "late-1", "occurred_at": hour_later.isoformat()}
    late = write_log(tmp_path / "late.jsonl", [gone, later])
    stats = replay([late], store, again)
    assert stats.duplicates == 1 and stats.new_events == 1
    period = Period.of(date(2023, 6, 1), today, today)
    want = [r.as_dict() for r in build_report([log, late], period).rows]
    assert [r.as_dict() for r in arrange(store.per_unit(period))] == want
    for window in WINDOWS:
        live = Period.of(window_first(window, today), today, today)
        assert [r.as_dict() for r in arrange(again.view.rows(window))] == [
            r.as_dict() for r in build_report([log, late], live).rows]


def test_bulk_rows_are_those_of_sqlite(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events and clocks go in by PostgreSQL's COPY and SQLite's executemany: the same rows,
    timestamps included, rewritten alike when a later batch moves a clock."""
    monkeypatch.setattr("consumers.store.COPY_FROM", 1)  # COPY for these small batches too
    log = write_log(tmp_path / "year.jsonl", synthetic(600))
    clean = Store(f"sqlite:///{tmp_path / 'clean.db'}")
    run(clean, log, batch=150)
    run(store, log, batch=150)

    def rows(s: Store) -> tuple[list[Any], list[Any]]:
        with s.engine.connect() as conn:
            return (sorted(tuple(r) for r in conn.execute(select(EVENTS))),
                    sorted(tuple(r) for r in conn.execute(select(CLOCKS))))

    events, clocks = rows(store)
    assert len(events) > 500 and clocks
    assert (events, clocks) == rows(clean)


@pytest.mark.parametrize("jobs", [2, 3])
def test_replay_with_reader_processes_stores_what_one_process_stores(
    tmp_path: Path, jobs: int
) -> None:
    """`replay --jobs`: spawned readers, one writer; the same store and pipeline, with
    repeated ids (a case's first event id stands) and a rejected line. The first log goes
    into an empty store (the readers evaluate their cases), the second continues it (the
    readers validate, the writer evaluates)."""
    events = synthetic(500)
    changed = {**events[3], "occurred_at": "2024-12-30T09:00:00+01:00"}  # same id, later
    first = write_log(tmp_path / "first.jsonl", events[:400] + events[:20] + [changed],
                      ("not json",))
    second = write_log(tmp_path / "second.jsonl", [*events[300:], changed])
    one = Store(f"sqlite:///{tmp_path / 'one.db'}")
    two = Store(f"sqlite:///{tmp_path / 'two.db'}")
    p_one, p_two = Pipeline.restore(one, Rules()), Pipeline.restore(two, Rules())

    def rows(s: Store) -> list[list[Any]]:
        with s.engine.connect() as conn:
            return [sorted(tuple(r) for r in conn.execute(select(t)))
                    for t in (EVENTS, CLOCKS, COUNTS, DEAD)]

    for log in (first, second):
        s_one = replay([log], one, p_one, batch=100)
        s_two = replay([log], two, p_two, batch=100, jobs=jobs)
        assert (s_two.lines, s_two.new_events, s_two.duplicates, s_two.rejected) == (
            s_one.lines, s_one.new_events, s_one.duplicates, s_one.rejected)
        assert rows(two) == rows(one)
        assert p_two.counts == p_one.counts and p_two.processed == p_one.processed
        assert p_two.rejected == p_one.rejected
        assert p_two.view.live() == p_one.view.live()
        assert p_two.view.at_risk_counts() == p_one.view.at_risk_counts()
        assert sorted(p_two.engine.clocks()) == sorted(p_one.engine.clocks())

    # the command leaves the pipeline unrestored (it exits): its counts of lines still hold
    three = Store(f"sqlite:///{tmp_path / 'three.db'}")
    p_three = Pipeline.restore(three, Rules())
    replay([first], three, p_three, batch=100, jobs=jobs, serve=False)
    alone = Store(f"sqlite:///{tmp_path / 'alone.db'}")
    p_first = Pipeline.restore(alone, Rules())
    replay([first], alone, p_first, batch=100)
    assert (p_three.processed, p_three.rejected) == (p_first.processed, p_first.rejected)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), cases=st.integers(1, 300), batch=st.integers(1, 400),
       jobs=st.integers(2, 3))
def test_replay_stores_the_same_whatever_the_processes(
    tmp_path_factory: pytest.TempPathFactory, seed: int, cases: int, batch: int, jobs: int
) -> None:
    """Property: any log, any batch size, any number of readers: the store of one process
    (rounds of batches cut the cases elsewhere, and the writer sums the parts' deltas)."""
    events = synthetic(cases, seed)
    tmp = tmp_path_factory.mktemp("jobs")
    log = write_log(tmp / "log.jsonl", events + events[: seed % 7], ("{",))
    stores = []
    for n in (1, jobs):
        s = Store(f"sqlite:///{tmp / f'{n}.db'}")
        replay([log], s, Pipeline.restore(s, Rules()), batch=batch, jobs=n)
        with s.engine.connect() as conn:
            stores.append([sorted(tuple(r) for r in conn.execute(select(t)))
                           for t in (EVENTS, CLOCKS, COUNTS, DEAD)])
        s.engine.dispose()
    assert stores[0] == stores[1]


def test_an_interrupted_replay_with_reader_processes_resumes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers evaluating their cases, the writer stopped after its first transaction: the
    store holds whole batches of each part, and a second run (any --jobs) completes it."""
    log = write_log(tmp_path / "year.jsonl", synthetic(800) + synthetic(50)[:30])
    clean = Store(f"sqlite:///{tmp_path / 'clean.db'}")
    run(clean, log)
    original = Store.write_rows
    calls = {"n": 0}

    def crash_on_second(self: Store, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        original(self, *args)

    monkeypatch.setattr(Store, "write_rows", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        replay([log], store, Pipeline.restore(store, Rules()), batch=150, jobs=2)
    monkeypatch.setattr(Store, "write_rows", original)
    stored = len(Pipeline.restore(store, Rules()).engine.cases)
    assert 0 < stored < len(Pipeline.restore(clean, Rules()).engine.cases)
    replay([log], store, Pipeline.restore(store, Rules()), batch=150, jobs=2)
    assert table_contents(store) == table_contents(clean)
    assert secondary_indexes(store) == EXPECTED_INDEXES


@pytest.mark.parametrize("mb", [None, 2])
def test_sqlite_page_cache_is_the_setting(tmp_path: Path, mb: int | None) -> None:
    """What a long-running sink or worker holds of the file: the setting, not the file's size."""
    from models.settings import SQLITE_CACHE_MB, Settings

    url = f"sqlite:///{tmp_path / 'cache.db'}"
    store = Store(url) if mb is None else Store(url, Settings(sqlite_cache_mb=mb).sqlite_cache_mb)
    with store.engine.connect() as conn:
        kib = -conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    assert kib == (mb or SQLITE_CACHE_MB) * 1024
    store.engine.dispose()
