"""Event contract v1 (SPEC §2): validation of raw lines into typed events.

Events are pydantic TypedDicts in a union discriminated by `type`: validating JSON bytes
through one `TypeAdapter` is about as fast as `json.loads`, which leaves the hot path room
for the rules. Every rejection carries a stable machine-readable reason and a one-line
message naming the field.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic_core import PydanticCustomError, SchemaValidator, core_schema
from typing_extensions import TypedDict

from models.indicators import INDICATOR_IDS, REGION_UNIT

# 10 or 12 digits, optionally with - or + before the last four (YYMMDD-NNNN, YYYYMMDDNNNN …)
PERSONNUMMER = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)")


# A JSON escape (\u0031 is "1", a surrogate pair for digits beyond the BMP) must not hide
# an identity number from the mask: escaped digits and separators are put back first.
_ESCAPE = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})", re.I)


def _unescape_digit(match: re.Match[str]) -> str:
    if match[3] is not None:
        char = chr(int(match[3], 16))
    else:
        char = chr(0x10000 + ((int(match[1], 16) - 0xD800) << 10) + int(match[2], 16) - 0xDC00)
    return char if char.isdecimal() or char in "+-" else match[0]


# For masking raw text: an escape may also stand right before the digits ("\u00e5121212-1212"
# is "å121212-1212"); its last hex digit is no digit of the value, so it is a boundary too.
_MASK = re.compile(r"(?:(?<!\d)|(?<=\\u[0-9a-fA-F]{4}))(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)")


def mask_personnummer(text: str) -> str:
    """Text fit to store: every personnummer-shaped run of digits masked (also one written
    with JSON escapes), and no NUL, which PostgreSQL text cannot hold."""
    if "\\u" in text:
        text = _ESCAPE.sub(_unescape_digit, text)
    return _MASK.sub("<masked>", text).replace("\x00", "\ufffd")


def _not_personnummer(value: str) -> str:
    if PERSONNUMMER.search(value):
        raise PydanticCustomError("personnummer", "looks like a personal identity number")
    if "\x00" in value:  # these values are stored, and PostgreSQL text cannot hold NUL
        raise PydanticCustomError("nul", "contains a NUL character")
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


class _TextFirst:
    """`occurred_at` is text that starts with a calendar date, then an aware datetime.

    pydantic alone would read a number (or a string of digits) as Unix time; the contract
    is an RFC 3339 timestamp with offset. Both steps run in pydantic's core (no Python call
    per event), and everything after the date is left to its datetime parser, so a naive
    or malformed timestamp is reported as before.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.chain_schema(
            [core_schema.str_schema(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"), handler(source)]
        )


Timestamp = Annotated[AwareDatetime, _TextFirst()]


class _Base(TypedDict):
    event_id: Id
    case_id: Id
    occurred_at: Timestamp
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

# The fast path. Most of the time of validating a valid line went to the Python validators
# of the id fields, called back from pydantic's core one by one. `_LEAN` is the same schema
# without them: the personnummer / NUL check becomes a pattern the core matches (`_SAFE_ID`),
# and `_clean` does the blank and reserved checks on what it returns. A line either of them
# refuses is validated again by `_ADAPTER`, so every rejection (and which of several errors
# is reported) is exactly what `_ADAPTER` says.
#
# `_SAFE_ID` matches only strings `_not_personnummer` lets through: no NUL, no run of ten or
# more digits, and no run of six or more followed by - or + and a digit (every PERSONNUMMER
# match has one of those). It is stricter than needed (an id with an 11-digit serial takes
# the full path), never looser. Rust's `\d`, like Python's, is any Unicode decimal digit.
_SAFE_ID = (
    r"^[^\d\x00]*(?:\d{1,5}[^\d\x00]+|\d{6,9}(?:[^\d\x00+\-][^\d\x00]*|[+\-](?:[^\d\x00]+|$)))*"
    r"(?:\d{1,9})?$"
)
_ID_CHECKS = frozenset({_not_blank, _not_personnummer})
_UNIT_CHECKS = frozenset({_not_blank, _not_reserved, _not_personnummer})
_Checks = dict[tuple[str | None, tuple[str, ...] | None], frozenset[object]]


def _checks_clean_covers() -> _Checks:
    """Per event type and field path: the validators that `_clean` stands in for."""
    out: _Checks = {}
    for tag in EVENT_TYPES:
        out[(tag, ("event_id",))] = _ID_CHECKS
        out[(tag, ("case_id",))] = _ID_CHECKS
        out[(tag, ("unit_id",))] = _UNIT_CHECKS
        out[(tag, ("patient_ref",))] = frozenset({_not_personnummer})
    out[("case.transferred", ("attributes", "to_unit_id"))] = _UNIT_CHECKS
    return out


def _strip(
    schema: Any, found: dict[tuple[str | None, tuple[str, ...] | None], set[object]],
    tag: str | None = None, path: tuple[str, ...] | None = (),
) -> None:
    """Remove this module's after-validators from a core schema (in place), noting each
    one's event type and field path (None where a shared definition hides them)."""
    if isinstance(schema, list):
        for item in schema:
            _strip(item, found, tag, path)
        return
    if not isinstance(schema, dict):
        return
    stripped = found.setdefault((tag, path), set())
    while schema.get("type") == "function-after" and getattr(
        schema["function"].get("function"), "__module__", None
    ) == __name__:
        stripped.add(schema["function"]["function"])
        inner = schema["schema"]
        schema.clear()
        schema.update(inner)
    if not stripped:
        del found[(tag, path)]
    elif _not_personnummer in stripped and schema.get("type") == "str":
        schema["pattern"] = _SAFE_ID
    kind = schema.get("type")
    if kind == "tagged-union":
        for choice_tag, choice in schema["choices"].items():
            _strip(choice, found, str(choice_tag), ())
    elif kind == "typed-dict":
        for name, fld in schema["fields"].items():
            _strip(fld["schema"], found, tag, None if path is None else (*path, name))
    elif kind == "definitions":
        _strip(schema["schema"], found, tag, path)
        _strip(schema["definitions"], found, None, None)
    else:
        for key, value in schema.items():
            if key not in ("metadata", "serialization", "function", "ref"):
                _strip(value, found, tag, path)


def _lean_validator() -> SchemaValidator | None:
    """`_ADAPTER` without this module's validators, if `_clean` covers exactly those."""
    schema = copy.deepcopy(_ADAPTER.core_schema)
    found: dict[tuple[str | None, tuple[str, ...] | None], set[object]] = {}
    _strip(schema, found)
    if {k: frozenset(v) for k, v in found.items()} != _checks_clean_covers():
        return None  # the schema changed: every line takes the full path until _clean follows
    return SchemaValidator(schema)


def _clean(event: Any) -> bool:
    """True if the id fields pass the checks `_LEAN` leaves out (see `_checks_clean_covers`):
    not blank (all whitespace; min_length is checked already) and not the reserved unit."""
    if (event["event_id"].isspace() or event["case_id"].isspace()
            or event["unit_id"].isspace() or event["unit_id"] == REGION_UNIT):
        return False
    if event["type"] == "case.transferred":
        to_unit = event["attributes"]["to_unit_id"]
        return not (to_unit.isspace() or to_unit == REGION_UNIT)
    return True


_LEAN = _lean_validator()


def _validate(raw: bytes | str) -> Event:
    if _LEAN is not None:
        try:
            event: Event = _LEAN.validate_json(raw)
        except ValueError:  # ValidationError and decoding errors: the full path says which
            pass
        else:
            if _clean(event):
                return event
    return _ADAPTER.validate_json(raw)


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
    "nul": "invalid_value",
    "reserved": "reserved_unit",
    "literal_error": "invalid_value",
    "string_type": "wrong_type",
}
# Event times outside these years are data errors; near year 1 or 9999 the local dates and
# deadlines derived from them would overflow `date`.
MIN_YEAR, MAX_YEAR = 1970, 2199
# Reasons for valid events that do not fit their case (SPEC §2), and for repeated ids.
INCONSISTENT = "inconsistent"
ORPHAN = "orphan"
DUPLICATE = "duplicate"


RFC3339_ONLY = "must be an RFC 3339 timestamp with offset, e.g. \"2024-03-04T09:00:00+01:00\""


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
    if field == "occurred_at" and kind in ("string_type", "string_pattern_mismatch"):
        return Rejection("invalid_timestamp", f"field 'occurred_at': {RFC3339_ONLY}")
    if kind == "timezone_aware":
        return Rejection(reason, f"field '{field}': timestamp has no UTC offset")
    if kind == "personnummer":
        return Rejection(reason, f"field '{field}': looks like a personal identity number")
    return Rejection(reason, f"field '{field}': {err['msg'][:160]}")


def parse_event(raw: bytes | str) -> Event | Rejection:
    """Validate one line. Returns the event (occurred_at as an aware datetime) or why not."""
    try:
        event = _validate(raw)
    except ValidationError as exc:
        return _rejection(exc)
    except (UnicodeDecodeError, ValueError) as exc:
        return Rejection("invalid_encoding", f"not valid UTF-8 JSON: {exc}"[:200])
    if not MIN_YEAR <= event["occurred_at"].year <= MAX_YEAR:
        return Rejection(
            "invalid_timestamp", f"field 'occurred_at': year outside {MIN_YEAR}..{MAX_YEAR}"
        )
    if event["type"] == "decision.made":
        attrs = event["attributes"]
        if attrs["pathway"] == "specialist" and attrs["kind"] == "investigation":
            return Rejection(
                "invalid_value",
                "field 'attributes.kind': investigation is only defined for pathway 'bup'",
            )
    return event


