"""The typed decoder of the hot path: a valid line straight from bytes to its fact.

msgspec decodes the line into Structs (a union tagged by `type`) in one pass of compiled
code, with the contract's lengths and literals checked on the way; what the id checks and
the timestamp's precision look for is searched in the raw bytes first (`_doubtful`). It only
ever *accepts*: a line it refuses, or one it cannot vouch for, goes to `models.events`
(pydantic), which decides and words the rejection. So every accepted line must be one the
full schema accepts, with the same fact; tests/models/test_decode.py holds the two to that.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from sys import intern
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from models.clocks import NO_INDICATOR, START_TABLE, Fact
from models.events import EVENT_TYPES, MAX_YEAR, MIN_YEAR, PERSONNUMMER, TYPE_RANK
from models.indicators import INDICATOR_IDS, LICENSED_PROFESSIONS, ORDER, REGION_UNIT

# The id checks (`events._not_personnummer`) and the timestamp, looked for in the raw bytes
# at once, digits folded to 0: a run of digits shaped like a personnummer (what
# `events._SAFE_ID` lets through has none), more than six digits of a second (msgspec
# rounds them, the full schema truncates), and a backslash (an escape can hide digits or a
# NUL). Stricter than the contract: such a line, even with the run in a free attribute,
# takes the full path. Non-ASCII digits are looked for in the ids themselves (`_text_safe`).
_FOLD = bytes.maketrans(b"123456789", b"000000000")
# ten digits, six and a sign then a digit, or a dot and seven digits (the lookbehind, so
# that the search can start from the literal six zeros): one pass over the folded line
_RUNS = re.compile(rb"000000(?:0000|[-+]0|(?<=\.0000000))").search


# The full schema's JSON parser gives up past 200 levels of nesting (invalid_json); msgspec
# goes far deeper. A line with that many brackets takes the full path, which decides; such
# a line is at least twice as long (every level opens and closes), most are not.
_DEEP = 200


def _doubtful(raw: bytes) -> bool:
    return (b"\\" in raw or _RUNS(raw.translate(_FOLD)) is not None
            or (len(raw) > 2 * _DEEP and raw.count(b"[") + raw.count(b"{") > _DEEP))


Id = Annotated[str, Meta(min_length=1, max_length=128)]
UnitId = Annotated[str, Meta(min_length=1, max_length=64)]
PatientRef = Annotated[str, Meta(max_length=128)]
Stamp = Annotated[datetime, Meta(tz=True)]
Pathway = Literal["specialist", "bup"]
IndicatorId = Literal[INDICATOR_IDS]  # type: ignore[valid-type]


class _Attrs(Struct):
    """Free attributes: other keys are skipped (the fact needs none of them)."""


class ContactAttrs(_Attrs):
    channel: Literal["phone", "digital", "visit"]


class AssessmentAttrs(_Attrs):
    profession: Annotated[str, Meta(min_length=1, max_length=64)]


class ReferralAttrs(_Attrs):
    pathway: Pathway


class DecisionAttrs(_Attrs):
    pathway: Pathway
    kind: Literal["treatment", "investigation"]


class PauseAttrs(_Attrs):
    reason: Literal["patient_choice", "medical"]
    indicator: IndicatorId | UnsetType = UNSET


class ResumeAttrs(_Attrs):
    indicator: IndicatorId | UnsetType = UNSET


class TransferAttrs(_Attrs):
    to_unit_id: UnitId


class _Base(Struct, tag_field="type", kw_only=True):
    event_id: Id
    case_id: Id
    occurred_at: Stamp
    unit_id: UnitId
    patient_ref: PatientRef | UnsetType = UNSET


# The attributes each event type must have; the others may have free attributes (or, for
# wait.resumed, its own) or none.
_REQUIRED: dict[str, type[_Attrs]] = {
    "contact.requested": ContactAttrs,
    "assessment.completed": AssessmentAttrs,
    "referral.issued": ReferralAttrs,
    "decision.made": DecisionAttrs,
    "wait.paused": PauseAttrs,
    "case.transferred": TransferAttrs,
}
_OPTIONAL: dict[str, type[_Attrs]] = {"wait.resumed": ResumeAttrs}


def _struct(tag: str) -> type[Struct]:
    required = _REQUIRED.get(tag)
    attributes: tuple[Any, ...] = (
        ("attributes", required) if required is not None
        else ("attributes", _OPTIONAL.get(tag, _Attrs) | UnsetType, UNSET)
    )
    return msgspec.defstruct(tag, [attributes], bases=(_Base,), tag=tag, kw_only=True)


_TAGS: dict[type, str] = {_struct(tag): tag for tag in EVENT_TYPES}
_DECODER = msgspec.json.Decoder(Union[tuple(_TAGS)])  # noqa: UP007 (a union built at run time)

# How each decoded type becomes its fact, decided once per type instead of per line
# (the same reduction as `clocks.fact_of`, which tests/models/test_decode.py holds it to):
# a start opens the indicator its attributes pick, assessment.completed flags a licensed
# profession, a pause or resume names its indicator, a transfer its target unit.
_OTHER, _START, _ASSESSED, _PAUSE, _RESUME, _TRANSFER = range(6)
_HOW: dict[type, tuple[str, int, int, tuple[str, ...], dict[tuple[object, ...], int]]] = {}
for _type, _tag in _TAGS.items():
    _start = START_TABLE.get(_tag)
    _how = (_START if _start is not None else _ASSESSED if _tag == "assessment.completed"
            else _PAUSE if _tag == "wait.paused" else _RESUME if _tag == "wait.resumed"
            else _TRANSFER if _tag == "case.transferred" else _OTHER)
    _HOW[_type] = (_tag, TYPE_RANK[_tag], _how, *(_start or ((), {})))
_new_fact = tuple.__new__
_UTC_OFFSET_US: dict[tzinfo | None, int] = {}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)


def _text_safe(raw: bytes, ev: Any) -> bool:
    """A line with non-ASCII text: all of it UTF-8 (msgspec does not look inside the values
    it skips), and no id holding a personnummer written with non-ASCII digits."""
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    ids = [ev.event_id, ev.case_id, ev.unit_id]
    if ev.patient_ref is not UNSET:
        ids.append(ev.patient_ref)
    if _TAGS[type(ev)] == "case.transferred":
        ids.append(ev.attributes.to_unit_id)
    return not any(PERSONNUMMER.search(i) for i in ids)


def decode_fact(raw: bytes, refs: bool = True) -> tuple[str, str, Fact] | None:
    """(case id, event type, fact) of a line the contract accepts, or None: then the full
    schema must decide (it may still accept, e.g. a timestamp with a space for the T).
    `refs=False` leaves the patient reference out of the fact (only clock views show it)."""
    if _doubtful(raw):
        return None
    try:
        ev = _DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # nested too deep
        return None
    case_id, unit = ev.case_id, ev.unit_id
    # what the types leave out: blank ids and the reserved unit (as in events._clean)
    if ev.event_id.isspace() or case_id.isspace() or unit.isspace() or unit == REGION_UNIT:
        return None
    etype, rank, how, names, opens = _HOW[type(ev)]
    attrs = ev.attributes
    ind, flag, text = NO_INDICATOR, 0, None
    if how == _START:
        if names:
            if attrs is UNSET:
                ind = opens[(None,) * len(names)]
            else:
                # specialist investigations are not in the contract: the full schema words it
                if etype == "decision.made" and (attrs.kind == "investigation"
                                                 and attrs.pathway == "specialist"):
                    return None
                ind = opens[tuple([getattr(attrs, n) for n in names])]
        else:
            ind = opens[()]
        if ind >= 0 and refs and ev.patient_ref is not UNSET:
            text = ev.patient_ref
    elif how == _ASSESSED:
        flag = attrs.profession in LICENSED_PROFESSIONS
    elif how == _PAUSE:
        ind = NO_INDICATOR if attrs.indicator is UNSET else ORDER[attrs.indicator]
        flag = attrs.reason == "patient_choice"
    elif how == _RESUME:
        if attrs is not UNSET and attrs.indicator is not UNSET:
            ind = ORDER[attrs.indicator]
    elif how == _TRANSFER:
        text = attrs.to_unit_id
        if text.isspace() or text == REGION_UNIT:
            return None
    if not raw.isascii() and not _text_safe(raw, ev):
        return None
    ts = ev.occurred_at
    if not MIN_YEAR <= ts.year <= MAX_YEAR:
        return None
    # µs since the epoch (models.calendar.to_micros, inlined: this runs once per line);
    # msgspec gives fixed-offset zones, whose offset is looked up once per zone
    tz = ts.tzinfo
    offset = _UTC_OFFSET_US.get(tz)
    if offset is None:
        utc_offset = ts.utcoffset()
        if type(tz) is not timezone or utc_offset is None:  # not what msgspec gives
            return None
        if len(_UTC_OFFSET_US) >= 4096:
            _UTC_OFFSET_US.clear()
        offset = _UTC_OFFSET_US[tz] = utc_offset // _ONE_US
    micros = (((ts.toordinal() - _EPOCH_ORDINAL) * 86_400 + ts.hour * 3_600 + ts.minute * 60
               + ts.second) * 1_000_000 + ts.microsecond - offset)
    return case_id, etype, _new_fact(
        Fact, (micros, rank, ev.event_id, intern(unit), ind, int(flag), text))  # units shared
