"""Bad input gets a stable reason and a one-line message naming the field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from models.events import Rejection, mask_personnummer, parse_event

GOOD: dict[str, Any] = {
    "event_id": "e1", "type": "referral.issued", "case_id": "c1",
    "occurred_at": "2024-03-04T09:00:00+01:00", "unit_id": "u1",
    "patient_ref": "p-42", "attributes": {"pathway": "specialist", "sex": "F"},
}


def with_(**changes: Any) -> bytes:
    event = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in event.items() if v is not ...})


def test_valid_event_keeps_unknown_attributes() -> None:
    parsed = parse_event(with_(extra_top_level=1))
    assert not isinstance(parsed, Rejection)
    assert parsed["attributes"]["sex"] == "F"
    assert parsed["occurred_at"].utcoffset() is not None


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"{not json", "invalid_json", "JSON"),
        (b"\xff\xfe\x00", "invalid_json", "JSON"),
        (b"[1, 2]", "not_an_object", "event"),
        (with_(event_id=...), "missing_field", "'event_id'"),
        (with_(case_id=""), "blank_field", "'case_id'"),
        (with_(unit_id="   "), "blank_field", "'unit_id'"),
        (with_(unit_id="ALL"), "reserved_unit", "'unit_id'"),
        (with_(event_id="x" * 129), "too_long", "'event_id'"),
        (with_(occurred_at="2024-03-04T09:00:00"), "naive_timestamp", "'occurred_at'"),
        (with_(occurred_at="yesterday"), "invalid_timestamp", "'occurred_at'"),
        (with_(type="referral.sent"), "unknown_type", "'type'"),
        (with_(type=...), "missing_field", "'type'"),
        (with_(attributes={"pathway": "dental"}), "invalid_value", "'attributes.pathway'"),
        (with_(attributes=...), "missing_field", "'attributes'"),
        (with_(patient_ref="19121212-1212"), "personnummer", "'patient_ref'"),
        (with_(patient_ref="1212121212"), "personnummer", "'patient_ref'"),
        (with_(patient_ref="121212+1212"), "personnummer", "'patient_ref'"),
        (with_(case_id="201212121212"), "personnummer", "'case_id'"),
        (with_(event_id=17), "wrong_type", "'event_id'"),
        (
            with_(type="decision.made", attributes={"pathway": "specialist",
                                                     "kind": "investigation"}),
            "invalid_value", "'attributes.kind'",
        ),
    ],
)
def test_rejections_name_reason_and_field(raw: bytes, reason: str, field: str) -> None:
    rejected = parse_event(raw)
    assert isinstance(rejected, Rejection)
    assert rejected.reason == reason
    assert field in rejected.message
    assert "\n" not in rejected.message


@pytest.mark.parametrize(
    "stamp", [1709539200, 1709539200.5, "1709539200", None, True, "2024-W10-1T09:00:00Z"]
)
def test_occurred_at_must_be_rfc3339_text(stamp: Any) -> None:
    """The contract is an RFC 3339 string with offset: a number is not read as Unix time."""
    rejected = parse_event(with_(occurred_at=stamp))
    assert isinstance(rejected, Rejection)
    assert rejected.reason == "invalid_timestamp"
    assert rejected.message.startswith("field 'occurred_at': must be an RFC 3339 timestamp")


def test_rfc3339_with_offset_or_z_is_accepted() -> None:
    for stamp in ("2024-03-04T09:00:00Z", "2024-03-04T09:00:00.123+01:00",
                  "2024-03-04 09:00:00+01:00"):
        assert not isinstance(parse_event(with_(occurred_at=stamp)), Rejection), stamp


def test_patient_ref_that_is_not_a_personnummer_is_fine() -> None:
    for ref in ("p-1a2b3c", "123456789", "1234567890123"):
        assert not isinstance(parse_event(with_(patient_ref=ref)), Rejection), ref


def test_masking_removes_every_personnummer_shape() -> None:
    text = 'x 19121212-1212 y 121212+1212 z 1212121212 w 201212121212 keep 123'
    masked = mask_personnummer(text)
    assert not any(d in masked for d in ("1212121212", "-1212", "+1212"))
    assert masked.endswith("keep 123")
