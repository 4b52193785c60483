"""Per-day counters of one indicator × unit × day, as the streaming worker keeps them (pure).

Deltas travel re-keyed by indicator × unit (`route_key`: one message per indicator × unit
per batch) and are kept per indicator × day × unit (`group_key`), in the partition they
arrived on; each is tagged with the source partition and offset of the event that caused
it. A group remembers the highest offset it has applied from each source partition and
skips anything at or below it: after a crash the events are processed again and their
deltas sent again, and this is what keeps every counter exact. (Deltas from one source
partition reach a group in offset order: one producer per partition, in order.)
The JSON form is the table's value and the changelog record the SQL sink reads.

Days older than what any read needs are folded into one **checkpoint** per indicator × unit
(`checkpoint_key`, `CounterGroup.through`): the sums of their counters, dated on the last day
folded, with the highest offset applied per source partition. The "now" figures and every
period starting after that day sum the same from it; a late delta for a folded day is added
to it. The SQL sink keeps the per-day rows and ignores checkpoints (docs/live-view.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from models.measures import SPANS, WINDOWS, Key, window_first

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
    """(indicator, day, unit) of a day's counters; day -1 for a checkpoint."""
    ind, day, unit = raw.decode().split("|", 2)
    return int(ind), (-1 if day == _CHECKPOINT else int(day)), unit


_CHECKPOINT = "*"


def checkpoint_key(ind: int, unit: str) -> bytes:
    """The key of an indicator × unit's checkpoint (the folded days)."""
    return f"{ind}|{_CHECKPOINT}|{unit}".encode()


def is_checkpoint(raw: bytes) -> bool:
    return raw.split(b"|", 2)[1] == _CHECKPOINT.encode()


def fold_through(today: int, grace_days: int) -> int:
    """The last day that may be folded at `today`: before the longest window (what the live
    view needs to rebuild) less the grace period (months still changing)."""
    first = window_first(WINDOWS[-1], date.fromordinal(today)).toordinal()
    return first - 1 - grace_days


@dataclass(slots=True)
class CounterGroup:
    partition: int  # its changelog partition
    counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (measure, until) -> n
    seen: dict[int, int] = field(default_factory=dict)  # source partition -> last offset
    through: int | None = None  # a checkpoint: the last day folded into it

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
        if self.through is not None:
            day = self.through
        for (measure, until), n in self.counts.items():
            yield (measure, ind, unit, day, until), n

    def fold(self, day_group: CounterGroup, day: int) -> None:
        """Take a day's counters into this checkpoint (`through` at least `day`). A span
        that ended by then nets to zero in every figure still answered, so it goes."""
        through = self.through = max(self.through or day, day)
        for (measure, until), n in day_group.counts.items():
            self.counts[(measure, until)] = self.counts.get((measure, until), 0) + n
        for source, offset in day_group.seen.items():
            self.seen[source] = max(self.seen.get(source, -1), offset)
        self.counts = {(m, u): n for (m, u), n in self.counts.items()
                       if n and not (m in SPANS and 0 < u <= through)}

    def to_json(self) -> dict[str, Any]:
        # zeros are kept: the sink deletes the row of a counter back at zero
        return {
            "p": self.partition,
            "c": [[m, u, n] for (m, u), n in self.counts.items()],
            "s": {str(p): o for p, o in self.seen.items()},
            **({"t": self.through} if self.through is not None else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CounterGroup:
        return cls(
            int(d["p"]),
            {(int(m), int(u)): int(n) for m, u, n in d["c"]},
            {int(p): int(o) for p, o in d["s"].items()},
            int(d["t"]) if "t" in d else None,
        )
