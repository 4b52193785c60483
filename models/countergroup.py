"""Per-day counters of one indicator × unit × day, as the streaming worker keeps them (pure).

Deltas travel re-keyed by indicator × unit (`route_key`: one message per indicator × unit
per batch) and are kept per indicator × day × unit (`group_key`), in the partition they
arrived on; each is tagged with the source partition and offset of the event that caused
it. A group remembers the highest offset it has applied from each source partition and
skips anything at or below it: after a crash the events are processed again and their
deltas sent again, and this is what keeps every counter exact. (Deltas from one source
partition reach a group in offset order: one producer per partition, in order.)
The JSON form is the table's value and the changelog record the SQL sink reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from models.measures import Key

# one delta as sent: (source offset, measure, day, until, change)
Entry = tuple[int, int, int, int, int]
# one delta as a group keeps it: (source offset, measure, until, change)
GroupEntry = tuple[int, int, int, int]


def route_key(key: Key) -> bytes:
    """The key deltas travel under: indicator × unit, so a unit's counters stay together."""
    return f"{key[1]}|{key[2]}".encode()


def parse_route_key(raw: bytes) -> tuple[int, str]:
    ind, unit = raw.decode().split("|", 1)
    return int(ind), unit


def group_key(ind: int, day: int, unit: str) -> bytes:
    """The key of one day's counters (unit last: it may hold `|`)."""
    return f"{ind}|{day}|{unit}".encode()


def parse_group_key(raw: bytes) -> tuple[int, int, str]:
    ind, day, unit = raw.decode().split("|", 2)
    return int(ind), int(day), unit


@dataclass(slots=True)
class CounterGroup:
    partition: int  # its changelog partition
    counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (measure, until) -> n
    seen: dict[int, int] = field(default_factory=dict)  # source partition -> last offset

    def apply(self, source: int, entries: Iterable[GroupEntry]) -> list[tuple[int, int, int]]:
        """Apply the entries not seen yet; the (measure, until, change) actually applied."""
        last = self.seen.get(source, -1)
        applied: list[tuple[int, int, int]] = []
        for offset, measure, until, change in entries:
            if offset <= last:
                continue  # sent again after a restart: already counted
            self.counts[(measure, until)] = self.counts.get((measure, until), 0) + change
            applied.append((measure, until, change))
            self.seen[source] = offset
        return applied

    def items(self, raw_key: bytes) -> Iterator[tuple[Key, int]]:
        ind, day, unit = parse_group_key(raw_key)
        for (measure, until), n in self.counts.items():
            yield (measure, ind, unit, day, until), n

    def to_json(self) -> dict[str, Any]:
        # zeros are kept: the sink deletes the row of a counter back at zero
        return {
            "p": self.partition,
            "c": [[m, u, n] for (m, u), n in self.counts.items()],
            "s": {str(p): o for p, o in self.seen.items()},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CounterGroup:
        return cls(
            int(d["p"]),
            {(int(m), int(u)): int(n) for m, u, n in d["c"]},
            {int(p): int(o) for p, o in d["s"].items()},
        )
