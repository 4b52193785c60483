"""The test broker's translator rewrites a Fetch's wait like Kafka would behave (no broker)."""

from __future__ import annotations

import pytest

from tests.support.mock_broker import (
    FETCH_MAX_WAIT_CAP_MS,
    Reader,
    cap_fetch_wait,
    i16,
    i32,
    parse_header,
    string,
)

REST = i32(1) + i32(52_428_800) + b"\x01\x02\x03"  # min bytes, max bytes, then the topics


def fetch(version: int, max_wait_ms: int) -> bytes:
    header = i16(1) + i16(version) + i32(7) + string("client")
    if version >= 12:
        header += b"\x01\x00\x02\xab\xcd"  # one tagged field (tag 0, two bytes): skipped
    replica = i32(-1) if version < 15 else b""
    return header + replica + i32(max_wait_ms) + REST


def max_wait(payload: bytes, version: int) -> tuple[int, bytes]:
    header = parse_header(payload)
    reader = Reader(payload, header.body_offset)
    if version >= 12:
        reader.skip_tagged_fields()
    if version < 15:
        reader.int32()
    return reader.int32(), payload[reader.pos:]


@pytest.mark.parametrize("version", [4, 11, 12, 15])
def test_a_long_fetch_wait_is_capped(version: int) -> None:
    payload = fetch(version, 1500)
    capped = cap_fetch_wait(payload, parse_header(payload))
    assert len(capped) == len(payload)
    assert max_wait(capped, version) == (FETCH_MAX_WAIT_CAP_MS, REST)


def test_a_short_fetch_wait_is_kept() -> None:
    payload = fetch(4, 5)
    assert cap_fetch_wait(payload, parse_header(payload)) == payload
