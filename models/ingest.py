"""One ingest step for every runtime: a raw line in, a fact of a case or a dead letter out.

`report`, the embedded replay and the streaming worker all read events through `ingest`,
so what is rejected, and why, is decided in one place. Pure: the caller says where the
line came from (file:line or topic/partition/offset).

A line goes through the typed decoder (models.decode) first; only a line it does not
accept is validated by the full schema, which gives the reason and the message.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from zlib import crc32

from models.clocks import Fact, to_fact
from models.deadletter import DeadLetter
from models.decode import decode_fact
from models.events import Rejection, parse_event


class Ingested(NamedTuple):
    case_id: str
    type: str  # the event type, for the processed-by-type counters
    fact: Fact


_new = tuple.__new__  # skips the generated NamedTuple constructor: this runs per event


def ingest(raw: bytes, source: str, line: int | None = None, *,
           refs: bool = True) -> Ingested | DeadLetter:
    """Validate one line: the fact and its case, or the dead letter saying why not. The
    letter's source is `source`, or `source:line` with a line number (only a rejected line
    pays for that name). `refs=False`: facts without the patient reference (a caller that
    keeps no clock views; see `decode_fact`)."""
    fast = decode_fact(raw, refs)
    if fast is not None:
        return _new(Ingested, fast)
    return by_schema(raw, source, line)


def by_schema(raw: bytes, source: str, line: int | None = None) -> Ingested | DeadLetter:
    """`ingest`'s second step, for a line the typed decoder left to the full schema: it
    accepts or gives the reason and the message."""
    event = parse_event(raw)
    if isinstance(event, Rejection):
        where = source if line is None else f"{source}:{line}"
        return DeadLetter.of(where, event.reason, event.message, raw)
    return Ingested(event["case_id"], event["type"], to_fact(event))


# The case id of a plain line (no escapes, one "case_id" key) read without decoding it:
# compact JSON by two finds, other spacing by a pattern.
_KEY = b'"case_id"'
_COMPACT = b'"case_id":"'
_CASE_ID = re.compile(rb'"case_id"\s*:\s*"([^"\\]*)"')


def shard_of(raw: bytes, shards: int) -> int:
    """Which of `shards` parts a line goes to: every line of a case to the same part (by the
    case id the contract reads), so the parts can be evaluated apart and their counters
    summed. A line that is no event goes to some part, always the same one."""
    if b"\\" not in raw and raw.count(_KEY) == 1:
        at = raw.find(_COMPACT)
        if at >= 0:
            start = at + len(_COMPACT)
            return crc32(raw[start:raw.find(b'"', start)]) % shards
        found = _CASE_ID.search(raw)
        if found is not None:
            return crc32(found[1]) % shards
    event = parse_event(raw)  # a line written otherwise: the full schema reads the id
    if isinstance(event, Rejection):
        return crc32(raw) % shards
    return crc32(event["case_id"].encode("utf-8", "surrogatepass")) % shards
