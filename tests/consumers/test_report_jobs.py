"""`report` over several processes: the cases split by `shard_of`, the parts merged, gives
what one process gives: rows, counts of lines and events, and the same dead-letter file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.deadletter import DeadLetterFile
from consumers.report import Report, build_report, merged, read_part
from models.clocks import Rules
from models.ingest import shard_of
from models.measures import Period

PERIOD = Period.of(date(2024, 3, 1), date(2024, 3, 31), date(2024, 3, 31))
_ATTRS: dict[str, dict[str, Any]] = {
    "contact.requested": {"channel": "phone"},
    "referral.issued": {"pathway": "specialist"},
    "assessment.completed": {"profession": "läkare"},
    "decision.made": {"pathway": "bup", "kind": "treatment"},
    "wait.paused": {"reason": "patient_choice"},
    "case.transferred": {"to_unit_id": "u2"},
}
_TYPES = [*_ATTRS, "contact.completed", "assessment.needed", "visit.completed",
          "treatment.started", "wait.resumed", "case.cancelled"]


@st.composite
def _line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["event", "event", "event", "event", "bad"]))
    if kind == "bad":
        return draw(st.sampled_from(["{", "[]", '{"type": "x"}', '{"case_id": "c1"}',
                                     '{"event_id": "e", "case_id": 3}']))
    etype = draw(st.sampled_from(_TYPES))
    event = {
        "event_id": f"e{draw(st.integers(0, 30))}", "type": etype,
        "case_id": draw(st.sampled_from(["c1", "c2", "c3", "c4", "c5", "fall-å"])),
        "occurred_at": f"2024-{draw(st.integers(1, 4)):02d}-{draw(st.integers(1, 28)):02d}"
                       f"T{draw(st.integers(7, 17)):02d}:00:00+01:00",
        "unit_id": draw(st.sampled_from(["u1", "u2"])),
        "attributes": _ATTRS.get(etype, {}),
    }
    # compact, spaced, escaped: the case id is read from the bytes, or by the full schema
    style = draw(st.sampled_from(["compact", "spaced", "ascii"]))
    if style == "compact":
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(event, ensure_ascii=style == "spaced")


def _run(parts_of: Any, log: Path, dead_path: Path) -> tuple[Report, bytes]:
    with DeadLetterFile(dead_path) as dead:
        report = parts_of(dead)
    return report, dead_path.read_bytes()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_line(), max_size=40), st.integers(2, 4))
def test_parts_merged_give_one_process_report(tmp_path: Path, lines: list[str], n: int) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rules = Rules()
    one, one_dead = _run(lambda dead: build_report([log], PERIOD, dead=dead, jobs=1),
                         log, tmp_path / "one.jsonl")
    split, split_dead = _run(lambda dead: merged(
        [read_part([log], rules, k, n, None, None, lambda: None) for k in range(n)],
        PERIOD, None, dead), log, tmp_path / "split.jsonl")
    assert split.rows == one.rows
    assert split.stats == one.stats
    assert split_dead == one_dead


def test_a_case_is_one_part_however_its_lines_are_written() -> None:
    event = {"event_id": "e1", "type": "case.cancelled", "case_id": "fall-å",
             "occurred_at": "2024-03-04T09:00:00+01:00", "unit_id": "u1"}
    ways = [json.dumps(event).encode(), json.dumps(event, ensure_ascii=False).encode(),
            json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
            json.dumps({"x": 1, **event}, ensure_ascii=False).encode(),
            json.dumps(event).replace("fall", "f\\u0061ll").encode()]
    for n in (2, 3, 5):
        assert len({shard_of(raw, n) for raw in ways}) == 1


def test_report_in_worker_processes(tmp_path: Path) -> None:
    """The real thing: two spawned workers, progress and phase reported, same report."""
    events = [
        {"event_id": f"e{i}", "type": t, "case_id": f"c{i % 7}", "unit_id": "u1",
         "occurred_at": f"2024-03-{1 + i % 20:02d}T09:00:00+01:00", "attributes": _ATTRS[t]}
        for i, t in enumerate(["referral.issued", "contact.requested"] * 20)
    ]
    lines = [json.dumps(e) for e in events] + ["not json"]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    seen: list[int] = []
    phases: list[str] = []
    one, one_dead = _run(lambda dead: build_report([log], PERIOD, dead=dead, jobs=1),
                         log, tmp_path / "one.jsonl")
    two, two_dead = _run(lambda dead: build_report(
        [log], PERIOD, dead=dead, jobs=2, progress=seen.append, phase=phases.append),
        log, tmp_path / "two.jsonl")
    assert two.rows == one.rows and two.rows
    assert two.stats == one.stats
    assert two_dead == one_dead and b"invalid_json" in two_dead
    assert phases == ["evaluating cases"]
    assert seen and max(seen) == len(lines)


def test_jobs_below_one_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    from vardgaranti.cli import main

    log = tmp_path / "log.jsonl"
    log.write_text("{}\n")
    assert main(["report", str(log), "--as-of", "2024-03-31", "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--jobs" in err and "Traceback" not in err
