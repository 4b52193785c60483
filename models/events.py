"""Event contract v1 (SPEC §2): validation of raw lines into typed events.

Events are pydantic TypedDicts in a union discriminated by `type`: validating JSON bytes
through one `TypeAdapter` is about as fast as `json.loads`, which leaves the hot path room
for the rules. Every rejection carries a stable machine-readable reason and a one-line
message naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, NotRequired

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from models.indicators import INDICATOR_IDS, REGION_UNIT

# 10 or 12 digits, optionally with - or + before the last four (YYMMDD-NNNN, YYYYMMDDNNNN …)
PERSONNUMMER = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)")


def mask_personnummer(text: str) -> str:
    """Replace every personnummer-shaped run of digits: such values are never stored."""
    return PERSONNUMMER.sub("<masked>", text)


def _not_personnummer(value: str) -> str:
    if PERSONNUMMER.search(value):
        raise PydanticCustomError("personnummer", "looks like a personal identity number")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "is blank")
    return value


def _not_reserved(value: str) -> str:
    if value == REGION_UNIT:
        raise PydanticCustomError("reserved", f"'{REGION_UNIT}' is reserved for region-wide rows")
    return value


# Ids end up in the API and metrics, so they must not carry identity either.
Id = Annotated[
    str,
    Field(min_length=1, max_length=128),
    AfterValidator(_not_blank),
    AfterValidator(_not_personnummer),
]
UnitId = Annotated[
    str,
    Field(min_length=1, max_length=64),
    AfterValidator(_not_blank),
    AfterValidator(_not_reserved),
    AfterValidator(_not_personnummer),
]
PatientRef = Annotated[str, Field(max_length=128), AfterValidator(_not_personnummer)]
IndicatorId = Literal[INDICATOR_IDS]  # type: ignore[valid-type]
Pathway = Literal["specialist", "bup"]


@with_config(ConfigDict(extra="allow"))
class _Attrs(TypedDict):
    """Free attributes: extra keys (sex, age_band, …) are kept for labels."""


class ContactAttrs(_Attrs):
    channel: Literal["phone", "digital", "visit"]


class AssessmentAttrs(_Attrs):
    profession: Annotated[str, Field(min_length=1, max_length=64)]


class ReferralAttrs(_Attrs):
    pathway: Pathway


class DecisionAttrs(_Attrs):
    pathway: Pathway
    kind: Literal["treatment", "investigation"]


class PauseAttrs(_Attrs):
    reason: Literal["patient_choice", "medical"]
    indicator: NotRequired[IndicatorId]


class ResumeAttrs(_Attrs):
    indicator: NotRequired[IndicatorId]


class TransferAttrs(_Attrs):
    to_unit_id: UnitId


class _Base(TypedDict):
    event_id: Id
    case_id: Id
    occurred_at: AwareDatetime
    unit_id: UnitId
    patient_ref: NotRequired[PatientRef]


class _Plain(_Base):
    attributes: NotRequired[_Attrs]


class ContactRequested(_Base):
    type: Literal["contact.requested"]
    attributes: ContactAttrs


class ContactCompleted(_Plain):
    type: Literal["contact.completed"]


class AssessmentNeeded(_Plain):
    type: Literal["assessment.needed"]


class AssessmentCompleted(_Base):
    type: Literal["assessment.completed"]
    attributes: AssessmentAttrs


class ReferralIssued(_Base):
    type: Literal["referral.issued"]
    attributes: ReferralAttrs


class VisitCompleted(_Plain):
    type: Literal["visit.completed"]


class DecisionMade(_Base):
    type: Literal["decision.made"]
    attributes: DecisionAttrs


class TreatmentStarted(_Plain):
    type: Literal["treatment.started"]


class InvestigationStarted(_Plain):
    type: Literal["investigation.started"]


class WaitPaused(_Base):
    type: Literal["wait.paused"]
    attributes: PauseAttrs


class WaitResumed(_Base):
    type: Literal["wait.resumed"]
    attributes: NotRequired[ResumeAttrs]


class CaseTransferred(_Base):
    type: Literal["case.transferred"]
    attributes: TransferAttrs


class CaseCancelled(_Plain):
    type: Literal["case.cancelled"]


class CareExternal(_Plain):
    type: Literal["care.external"]


Event = (
    ContactRequested | ContactCompleted | AssessmentNeeded | AssessmentCompleted
    | ReferralIssued | VisitCompleted | DecisionMade | TreatmentStarted | InvestigationStarted
    | WaitPaused | WaitResumed | CaseTransferred | CaseCancelled | CareExternal
)

# The order of this table is the tie-break order of SPEC §3 (same instant: earlier row first).
EVENT_TYPES: tuple[str, ...] = (
    "contact.requested",
    "contact.completed",
    "assessment.needed",
    "assessment.completed",
    "referral.issued",
    "visit.completed",
    "decision.made",
    "treatment.started",
    "investigation.started",
    "wait.paused",
    "wait.resumed",
    "case.transferred",
    "case.cancelled",
    "care.external",
)
TYPE_RANK: dict[str, int] = {t: n for n, t in enumerate(EVENT_TYPES)}

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])

# pydantic error type -> our stable reason code
_REASONS: dict[str, str] = {
    "json_invalid": "invalid_json",
    "json_type": "invalid_json",
    "model_type": "not_an_object",
    "dict_type": "not_an_object",
    "missing": "missing_field",
    "union_tag_not_found": "missing_field",
    "union_tag_invalid": "unknown_type",
    "blank": "blank_field",
    "string_too_short": "blank_field",
    "string_too_long": "too_long",
    "timezone_aware": "naive_timestamp",
    "datetime_parsing": "invalid_timestamp",
    "datetime_from_date_parsing": "invalid_timestamp",
    "datetime_type": "invalid_timestamp",
    "datetime_object_invalid": "invalid_timestamp",
    "personnummer": "personnummer",
    "reserved": "reserved_unit",
    "literal_error": "invalid_value",
    "string_type": "wrong_type",
}
# Reasons for valid events that do not fit their case (SPEC §2), and for repeated ids.
INCONSISTENT = "inconsistent"
ORPHAN = "orphan"
DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    message: str


def _rejection(exc: ValidationError) -> Rejection:
    err = exc.errors(include_url=False, include_input=False)[0]
    kind = err["type"]
    # the discriminated union puts the tag first in the location: drop it
    loc = [str(p) for p in err["loc"]]
    if len(loc) > 1 and loc[0] in TYPE_RANK:
        loc = loc[1:]
    field = ".".join(loc) or "event"
    reason = _REASONS.get(kind, "invalid_value")
    if kind in ("json_invalid", "json_type"):
        return Rejection(reason, f"not valid JSON: {err['msg']}")
    if kind == "union_tag_invalid":
        return Rejection(reason, "field 'type': unknown event type")
    if kind == "union_tag_not_found":
        return Rejection(reason, "field 'type': required")
    if kind == "missing":
        return Rejection(reason, f"field '{field}': required")
    if kind == "timezone_aware":
        return Rejection(reason, f"field '{field}': timestamp has no UTC offset")
    if kind == "personnummer":
        return Rejection(reason, f"field '{field}': looks like a personal identity number")
    return Rejection(reason, f"field '{field}': {err['msg'][:160]}")


def parse_event(raw: bytes | str) -> Event | Rejection:
    """Validate one line. Returns the event (occurred_at as an aware datetime) or why not."""
    try:
        event = _ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return _rejection(exc)
    except (UnicodeDecodeError, ValueError) as exc:
        return Rejection("invalid_encoding", f"not valid UTF-8 JSON: {exc}"[:200])
    if event["type"] == "decision.made":
        attrs = event["attributes"]
        if attrs["pathway"] == "specialist" and attrs["kind"] == "investigation":
            return Rejection(
                "invalid_value",
                "field 'attributes.kind': investigation is only defined for pathway 'bup'",
            )
    return event


