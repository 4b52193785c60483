"""The fast validation path of models.events gives exactly what the full schema gives.

`parse_event` validates with a schema stripped of the Python id validators and runs their
checks in one go (`_clean`), falling back to the full schema on any doubt. Whatever a line
holds, the outcome must be the full schema's: the same event, or the same first error.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models import events

# the characters the id checks care about: digits (also non-ASCII ones), separators,
# whitespace, NUL, and a few plain letters
_ID_CHARS = st.sampled_from([*"0123456789-+ \t\x00abcå٣", "ALL"])
_IDS = st.one_of(
    st.lists(_ID_CHARS, max_size=16).map("".join),
    st.sampled_from(["ALL", " ", "121212-1212", "19121212+1212", "ev-1-3694187",
                     "p-6e940fba", "1212121212", "x121212-12120", "٣٣٣٣٣٣٣٣٣٣"]),
)
_TYPES = st.sampled_from(["contact.completed", "case.transferred", "visit.completed"])


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    etype = draw(_TYPES)
    event: dict[str, Any] = {
        "event_id": draw(_IDS), "type": etype, "case_id": draw(_IDS),
        "occurred_at": "2024-03-04T09:00:00+01:00", "unit_id": draw(_IDS),
    }
    if draw(st.booleans()):
        event["patient_ref"] = draw(_IDS)
    if etype == "case.transferred":
        event["attributes"] = {"to_unit_id": draw(_IDS), "note": draw(_IDS)}
    elif draw(st.booleans()):
        event["attributes"] = {"note": draw(_IDS)}
    # raw UTF-8, or every non-ASCII character and control escaped, or digits escaped
    encoding = draw(st.sampled_from(["raw", "ascii", "escaped digits"]))
    if encoding == "raw":
        return orjson.dumps(event)
    text = json.dumps(event, ensure_ascii=True)
    if encoding == "escaped digits":
        text = text.replace("1", "\\u0031")
    return text.encode()


def _outcome(validate: Any, raw: bytes) -> Any:
    try:
        return validate(raw)
    except ValidationError as exc:
        return exc.errors(include_url=False)[0]


def test_the_fast_path_is_on() -> None:
    assert events._LEAN is not None


@settings(max_examples=600)
@given(_line())
def test_fast_path_agrees_with_the_full_schema(raw: bytes) -> None:
    assert _outcome(events._validate, raw) == _outcome(events._ADAPTER.validate_json, raw)


def test_fast_path_agrees_on_known_cases() -> None:
    base = {"event_id": "e1", "type": "contact.completed", "case_id": "c1",
            "occurred_at": "2024-03-04T09:00:00+01:00", "unit_id": "u1"}
    for field in ("event_id", "case_id", "unit_id", "patient_ref"):
        for value in ("121212-1212", "ALL", "  ", "a\x00b", "ev-1-3694187", "19121212+1212"):
            raw = orjson.dumps({**base, field: value})
            assert _outcome(events._validate, raw) == _outcome(
                events._ADAPTER.validate_json, raw
            ), (field, value)
    for stamp in (1709539200, "1709539200", "2024-03-04", "2024-03-04T09:00:00", None):
        raw = orjson.dumps({**base, "occurred_at": stamp})
        assert _outcome(events._validate, raw) == _outcome(
            events._ADAPTER.validate_json, raw), stamp
