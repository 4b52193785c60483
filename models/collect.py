"""Cases gathered whole, then evaluated once each: the one-pass report's compact state.

A report sees every event of a case before it counts anything, so it needs none of the
engine's per-batch bookkeeping (models/engine.py): per case only its facts, packed into one
`bytes` in the order they came, with only what `evaluate(views=False)` reads (no patient
reference; units as numbers into a table). A year stays in memory until the end, and a
fact as objects costs ≈ 190 bytes (tuple, timestamp int, event id string), packed ≈ 30.
A repeated event id is dropped when its case is evaluated (the first to arrive stands, as
in `Engine.add`).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from models.clocks import R_TRANSFER, Fact, Rules, evaluate
from models.measures import Key

_FLUSH = 1 << 16  # keys gathered before they are counted


@dataclass
class Counted:
    """What the evaluation of every case gave."""

    counts: Counter[Key] = field(default_factory=Counter)
    duplicates: int = 0
    newest_us: int | None = None
    anomalies: list[tuple[str, int, Fact]] = field(default_factory=list)  # case, reason, fact


# A packed fact: ts, rank, ind, flag, unit (a number into the strings), text (0: none),
# the event id's length in bytes; then the event id (UTF-8).
_HEAD = struct.Struct("<qBbBIIH")
_HEAD_SIZE = _HEAD.size
_new_fact = tuple.__new__


class CaseFacts:
    """The facts of many cases, as they came."""

    __slots__ = ("_numbers", "_strings", "cases")

    def __init__(self) -> None:
        self.cases: dict[str, bytes] = {}
        self._strings: list[str | None] = [None]  # units and transfer targets; 0: none
        self._numbers: dict[str, int] = {}

    def _number(self, text: str) -> int:
        found = self._numbers.get(text)
        if found is None:
            found = self._numbers[text] = len(self._strings)
            self._strings.append(text)
        return found

    def add(self, case_id: str, fact: Fact) -> None:
        ts, rank, event_id, unit, ind, flag, text = fact
        eid = event_id.encode("utf-8", "surrogatepass")
        number = self._numbers.get(unit)
        packed = _HEAD.pack(
            ts, rank, ind, flag, self._number(unit) if number is None else number,
            self._number(text) if text is not None and rank == R_TRANSFER else 0, len(eid),
        ) + eid
        cases = self.cases
        got = cases.get(case_id)
        cases[case_id] = packed if got is None else got + packed

    def _unpacked(self, blob: bytes) -> tuple[list[Fact], int]:
        """A case's facts in the order they came, a repeated event id dropped; and how
        many were dropped."""
        strings = self._strings
        seen: dict[str, Fact] = {}
        at, end, dropped = 0, len(blob), 0
        while at < end:
            ts, rank, ind, flag, unit, text, size = _HEAD.unpack_from(blob, at)
            at += _HEAD_SIZE + size
            event_id = blob[at - size:at].decode("utf-8", "surrogatepass")
            if event_id in seen:
                dropped += 1
            else:
                seen[event_id] = _new_fact(
                    Fact, (ts, rank, event_id, strings[unit], ind, flag, strings[text]))
        return list(seen.values()), dropped

    def evaluate(self, rules: Rules) -> Counted:
        """Every case evaluated once, its facts released as it goes."""
        out = Counted()
        keys: list[Key] = []
        newest = -1 << 62
        cases = self.cases
        while cases:
            case_id, blob = cases.popitem()
            facts, dropped = self._unpacked(blob)
            out.duplicates += dropped
            if len(facts) > 1:
                facts.sort()
            outcome = evaluate(facts, rules, views=False)
            keys += outcome.keys
            if facts[-1].ts > newest:
                newest = facts[-1].ts
            for reason, fact in outcome.anomalies:
                out.anomalies.append((case_id, reason, fact))
            if len(keys) > _FLUSH:
                out.counts.update(keys)
                keys.clear()
        out.counts.update(keys)
        if newest > -1 << 62:
            out.newest_us = newest
        return out
