"""Fuzzed input (issue 7): valid and subtly invalid lines, mixed into valid logs.

- `parse_event` is total: any bytes or text give an event or a rejection with a known reason;
- every invalid line ends up in the dead letters, with its reason and its `file:line`, in
  `report` (consumers/report.py) and in the embedded replay's store (consumers/replay.py);
- the report over the valid lines is the same with or without the invalid lines mixed in
  (and with repeated ids carrying other content after the original: the first one stands);
- no dead letter holds a personnummer-shaped value, not even written with JSON escapes.

The number of inputs tried is printed at the end of the module and kept in pytest's cache
(`vardgaranti/fuzz`) for the README.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import SQLModel

from consumers.deadletter import DeadLetter, DeadLetterFile
from consumers.replay import Pipeline, replay
from consumers.report import build_report
from consumers.store import DEAD, Store
from models.calendar import local_day
from models.clocks import Rules, to_fact
from models.engine import Engine
from models.events import EVENT_TYPES, MAX_YEAR, MIN_YEAR, PERSONNUMMER, Rejection, parse_event
from models.indicators import INDICATOR_IDS
from models.measures import Period, arrange

# The stable rejection reasons of the README; anything else is a bug.
KNOWN_REASONS = frozenset({
    "invalid_json", "invalid_encoding", "not_an_object", "missing_field", "blank_field",
    "too_long", "wrong_type", "naive_timestamp", "invalid_timestamp", "unknown_type",
    "invalid_value", "personnummer", "reserved_unit",
})
ANOMALIES = frozenset({"inconsistent", "orphan"})
PERIOD = Period.of(date(2024, 1, 1), date(2025, 12, 31), date(2025, 12, 31))
BASE = datetime(2024, 1, 1, tzinfo=UTC)
TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print and keep how many inputs the module tried (the README quotes the figure)."""
    yield
    if not TRIED:
        return
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    if cache is not None:
        cache.set("vardgaranti/fuzz", dict(TRIED))
    line = (f"fuzz: {TRIED['inputs']} inputs tried: {TRIED['parse']} single lines, "
            f"{TRIED['logs']} mixed logs ({TRIED['log_lines']} lines, "
            f"{TRIED['invalid_lines']} invalid, {TRIED['duplicates']} repeated ids)")
    # output is captured while fixtures run: print in the session's terminal summary instead
    request.config.pluginmanager.register(_Figures(line), "vardgaranti-fuzz-figures")


class _Figures:
    def __init__(self, line: str) -> None:
        self.line = line

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(self.line)


# ------------------------------------------------------------------ valid events

# No decimal digits in generated names (the line index is appended), so no name is ever
# personnummer-shaped by chance; everything else goes, quotes, backslashes, controls, emoji.
NAME_CHARS = st.characters(exclude_categories=("Cs", "Nd"), exclude_characters="\x00")
NAME = st.text(NAME_CHARS, min_size=1, max_size=12).filter(lambda s: bool(s.strip()))
UNIT = NAME.filter(lambda s: s != "ALL")
SAFE_TEXT = st.text(NAME_CHARS, max_size=16)
JSON_LEAF = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | SAFE_TEXT
    | st.floats(allow_nan=True, allow_infinity=True)  # NaN/Infinity: accepted in extras
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
    max_leaves=4,
)
HUGE = st.sampled_from(["å" * 100_000, "x" * 300_000])
MARK = "@@MARK@@"  # stands for a value that is not JSON (NaN, deep nesting), then replaced
ATTRIBUTE_NAMES = {"channel", "profession", "pathway", "kind", "reason", "indicator",
                   "to_unit_id"}
TOP_LEVEL = {"event_id", "type", "case_id", "occurred_at", "unit_id", "patient_ref",
             "attributes"}
REQUIRES_ATTRIBUTES = {"contact.requested", "assessment.completed", "referral.issued",
                       "decision.made", "wait.paused", "case.transferred"}


@st.composite
def attributes(draw: st.DrawFn, etype: str, units: list[str]) -> dict[str, Any]:
    optional_indicator = {"indicator": st.sampled_from(INDICATOR_IDS)}
    table: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "contact.requested": st.fixed_dictionaries(
            {"channel": st.sampled_from(["phone", "digital", "visit"])}),
        "assessment.completed": st.fixed_dictionaries(
            {"profession": st.sampled_from(["lakare", "sjukskoterska", "underskoterska"])
             | st.text(NAME_CHARS, min_size=1, max_size=64)}),
        "referral.issued": st.fixed_dictionaries(
            {"pathway": st.sampled_from(["specialist", "bup"])}),
        "decision.made": st.sampled_from([
            {"pathway": "specialist", "kind": "treatment"},
            {"pathway": "bup", "kind": "treatment"},
            {"pathway": "bup", "kind": "investigation"},
        ]),
        "wait.paused": st.fixed_dictionaries(
            {"reason": st.sampled_from(["patient_choice", "medical"])},
            optional=optional_indicator),
        "wait.resumed": st.fixed_dictionaries({}, optional=optional_indicator),
        "case.transferred": st.fixed_dictionaries({"to_unit_id": st.sampled_from(units)}),
        "case.cancelled": st.fixed_dictionaries({}, optional={"reason": SAFE_TEXT}),
    }
    extras = st.dictionaries(
        st.text(max_size=12).filter(lambda k: k not in ATTRIBUTE_NAMES), JSON_VALUE, max_size=2
    )
    attrs = {**draw(extras), **draw(table.get(etype, st.just({})))}
    if etype == "case.cancelled" and draw(st.integers(0, 19)) == 0:
        attrs["note"] = draw(HUGE)  # free text of any size is kept (and never stored)
    return attrs


@st.composite
def timestamp(draw: st.DrawFn) -> str:
    """RFC 3339 with an offset, in the forms pydantic accepts; now and then at the edges."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([
            f"{MIN_YEAR}-01-01T00:00:00+23:59", f"{MAX_YEAR}-12-31T23:59:59-23:59",
        ]))
    instant = BASE + timedelta(seconds=draw(st.integers(0, 2 * 365 * 86_400)))
    minutes = draw(st.sampled_from([0, 60, 120, -300, 330]) | st.integers(-1439, 1439))
    local = instant + timedelta(minutes=minutes)
    sep = draw(st.sampled_from("T t "))
    frac = draw(st.sampled_from(["", ".5", ".123456", ".123456789"]))
    if minutes == 0 and draw(st.booleans()):
        offset = draw(st.sampled_from("Zz"))
    else:
        sign = "-" if minutes < 0 else "+"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + offset


@st.composite
def valid_event(draw: st.DrawFn, n: int, cases: list[str], units: list[str]) -> dict[str, Any]:
    etype = draw(st.sampled_from(EVENT_TYPES))
    event: dict[str, Any] = {
        "event_id": f"{draw(st.text(NAME_CHARS, max_size=16))}-{n}",
        "type": etype,
        "case_id": draw(st.sampled_from(cases)),
        "occurred_at": draw(timestamp()),
        "unit_id": draw(st.sampled_from(units)),
    }
    attrs = draw(attributes(etype, units))
    if attrs or etype in REQUIRES_ATTRIBUTES or draw(st.booleans()):
        event["attributes"] = attrs
    if draw(st.booleans()):
        event["patient_ref"] = f"p-{draw(st.text(NAME_CHARS, max_size=30))}"
    unknown = st.text(max_size=8).filter(lambda k: k not in TOP_LEVEL)
    event.update(draw(st.dictionaries(unknown, JSON_LEAF, max_size=2)))  # ignored by the parser
    return event


def dumps(event: Any, ascii_only: bool) -> bytes:
    return json.dumps(event, ensure_ascii=ascii_only, allow_nan=True).encode()


# ------------------------------------------------------------------ invalid lines


@dataclass(frozen=True)
class Bad:
    line: bytes
    reasons: frozenset[str]  # the acceptable rejection reasons
    kind: str


@st.composite
def personnummer(draw: st.DrawFn) -> str:
    """10 or 12 digits, with -, + or nothing before the last four."""
    n = draw(st.sampled_from([10, 12]))
    digits = draw(st.text("0123456789", min_size=n, max_size=n))
    return digits[:-4] + draw(st.sampled_from(["", "-", "+"])) + digits[-4:]


def escaped_string(value: str, ascii_only: bool) -> bytes:
    """`value` as a JSON string with every ASCII digit written as a \\u escape."""
    return ('"' + "".join(
        f"\\u{ord(c):04x}" if "0" <= c <= "9" else json.dumps(c, ensure_ascii=ascii_only)[1:-1]
        for c in value
    ) + '"').encode()


def with_raw(event: dict[str, Any], field: str, raw: bytes, ascii_only: bool) -> bytes:
    """`event` serialised with `field` set to raw JSON text (NaN, deep nesting, escapes)."""
    return dumps({**event, field: MARK}, ascii_only).replace(dumps(MARK, ascii_only), raw, 1)


WRONG_VALUES = st.sampled_from([1, -7, 1.5, True, False, None, [], ["a"], {}, {"a": 1}])
NAN_TOKENS = st.sampled_from(["NaN", "Infinity", "-Infinity"])
BAD_UTF8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf",
                            b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"])
STRING_FIELDS = ["event_id", "case_id", "unit_id", "patient_ref"]
LETTERS = st.text(string.ascii_letters + " :-", max_size=20)


@st.composite
def invalid_line(draw: st.DrawFn, n: int, cases: list[str], units: list[str]) -> Bad:
    """One line that must be rejected, and why: one defect in an otherwise valid event."""
    e = draw(valid_event(n, cases, units))
    ascii_only = draw(st.booleans())
    value: Any
    kind = draw(st.sampled_from([
        "wrong_type", "type_not_a_string", "timestamp_not_a_string", "attributes_not_object",
        "missing", "too_long", "deep", "bad_utf8", "nan", "naive", "timestamp_range",
        "timestamp_garbage", "offset", "personnummer", "personnummer_escaped", "not_object",
        "truncated", "unknown_type", "blank", "reserved", "bad_literal", "nul", "surrogate",
        "random_bytes",
    ]))

    def bad(line: bytes, *reasons: str) -> Bad:
        return Bad(line, frozenset(reasons), kind)

    if kind == "wrong_type":
        field = draw(st.sampled_from(STRING_FIELDS))
        return bad(dumps({**e, field: draw(WRONG_VALUES)}, ascii_only), "wrong_type")
    if kind == "type_not_a_string":
        return bad(dumps({**e, "type": draw(WRONG_VALUES)}, ascii_only), "unknown_type")
    if kind == "timestamp_not_a_string":
        # numbers are taken as Unix time by pydantic's lax mode: not generated here
        value = draw(st.sampled_from([True, None, [], {}, ["2024-01-01T00:00:00Z"]]))
        return bad(dumps({**e, "occurred_at": value}, ascii_only), "invalid_timestamp")
    if kind == "attributes_not_object":
        value = draw(st.sampled_from([1, "x", [], [{"pathway": "bup"}], True, None]))
        return bad(dumps({**e, "attributes": value}, ascii_only), "not_an_object")
    if kind == "missing":
        required = ["event_id", "type", "case_id", "occurred_at", "unit_id"]
        if e["type"] in REQUIRES_ATTRIBUTES:
            required.append("attributes")
        field = draw(st.sampled_from(required))
        return bad(dumps({k: v for k, v in e.items() if k != field}, ascii_only),
                   "missing_field")
    if kind == "too_long":
        field, limit = draw(st.sampled_from(
            [("event_id", 128), ("case_id", 128), ("unit_id", 64), ("patient_ref", 128)]))
        size = draw(st.integers(limit + 1, limit + 3) | st.integers(limit + 1, 200_000))
        value = draw(st.sampled_from("xå🙂")) * size
        return bad(dumps({**e, field: value}, ascii_only), "too_long")
    if kind == "deep":
        depth = draw(st.integers(256, 20_000))
        return bad(with_raw(e, "nested", b"[" * depth + b"]" * depth, ascii_only),
                   "invalid_json")
    if kind == "bad_utf8":
        line = dumps(e, ascii_only)
        at = draw(st.integers(0, len(line)))
        return bad(line[:at] + draw(BAD_UTF8) + line[at:], "invalid_json", "invalid_encoding")
    if kind == "nan":
        field = draw(st.sampled_from([*STRING_FIELDS, "occurred_at"]))
        reason = "invalid_timestamp" if field == "occurred_at" else "wrong_type"
        return bad(with_raw(e, field, draw(NAN_TOKENS).encode(), ascii_only), reason)
    if kind == "naive":
        stamp = draw(st.sampled_from(["2024-03-04T09:00:00", "2024-03-04 09:00",
                                      "2024-03-04T09:00:00.250", "2024-03-04"]))
        return bad(dumps({**e, "occurred_at": stamp}, ascii_only), "naive_timestamp")
    if kind == "timestamp_range":
        years = st.sampled_from([0, 1, 1000, MIN_YEAR - 1, MAX_YEAR + 1, 9999]) | st.integers(
            MAX_YEAR + 1, 9999)
        stamp = draw(years.map(lambda y: f"{y:04d}-06-01T12:00:00+01:00") | st.sampled_from(
            ["10000-01-01T00:00:00Z", f"{MIN_YEAR - 1}-12-31T23:59:59Z"]))
        return bad(dumps({**e, "occurred_at": stamp}, ascii_only), "invalid_timestamp")
    if kind == "timestamp_garbage":
        stamp = draw(LETTERS | st.sampled_from(["2024-02-30T00:00:00Z", "2024-13-01T00:00Z",
                                                "2024-01-01T24:00:00Z", "2024-W01-1T00:00Z",
                                                "2024-01-01T00Z", "+002024-01-01T00:00Z"]))
        return bad(dumps({**e, "occurred_at": stamp}, ascii_only), "invalid_timestamp")
    if kind == "offset":
        hours = draw(st.integers(24, 99))
        sign = draw(st.sampled_from("+-"))
        stamp = f"2024-06-01T12:00:00{sign}{hours:02d}:{draw(st.integers(0, 59)):02d}"
        return bad(dumps({**e, "occurred_at": stamp}, ascii_only), "invalid_timestamp")
    if kind in ("personnummer", "personnummer_escaped"):
        field = draw(st.sampled_from(["patient_ref", "case_id", "event_id", "unit_id"]))
        # after "å", written \\u00e5 in ASCII-only JSON: an escape ending in a digit
        value = draw(st.sampled_from(["", "p-", "ref:", "å", "pé"])) + draw(personnummer())
        raw = escaped_string(value, ascii_only) if kind == "personnummer_escaped" else dumps(
            value, ascii_only)
        return bad(with_raw(e, field, raw, ascii_only), "personnummer")
    if kind == "not_object":
        value = draw(st.sampled_from([[e], "event", 1, None, True, [], 1e300]))
        return bad(dumps(value, ascii_only), "not_an_object")
    if kind == "truncated":
        line = dumps(e, ascii_only)
        return bad(line[: draw(st.integers(1, len(line) - 1))], "invalid_json")
    if kind == "unknown_type":
        etype = draw(LETTERS.filter(lambda t: t not in EVENT_TYPES))
        return bad(dumps({**e, "type": etype}, ascii_only), "unknown_type")
    if kind == "blank":
        field = draw(st.sampled_from(["event_id", "case_id", "unit_id"]))
        value = draw(st.sampled_from(["", " ", "\t", "\u2003", "\n "]))
        return bad(dumps({**e, field: value}, ascii_only), "blank_field")
    if kind == "reserved":
        if draw(st.booleans()):
            return bad(dumps({**e, "unit_id": "ALL"}, ascii_only), "reserved_unit")
        return bad(dumps({**e, "type": "case.transferred", "attributes": {"to_unit_id": "ALL"}},
                         ascii_only), "reserved_unit")
    if kind == "bad_literal":
        choice = draw(st.sampled_from(["pathway", "channel", "kind", "indicator", "mix"]))
        attrs: dict[str, Any] = {
            "pathway": {"type": "referral.issued", "attributes": {"pathway": "dental"}},
            "channel": {"type": "contact.requested", "attributes": {"channel": "fax"}},
            "kind": {"type": "decision.made", "attributes": {"pathway": "bup", "kind": "x"}},
            "indicator": {"type": "wait.resumed", "attributes": {"indicator": "besok_91"}},
            "mix": {"type": "decision.made",
                    "attributes": {"pathway": "specialist", "kind": "investigation"}},
        }[choice]
        return bad(dumps({**e, **attrs}, ascii_only), "invalid_value")
    if kind == "nul":
        field = draw(st.sampled_from(["event_id", "case_id", "unit_id", "patient_ref"]))
        return bad(dumps({**e, field: "a\x00b"}, ascii_only), "invalid_value")
    if kind == "surrogate":  # a lone surrogate escape is not a character
        lone = draw(st.sampled_from([b'"\\ud800"', b'"x\\udfff"', b'"\\udbff\\u0041"'])
                    | personnummer().map(lambda p: b'"\\ud800' + p.encode() + b'"'))
        return bad(with_raw(e, "event_id", lone, ascii_only), "invalid_json")
    # random bytes: anything, as long as it is one non-blank line
    line = draw(st.binary(min_size=1, max_size=300).filter(
        lambda b: b"\n" not in b and bool(b.rstrip(b"\r\n").strip())))
    return bad(line, *KNOWN_REASONS)


# ------------------------------------------------------------------ single lines


def _check_parse(raw: bytes | str) -> None:
    parsed = parse_event(raw)
    if isinstance(parsed, Rejection):
        assert parsed.reason in KNOWN_REASONS, parsed
        assert parsed.message and "\n" not in parsed.message and len(parsed.message) <= 300
        return
    # a valid event goes through the core without trouble: fact, local day, clocks
    fact = to_fact(parsed)
    local_day(fact.ts)
    engine = Engine(Rules())
    engine.add(parsed["case_id"], fact)
    engine.settle()


@st.composite
def any_line(draw: st.DrawFn) -> bytes | str:
    cases, units = draw(st.lists(NAME, min_size=1, max_size=2)), draw(
        st.lists(UNIT, min_size=1, max_size=2))
    which = draw(st.integers(0, 4))
    if which == 0:
        return draw(st.binary(max_size=400))
    if which == 1:  # text, surrogates included: parse_event also takes str
        return draw(st.text(st.characters(), max_size=200))
    if which == 2:
        return dumps(draw(valid_event(0, cases, units)), draw(st.booleans()))
    return draw(invalid_line(0, cases, units)).line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_line())
def test_parse_event_never_raises(raw: bytes | str) -> None:
    TRIED["parse"] += 1
    TRIED["inputs"] += 1
    _check_parse(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_each_defect_is_rejected_with_its_reason(data: st.DataObject) -> None:
    cases = data.draw(st.lists(NAME, min_size=1, max_size=2))
    units = data.draw(st.lists(UNIT, min_size=1, max_size=2))
    bad = data.draw(invalid_line(0, cases, units))
    note(f"defect: {bad.kind}")
    TRIED["parse"] += 1
    TRIED["inputs"] += 1
    parsed = parse_event(bad.line)
    assert isinstance(parsed, Rejection), (bad.kind, bad.line[:200])
    assert parsed.reason in bad.reasons, (bad.kind, parsed)
    letter = DeadLetter.of("f:1", parsed.reason, parsed.message, bad.line)
    assert_masked(letter)
    if parsed.reason == "personnummer":
        assert "<masked>" in letter.raw


# ------------------------------------------------------------------ mixed logs


@dataclass
class MixedLog:
    valid: list[bytes]  # the clean log
    lines: list[bytes]  # the mixed log, blank lines included
    invalid: dict[int, Bad]  # 1-based line number in `lines` -> the defect
    duplicates: int  # lines repeating an earlier (case, id) with other content


@st.composite
def mixed_log(draw: st.DrawFn) -> MixedLog:
    cases = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    units = draw(st.lists(UNIT, min_size=1, max_size=3, unique=True))
    events = [draw(valid_event(n, cases, units)) for n in range(draw(st.integers(0, 20)))]
    valid = [dumps(e, draw(st.booleans())) for e in events]
    mixed: list[bytes | Bad] = list(valid)
    duplicates = 0
    for n in range(draw(st.integers(0, 12))):
        if events and draw(st.integers(0, 4)) == 0:
            # the same (case, id) again with other content, after the original
            i = draw(st.integers(0, len(events) - 1))
            other = draw(valid_event(n, cases, units))
            other.update(event_id=events[i]["event_id"], case_id=events[i]["case_id"])
            at = draw(st.integers(mixed.index(valid[i]) + 1, len(mixed)))
            mixed.insert(at, dumps(other, draw(st.booleans())))
            duplicates += 1
        else:
            bad = draw(invalid_line(1000 + n, cases, units))
            mixed.insert(draw(st.integers(0, len(mixed))), bad)
        if draw(st.integers(0, 5)) == 0:
            mixed.insert(draw(st.integers(0, len(mixed))), b"   ")  # blank: skipped
    invalid = {i: item for i, item in enumerate(mixed, 1) if isinstance(item, Bad)}
    lines = [item.line if isinstance(item, Bad) else item for item in mixed]
    return MixedLog(valid, lines, invalid, duplicates)


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def assert_masked(letter: DeadLetter) -> None:
    """No personnummer-shaped value, in the text or in the JSON it may decode to."""
    for text in (letter.raw, letter.message):
        assert not PERSONNUMMER.search(text), text[:200]
        assert "\x00" not in text
        try:
            decoded = json.loads(text)  # NaN and Infinity included
        except (ValueError, RecursionError):
            continue
        assert not PERSONNUMMER.search(json.dumps(decoded, ensure_ascii=False)), text[:200]


def _check_dead_letters(letters: list[DeadLetter], log: MixedLog, path: Path) -> None:
    rejected = {d.source: d for d in letters if d.reason not in ANOMALIES}
    assert set(rejected) == {f"{path}:{n}" for n in log.invalid}
    for n, bad in log.invalid.items():
        letter = rejected[f"{path}:{n}"]
        assert letter.reason in bad.reasons, (bad.kind, letter)
        assert letter.message
    for letter in letters:
        assert_masked(letter)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mixed_log())
def test_report_over_a_mixed_log_equals_the_clean_log(log: MixedLog) -> None:
    TRIED["logs"] += 1
    TRIED["inputs"] += len(log.lines)
    TRIED["log_lines"] += len(log.lines)
    TRIED["invalid_lines"] += len(log.invalid)
    TRIED["duplicates"] += log.duplicates
    with tempfile.TemporaryDirectory(prefix="vg-fuzz-") as name:
        tmp = Path(name)
        clean_path, mixed_path = write(tmp / "clean.jsonl", log.valid), write(
            tmp / "mixed.jsonl", log.lines)
        clean_dead, mixed_dead = _Collect(None), _Collect(None)
        clean = build_report([clean_path], PERIOD, dead=clean_dead)
        mixed = build_report([mixed_path], PERIOD, dead=mixed_dead)
    assert [r.as_dict() for r in mixed.rows] == [r.as_dict() for r in clean.rows]
    assert clean.stats.rejected.total() == 0
    assert mixed.stats.rejected.total() == len(log.invalid)
    assert mixed.stats.events == clean.stats.events + log.duplicates
    assert mixed.stats.ignored["duplicate"] == clean.stats.ignored["duplicate"] + log.duplicates
    _check_dead_letters(mixed_dead.letters, log, mixed_path)
    anomalies = sorted((d.source, d.reason, d.message) for d in clean_dead.letters)
    assert anomalies == sorted((d.source, d.reason, d.message) for d in mixed_dead.letters
                               if d.reason in ANOMALIES)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mixed_log(), st.integers(1, 9))
def test_replay_of_a_mixed_log_stores_the_clean_figures(log: MixedLog, batch: int) -> None:
    TRIED["logs"] += 1
    TRIED["inputs"] += len(log.lines)
    TRIED["log_lines"] += len(log.lines)
    TRIED["invalid_lines"] += len(log.invalid)
    TRIED["duplicates"] += log.duplicates
    with tempfile.TemporaryDirectory(prefix="vg-fuzz-") as name:
        tmp = Path(name)
        clean = build_report([write(tmp / "clean.jsonl", log.valid)], PERIOD)
        path = write(tmp / "mixed.jsonl", log.lines)
        store = Store(f"sqlite:///{tmp / 'store.db'}")
        try:
            pipeline = Pipeline.restore(store, Rules())
            stats = replay([path], store, pipeline, batch=batch)
            assert stats.rejected.total() == len(log.invalid)
            assert stats.duplicates == log.duplicates
            stored = arrange(store.per_unit(PERIOD), None)
            with store.engine.connect() as conn:
                letters = [DeadLetter(*row) for row in conn.execute(
                    select(DEAD.c.source, DEAD.c.reason, DEAD.c.message, DEAD.c.raw))]
        finally:
            store.engine.dispose()
    assert [r.as_dict() for r in stored] == [r.as_dict() for r in clean.rows]
    _check_dead_letters(letters, log, path)


# ------------------------------------------------------------------ a fixed corpus, every store

CORPUS_EVENT: dict[str, Any] = {
    "event_id": "e1", "type": "referral.issued", "case_id": "c1", "unit_id": "u1",
    "occurred_at": "2024-03-04T09:00:00+01:00", "attributes": {"pathway": "specialist"},
}
CORPUS: list[tuple[bytes, str]] = [
    (b'{"event_id": "a\x00b"', "invalid_json"),  # a raw NUL byte: PostgreSQL text cannot hold it
    (orjson.dumps({**CORPUS_EVENT, "event_id": "a\x00b"}), "invalid_value"),
    (orjson.dumps({**CORPUS_EVENT, "patient_ref": "p\x00"}), "invalid_value"),
    (orjson.dumps({**CORPUS_EVENT, "occurred_at": "0001-01-01T00:30:00+01:00"}),
     "invalid_timestamp"),
    (orjson.dumps({**CORPUS_EVENT, "occurred_at": "9999-12-31T23:00:00-05:00"}),
     "invalid_timestamp"),
    (with_raw(CORPUS_EVENT, "patient_ref", escaped_string("19121212-1212", True), True),
     "personnummer"),
    (orjson.dumps({**CORPUS_EVENT, "patient_ref": "\u00e5121212-1212"}), "personnummer"),
    (dumps({**CORPUS_EVENT, "patient_ref": "\u00e5121212-1212"}, True), "personnummer"),
    (b'{"event_id": "\\ud800121212+1212"}', "invalid_json"),
    (b"\xff\xfe" + orjson.dumps(CORPUS_EVENT), "invalid_json"),
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    (orjson.dumps({**CORPUS_EVENT, "event_id": "x" * 200_000}), "too_long"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """SQLite, and PostgreSQL when VARDGARANTI_TEST_DATABASE_URL is set (as the store tests)."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        yield store
        store.engine.dispose()
        return
    url = os.environ.get("VARDGARANTI_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL: set VARDGARANTI_TEST_DATABASE_URL (postgresql+psycopg://…)")
    store = Store(url)
    SQLModel.metadata.drop_all(store.engine)
    SQLModel.metadata.create_all(store.engine)
    yield store
    SQLModel.metadata.drop_all(store.engine)
    store.engine.dispose()


def test_nasty_lines_are_dead_letters_on_every_store(any_store: Store, tmp_path: Path) -> None:
    good = orjson.dumps({**CORPUS_EVENT, "event_id": "ok"})
    path = write(tmp_path / "nasty.jsonl", [good] + [line for line, _ in CORPUS])
    stats = replay([path], any_store, Pipeline.restore(any_store, Rules()))
    assert stats.new_events == 1
    with any_store.engine.connect() as conn:
        stored = {row.source: row for row in conn.execute(select(DEAD))}
    assert {s: r.reason for s, r in stored.items()} == {
        f"{path}:{n}": reason for n, (_, reason) in enumerate(CORPUS, 2)
    }
    for row in stored.values():
        assert_masked(DeadLetter(row.source, row.reason, row.message, row.raw))


# ------------------------------------------------------------------ helpers (per example:
# function-scoped fixtures are not reset between hypothesis examples)


class _Collect(DeadLetterFile):
    """A dead-letter sink that keeps the letters in memory."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path)
        self.letters: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        super().add(letter)
        self.letters.append(letter)

