"""One ingest step for every runtime: a raw line in, a fact of a case or a dead letter out.

`report`, the embedded replay and the streaming worker all read events through `ingest`,
so what is rejected, and why, is decided in one place. Pure: the caller says where the
line came from (file:line or topic/partition/offset).

A line goes through the typed decoder (models.decode) first; only a line it does not
accept is validated by the full schema, which gives the reason and the message.
"""

from __future__ import annotations

from typing import NamedTuple

from models.clocks import Fact, to_fact
from models.deadletter import DeadLetter
from models.decode import decode_fact
from models.events import Rejection, parse_event


class Ingested(NamedTuple):
    case_id: str
    type: str  # the event type, for the processed-by-type counters
    fact: Fact


_new = tuple.__new__  # skips the generated NamedTuple constructor: this runs per event


def ingest(raw: bytes, source: str) -> Ingested | DeadLetter:
    """Validate one line: the fact and its case, or the dead letter saying why not."""
    fast = decode_fact(raw)
    if fast is not None:
        return _new(Ingested, fast)
    event = parse_event(raw)
    if isinstance(event, Rejection):
        return DeadLetter.of(source, event.reason, event.message, raw)
    return Ingested(event["case_id"], event["type"], to_fact(event))
