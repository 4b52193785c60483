"""The synthetic year: contract (docs/events.md), determinism, noise and calibration."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import orjson
import pytest

from models.indicators import INDICATORS, LICENSED_PROFESSIONS, DayRule, Indicator
from models.region import UNITS_BY_ID
from vardgaranti.generate import GenerateStats, generate

YEAR = 2024
SMALL = 0.01  # ~37 000 events
CALIBRATION_SCALE = 0.1  # ~370 000 events; BUP needs it to have a few hundred clocks
TOLERANCE = 0.04
STOCKHOLM = ZoneInfo("Europe/Stockholm")

ALL_TYPES = (
    "contact.requested", "contact.completed", "assessment.needed", "assessment.completed",
    "referral.issued", "visit.completed", "decision.made", "treatment.started",
    "investigation.started", "wait.paused", "wait.resumed", "case.transferred",
    "case.cancelled", "care.external",
)
# ties at the same instant sort in the order of the event type table (docs/events.md)
TYPE_ORDER = {t: n for n, t in enumerate(ALL_TYPES)}
REQUIRED_ATTRS = {
    "contact.requested": {"channel"}, "assessment.completed": {"profession"},
    "referral.issued": {"pathway"}, "decision.made": {"pathway", "kind"},
    "wait.paused": {"reason"}, "case.transferred": {"to_unit_id"},
}
STARTS = {"contact.requested", "assessment.needed", "referral.issued", "decision.made"}
OFFSET_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
# 10 or 12 digits, with or without -/+ before the last four (docs/events.md)
PERSONNUMMER = re.compile(rb"(?<![0-9])(?:[0-9]{6}|[0-9]{8})[-+]?[0-9]{4}(?![0-9])")


def read_lines(path: Path) -> list[bytes]:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        return list(f)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateStats]:
    out = tmp_path_factory.mktemp("gen") / "small.jsonl.gz"
    return out, generate(out, YEAR, seed=7, scale=SMALL, progress=False)


@pytest.fixture(scope="module")
def small_events(small: tuple[Path, GenerateStats]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in read_lines(small[0])]


# ------------------------------------------------------------------- determinism


def test_same_seed_same_bytes(small: tuple[Path, GenerateStats], tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl.gz"
    generate(again, YEAR, seed=7, scale=SMALL, progress=False)
    assert again.read_bytes() == small[0].read_bytes()


def test_different_seed_differs(small: tuple[Path, GenerateStats], tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl.gz"
    generate(other, YEAR, seed=8, scale=SMALL, progress=False)
    assert read_lines(other) != read_lines(small[0])


def test_gzip_header_has_no_time_or_name(small: tuple[Path, GenerateStats]) -> None:
    head = small[0].read_bytes()[:10]
    assert head[:2] == b"\x1f\x8b"
    assert head[3] & 0x08 == 0, "FNAME flag set"
    assert head[4:8] == b"\0\0\0\0", "mtime set"


def test_plain_jsonl_is_the_same_content(small: tuple[Path, GenerateStats], tmp_path: Path
                                         ) -> None:
    plain = tmp_path / "plain.jsonl"
    generate(plain, YEAR, seed=7, scale=SMALL, progress=False)
    assert plain.read_bytes() == b"".join(read_lines(small[0]))


@pytest.mark.parametrize("kwargs", [
    {"scale": 0.0}, {"scale": -1.0}, {"scale": float("nan")}, {"bad_rate": -0.1},
    {"bad_rate": 0.6}, {"seed": -1},
])
def test_bad_arguments(kwargs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        generate(tmp_path / "x.jsonl", YEAR, progress=False, **kwargs)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x.jsonl").exists()


def test_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.jsonl"):
        generate(tmp_path / "x.csv", YEAR, scale=SMALL, progress=False)


# ------------------------------------------------------------------- the event contract


def test_every_line_follows_the_contract(small_events: list[dict[str, Any]]) -> None:
    ids: set[str] = set()
    for ev in small_events:
        for key in ("event_id", "type", "case_id", "occurred_at", "unit_id"):
            assert isinstance(ev[key], str) and 1 <= len(ev[key]) <= 128, (key, ev)
        assert ev["type"] in TYPE_ORDER, ev
        assert OFFSET_TS.match(ev["occurred_at"]), ev
        ts = datetime.fromisoformat(ev["occurred_at"])
        assert ts.utcoffset() in (timedelta(hours=1), timedelta(hours=2)), ev
        assert ev["unit_id"] in UNITS_BY_ID, ev
        assert re.fullmatch(r"p-[0-9a-f]{8}", ev["patient_ref"]), ev
        attrs = ev["attributes"]
        assert REQUIRED_ATTRS.get(ev["type"], set()) <= attrs.keys(), ev
        if ev["type"] in STARTS:
            assert attrs["sex"] in ("F", "M") and attrs["age_band"], ev
        if ev["type"] in ("referral.issued", "decision.made"):
            assert attrs["pathway"] in ("specialist", "bup"), ev
            bup = attrs["pathway"] == "bup"
            assert UNITS_BY_ID[ev["unit_id"]].kind == ("bup" if bup else "clinic"), ev
            if bup:
                assert attrs["age_band"] in ("0-5", "6-12", "13-17"), ev
        if ev["type"] == "decision.made":
            assert attrs["kind"] in ("treatment", "investigation"), ev
            assert (attrs["pathway"], attrs["kind"]) != ("specialist", "investigation"), ev
        if ev["type"] == "contact.requested":
            assert attrs["channel"] in ("phone", "digital", "visit"), ev
        if ev["type"] == "wait.paused":
            assert attrs["reason"] in ("patient_choice", "medical"), ev
        if ev["type"] == "case.transferred":
            assert attrs["to_unit_id"] in UNITS_BY_ID and attrs["to_unit_id"] != ev["unit_id"]
        ids.add(ev["event_id"])
    assert len(ids) == len({ev["event_id"] for ev in small_events})


def test_local_times_and_year_bounds(small_events: list[dict[str, Any]]) -> None:
    last = datetime.fromisoformat(f"{YEAR}-12-31T23:59:59+01:00")
    in_year: set[str] = set()
    before: set[str] = set()
    for ev in small_events:
        ts = datetime.fromisoformat(ev["occurred_at"])
        assert ts <= last, ev
        # wall-clock time and offset are the Europe/Stockholm ones for that instant
        assert ts.astimezone(STOCKHOLM).isoformat() == ev["occurred_at"], ev
        (in_year if ev["occurred_at"].startswith(str(YEAR)) else before).add(ev["case_id"])
    # the backlog of open clocks carried into the year has its start events in the log
    assert before and before <= in_year
    hours = Counter(int(ev["occurred_at"][11:13]) for ev in small_events
                    if ev["type"] == "contact.requested")
    office = sum(n for h, n in hours.items() if 8 <= h < 17)
    assert 0.75 < office / sum(hours.values()) < 0.97  # mostly office hours, some not


def test_all_event_types_appear(small: tuple[Path, GenerateStats],
                                small_events: list[dict[str, Any]]) -> None:
    seen = Counter(ev["type"] for ev in small_events)
    assert set(seen) == set(ALL_TYPES)
    kinds = Counter((ev["attributes"]["pathway"], ev["attributes"]["kind"])
                    for ev in small_events if ev["type"] == "decision.made")
    assert set(kinds) == {("specialist", "treatment"), ("bup", "treatment"),
                          ("bup", "investigation")}
    pauses = Counter((ev["attributes"]["reason"], "indicator" in ev["attributes"])
                     for ev in small_events if ev["type"] == "wait.paused")
    assert len(pauses) == 4, pauses  # both reasons, with and without indicator
    professions = Counter(ev["attributes"]["profession"] for ev in small_events
                          if ev["type"] == "assessment.completed")
    assert 0.04 < professions["underskoterska"] / sum(professions.values()) < 0.12
    # stats count distinct events by type
    distinct = {ev["event_id"]: ev["type"] for ev in small_events}
    assert small[1].by_type == dict(sorted(Counter(distinct.values()).items()))
    assert small[1].events == len(distinct)


def test_volumes_scale_linearly(small: tuple[Path, GenerateStats]) -> None:
    stats = small[1]
    # the region's volumes (docs/rules.md#kallor): 3-5 million events a year at scale 1
    assert 3_000_000 * SMALL < stats.events < 5_000_000 * SMALL
    assert 1_000_000 * SMALL < stats.by_type["contact.requested"] < 1_500_000 * SMALL


def test_no_personnummer_shaped_values(small: tuple[Path, GenerateStats]) -> None:
    assert not PERSONNUMMER.search(b"".join(read_lines(small[0])))


def test_duplicates_and_late_lines(small: tuple[Path, GenerateStats]) -> None:
    lines = read_lines(small[0])
    stats = small[1]
    copies = len(lines) - len(set(lines))
    assert copies == stats.duplicates
    assert 0.001 < copies / len(lines) < 0.006
    seen: set[bytes] = set()
    later_copies = 0
    newest = datetime.min.replace(tzinfo=UTC)
    behind = 0
    for line in lines:
        ev = orjson.loads(line)
        ts = datetime.fromisoformat(ev["occurred_at"])
        if line in seen:
            later_copies += 1
        seen.add(line)
        if ts < newest:
            behind += 1
        newest = max(newest, ts)
    assert later_copies == copies  # every copy comes after its original
    # ~1 % late and the duplicates are written behind newer events
    assert 0.005 < behind / len(lines) < 0.03
    assert 0.005 < stats.late / stats.events < 0.02
    assert stats.lines == len(lines) and stats.bad_lines == 0


def test_malformed_lines_when_asked(small: tuple[Path, GenerateStats], tmp_path: Path) -> None:
    out = tmp_path / "bad.jsonl.gz"
    stats = generate(out, YEAR, seed=7, scale=SMALL, bad_rate=0.05, progress=False)
    lines = read_lines(out)
    reasons: Counter[str] = Counter()
    good: list[bytes] = []
    for line in lines:
        reason = malformed_reason(line)
        if reason:
            reasons[reason] += 1
        else:
            good.append(line)
    assert set(reasons) == {"not json", "missing field", "naive timestamp", "unknown type",
                            "personnummer", "unknown pathway"}
    assert sum(reasons.values()) == stats.bad_lines
    assert 0.04 < stats.bad_lines / len(lines) < 0.06
    # the valid events are exactly those of the clean file: bad lines come on top
    assert good == read_lines(small[0])


def malformed_reason(line: bytes) -> str | None:
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not json"
    if not all(k in ev for k in ("event_id", "type", "case_id", "occurred_at", "unit_id")):
        return "missing field"
    if not OFFSET_TS.match(ev["occurred_at"]):
        return "naive timestamp"
    if ev["type"] not in TYPE_ORDER:
        return "unknown type"
    if PERSONNUMMER.search(ev.get("patient_ref", "").encode()):
        return "personnummer"
    if ev["attributes"].get("pathway", "bup") not in ("specialist", "bup"):
        return "unknown pathway"
    return None


# ------------------------------------------------------------------- calibration


def completed_ratios(lines: list[bytes], year: int) -> dict[str, tuple[int, float]]:
    """Completed-within share per indicator, evaluated independently of the product.

    Per case: events sorted by instant (ties by type order, then id), duplicates dropped;
    a clock starts at its first start event and is fulfilled by the first qualifying event
    at or after it (care.external qualifies for any clock; a cancellation ends the case).
    Cases with a pause are skipped; the calendar-day rule decides within.
    """
    cases: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for line in lines:
        ev = orjson.loads(line)
        cases[ev["case_id"]].setdefault(ev["event_id"], ev)
    hol = holidays.country_holidays("SE", years=range(year - 1, year + 2))

    def weekday(d: date) -> bool:
        return d.weekday() < 5 and d not in hol

    def key(e: dict[str, Any]) -> tuple[datetime, int, str]:
        return datetime.fromisoformat(e["occurred_at"]), TYPE_ORDER[e["type"]], e["event_id"]

    def fulfils(ind: Indicator, e: dict[str, Any]) -> bool:
        if e["type"] == "care.external":
            return True
        if e["type"] not in ind.fulfil_types:
            return False
        return (e["type"] != "assessment.completed"
                or e["attributes"]["profession"] in LICENSED_PROFESSIONS)

    counts = {i.id: [0, 0] for i in INDICATORS}
    for events in cases.values():
        if any(e["type"] == "wait.paused" for e in events.values()):
            continue
        seq = sorted(events.values(), key=key)
        for ind in INDICATORS:
            starts = [k for k, e in enumerate(seq) if e["type"] == ind.start_type and all(
                e["attributes"].get(a) == v for a, v in ind.start_match)]
            if not starts:
                continue
            done = None
            for e in seq[starts[0]:]:
                if e["type"] == "case.cancelled":
                    break
                if fulfils(ind, e):
                    done = e
                    break
            if done is None or not done["occurred_at"].startswith(str(year)):
                continue
            start_ts = seq[starts[0]]["occurred_at"]
            s, f = date.fromisoformat(start_ts[:10]), date.fromisoformat(done["occurred_at"][:10])
            if ind.day_rule == DayRule.SAME_DAY:
                due = s
                if not (weekday(s) and start_ts[11:19] < "16:00:00"):
                    due = s + timedelta(days=1)
                    while not weekday(due):
                        due += timedelta(days=1)
                within = f <= due
            else:
                within = (f - s).days <= ind.limit_days
            counts[ind.id][0] += 1
            counts[ind.id][1] += within
    return {k: (n, w / n) for k, (n, w) in counts.items() if n}


@pytest.fixture(scope="module")
def calibration_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cal") / "year.jsonl.gz"
    generate(out, YEAR, seed=3, scale=CALIBRATION_SCALE, progress=False)
    return out


def test_completed_ratio_near_2023(calibration_log: Path) -> None:
    ratios = completed_ratios(read_lines(calibration_log), YEAR)
    for ind in INDICATORS:
        n, ratio = ratios[ind.id]
        assert n >= 250, (ind.id, n)
        assert abs(ratio - ind.result_2023) <= TOLERANCE, (ind.id, n, ratio, ind.result_2023)


def _report_command() -> list[str] | None:
    script = Path(sys.executable).with_name("vardgaranti")
    if script.exists():
        return [str(script)]
    found = shutil.which("vardgaranti")
    return [found] if found else None


def test_report_cli_agrees_with_2023(calibration_log: Path) -> None:
    command = _report_command()
    if command is None:
        pytest.skip("the vardgaranti command is not installed (pip install -e .)")
    result = subprocess.run(
        [*command, "report", str(calibration_log), "--as-of", f"{YEAR}-12-31",
         "--from", f"{YEAR}-01-01", "--to", f"{YEAR}-12-31", "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode != 0 and "invalid choice" in result.stderr:
        pytest.skip("this build of vardgaranti has no report command")
    assert result.returncode == 0, result.stderr
    rows = {r["indicator"]: r for r in json.loads(result.stdout)["rows"]
            if r["unit_id"] == "ALL"}
    for ind in INDICATORS:
        row = rows[ind.id]
        assert row["completed"] >= 250, row
        assert abs(row["completed_ratio"] - ind.result_2023) <= TOLERANCE, row
    # a clean synthetic log has no inconsistent or orphan events
    assert "inconsistent" not in result.stderr and "orphan" not in result.stderr, result.stderr
