"""The typed decoder (msgspec) and the full schema (pydantic) decide every line alike.

`ingest` tries models.decode first and asks models.events only about lines the decoder does
not accept. So: whatever the decoder accepts, the full schema accepts with the same fact,
and `ingest` gives the full schema's decision, reason and fact for every line.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from models.clocks import to_fact
from models.deadletter import DeadLetter
from models.decode import _doubtful, decode_fact
from models.events import EVENT_TYPES, Rejection, parse_event
from models.ingest import ingest

_IDS = st.one_of(
    st.sampled_from(["e1", "c-77", "u1", "ALL", " ", "", "121212-1212", "19121212+1212",
                     "ev-1-3694187", "1212121212", "a\x00b", "٣٣٣٣٣٣٣٣٣٣", "x" * 129,
                     "1234567\n", "u\u00e5"]),
    st.text(alphabet="0123456789-+ \nab\x00å٣", max_size=14),
)
_STAMPS = st.one_of(
    st.sampled_from([
        "2024-03-04T09:00:00+01:00", "2024-03-04T09:00:00Z", "2024-03-04T09:00:00.123456-05:30",
        "2024-03-04T09:00:00.1234567+01:00", "2024-03-04 09:00:00+01:00", "2024-03-04T09:00:00",
        "2024-03-04T09:00+01:00", "2024-02-30T09:00:00+01:00", "2024-03-04T24:00:00+01:00",
        "2024-03-04T09:00:60+01:00", "2024-03-04T09:00:00+24:00", "2024-03-04T09:00:00+23:59",
        "1969-12-31T23:00:00-01:00", "1970-01-01T00:30:00+01:00", "2199-12-31T23:59:59-02:00",
        "2200-01-01T00:00:00+00:00", "2024-03-04T09:00:00z", "2024-03-04t09:00:00Z",
        "2024-03-04T09:00:00+0100", "٢٠٢٤-03-04T09:00:00Z", "2024-03-04",
    ]),
    st.from_regex(r"\A20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
                  r"(\.[0-9]{1,7})?(Z|[+-][0-2][0-9]:[0-5][0-9])\Z"),
    st.integers(-(2**40), 2**40), st.none(),
)
_ATTR_VALUES = st.sampled_from([
    "phone", "digital", "visit", "specialist", "bup", "treatment", "investigation",
    "patient_choice", "medical", "samma_dag", "bup_utredning_30", "läkare", "psykolog", "",
    "x" * 65, "ALL", "u2", " ", "121212-1212", None, 3, ["a"], {"k": 1},
])
_ATTR_KEYS = st.sampled_from(
    ["channel", "profession", "pathway", "kind", "reason", "indicator", "to_unit_id", "sex"]
)
_ANY_JSON = st.sampled_from([None, 1, 1.5, "s", [], {}, True, {"a": [1, {"b": None}]}])


def _attributes(etype: str, draw: st.DrawFn) -> Any:
    """Valid attributes for the type, then perhaps some keys changed or added."""
    attrs: dict[str, Any] = {
        "contact.requested": {"channel": "phone"},
        "assessment.completed": {"profession": "läkare"},
        "referral.issued": {"pathway": "bup"},
        "decision.made": {"pathway": "bup", "kind": "investigation"},
        "wait.paused": {"reason": "medical", "indicator": "besok_90"},
        "wait.resumed": {"indicator": "besok_90"},
        "case.transferred": {"to_unit_id": "u2"},
    }.get(etype, {})
    for key, value in draw(st.dictionaries(_ATTR_KEYS, _ATTR_VALUES, max_size=2)).items():
        attrs[key] = value
    for key in draw(st.lists(_ATTR_KEYS, max_size=1)):
        attrs.pop(key, None)
    return draw(st.one_of(st.just(attrs), st.just(attrs), st.just(attrs), _ANY_JSON))


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    etype = draw(st.one_of(st.sampled_from(EVENT_TYPES), st.sampled_from(["x", 1, None])))
    event: dict[str, Any] = {
        "event_id": "e1", "type": etype, "case_id": "c1",
        "occurred_at": "2024-03-04T09:00:00+01:00", "unit_id": "u1",
        "patient_ref": "p-1", "attributes": _attributes(str(etype), draw),
    }
    for key in draw(st.lists(st.sampled_from([*event, "extra"]), max_size=3)):
        kind = draw(st.sampled_from(["id", "stamp", "drop", "json"]))
        if kind == "drop":
            event.pop(key, None)
        else:
            value = {"id": _IDS, "stamp": _STAMPS, "json": _ANY_JSON}[kind]
            event[key] = draw(value)
    encoding = draw(st.sampled_from(["raw", "raw", "ascii", "escaped digits", "bytes"]))
    if encoding == "raw":
        text = orjson.dumps(event).decode()
    else:
        text = json.dumps(event, ensure_ascii=True)
        if encoding == "escaped digits":
            text = text.replace("1", "\\u0031")
    raw = text.encode()
    if encoding == "bytes":  # a few damaged lines: repeated keys, stray bytes, bad JSON
        trick = draw(st.sampled_from([
            b', "unit_id": "ALL"}', b', "type": "care.external"}', b', "case_id": 5}',
            b'\xff"}', b"}", b"NaN}", b', "x": "\\ud800"}', b', "x": "\xc3"}',
            b', "event_id": "e\x00"}',
            b', "x": "\x01"}\n', b'}\x00', b', "case_id": "' + b"\xd9\xa3" * 10 + b'"}',
            b', "occurred_at": "2024-03-04T09:00:00.1234567Z"}',
        ]))
        raw = raw[:-1] + trick
    return raw


def _full(raw: bytes) -> Any:
    """The full schema's decision: the reason of a rejection, or case, type and fact."""
    event = parse_event(raw)
    if isinstance(event, Rejection):
        return event.reason
    return event["case_id"], event["type"], to_fact(event)


def _ingested(raw: bytes) -> Any:
    got = ingest(raw, "log:1")
    return got.reason if isinstance(got, DeadLetter) else tuple(got)


@settings(max_examples=1500, deadline=None)
@given(_line())
@example(b'{"event_id":"e1","type":"case.cancelled","case_id":"c1","unit_id":"u1",'
         b'"occurred_at":"2024-03-04T09:00:00+01:00","type":"x"}')
@example(b'{"event_id":"e1","type":"case.cancelled","case_id":"c1","unit_id":"u1",'
         b'"occurred_at":"2024-03-04T09:00:00+01:00","attributes":null}')
@example(b'{"a":' * 100_000)
@example(b'{"event_id":"e1","type":"case.cancelled","case_id":"c1","unit_id":"u1",'
         b'"occurred_at":"2024-03-04T09:00:00+01:00","x":' + b"[" * 250 + b"]" * 250 + b"}")
@example(b'{"event_id":"e1","type":"case.cancelled","case_id":"c1","unit_id":"u1",'
         b'"occurred_at":"2024-03-04T09:00:00+01:00","x":' + b"[" * 199 + b"]" * 199 + b"}")
def test_the_decoder_accepts_only_what_the_full_schema_accepts(raw: bytes) -> None:
    full = _full(raw)
    fast = decode_fact(raw)
    if fast is not None:
        assert fast == full
    assert _ingested(raw) == full


@given(st.sampled_from(EVENT_TYPES), st.sampled_from(["p-1", None]),
       st.sampled_from(["2024-03-04T09:00:00+01:00", "2024-10-27T02:30:00.5Z"]))
def test_the_decoder_takes_every_valid_event(etype: str, ref: str | None, stamp: str) -> None:
    attrs = {"contact.requested": {"channel": "digital"},
             "assessment.completed": {"profession": "sjuksköterska"},
             "referral.issued": {"pathway": "specialist"},
             "decision.made": {"pathway": "specialist", "kind": "treatment"},
             "wait.paused": {"reason": "patient_choice"},
             "case.transferred": {"to_unit_id": "u9"}}.get(etype, {"sex": "f"})
    event = {"event_id": "e1", "type": etype, "case_id": "c1", "occurred_at": stamp,
             "unit_id": "u1", "attributes": attrs}
    if ref is not None:
        event["patient_ref"] = ref
    raw = orjson.dumps(event)
    assert decode_fact(raw) == _full(raw)


@given(st.text(alphabet="0123456789.-+\\x", max_size=24).map(str.encode))
def test_the_raw_checks_find_exactly_the_digit_runs_they_look_for(raw: bytes) -> None:
    folded = raw.translate(bytes.maketrans(b"123456789", b"000000000"))
    expected = b"\\" in raw or any(
        shape in folded for shape in (b"0000000000", b"000000-0", b"000000+0", b".0000000"))
    assert _doubtful(raw) == expected
