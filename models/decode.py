"""The typed decoder of the hot path: a valid line straight from bytes to its fact.

msgspec decodes the line into Structs (a union tagged by `type`) in one pass of compiled
code, with the contract's lengths and literals checked on the way; what the id checks and
the timestamp's precision look for is searched in the raw bytes first (`_doubtful`). It only
ever *accepts*: a line it refuses, or one it cannot vouch for, goes to `models.events`
(pydantic), which decides and words the rejection. So every accepted line must be one the
full schema accepts, with the same fact; tests/models/test_decode.py holds the two to that.
"""

from __future__ import annotations

from datetime import datetime
from sys import intern
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from models.calendar import to_micros
from models.clocks import Fact, fact_of
from models.events import EVENT_TYPES, MAX_YEAR, MIN_YEAR, PERSONNUMMER
from models.indicators import INDICATOR_IDS, REGION_UNIT

# The id checks (`events._not_personnummer`) and the timestamp, looked for in the raw bytes
# at once, digits folded to 0: a run of digits shaped like a personnummer (what
# `events._SAFE_ID` lets through has none), more than six digits of a second (msgspec
# rounds them, the full schema truncates), and a backslash (an escape can hide digits or a
# NUL). Stricter than the contract: such a line, even with the run in a free attribute,
# takes the full path. Non-ASCII digits are looked for in the ids themselves (`_text_safe`).
_FOLD = bytes.maketrans(b"123456789", b"000000000")


def _doubtful(raw: bytes) -> bool:
    folded = raw.translate(_FOLD)
    return (b"000000" in folded and (
        b"0000000000" in folded or b"000000-0" in folded or b"000000+0" in folded
        or b".0000000" in folded)) or b"\\" in raw


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
_NO_ATTRS: dict[str, Any] = {}


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
    # what the types leave out: blank ids and the reserved unit (as in events._clean)
    if (ev.event_id.isspace() or ev.case_id.isspace() or ev.unit_id.isspace()
            or ev.unit_id == REGION_UNIT):
        return None
    attrs = ev.attributes
    etype = _TAGS[type(ev)]
    if etype == "case.transferred":
        to_unit = attrs.to_unit_id
        if to_unit.isspace() or to_unit == REGION_UNIT:
            return None
    elif (etype == "decision.made" and attrs.pathway == "specialist"
          and attrs.kind == "investigation"):
        return None
    if not raw.isascii() and not _text_safe(raw, ev):
        return None
    occurred = ev.occurred_at
    if not MIN_YEAR <= occurred.year <= MAX_YEAR:
        return None
    patient_ref = ev.patient_ref
    return ev.case_id, etype, fact_of(
        etype, to_micros(occurred), ev.event_id, intern(ev.unit_id),  # a few units: shared
        None if patient_ref is UNSET or not refs else patient_ref,
        _NO_ATTRS if attrs is UNSET else msgspec.structs.asdict(attrs),
    )
