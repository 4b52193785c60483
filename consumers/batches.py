"""What a batch of Kafka records spans, for the one INFO line the worker and the sink log per
batch: `topic p0 12-40, p3 7-9; other-topic p1 0-5` (first and last offset per partition,
and how many records when some offsets in between are missing), and the offsets a consumer
skipped without taking them (records it will never see again once the offsets after them
are committed)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping


def describe(positions: Iterable[tuple[str, int, int]]) -> str:
    """(topic, partition, offset) of each record, as one line."""
    spans: dict[str, dict[int, tuple[int, int, int]]] = {}
    for topic, partition, offset in positions:
        parts = spans.setdefault(topic, {})
        low, high, n = parts.get(partition, (offset, offset, 0))
        parts[partition] = (min(low, offset), max(high, offset), n + 1)
    return "; ".join(
        f"{topic} " + ", ".join(_span(p, *span) for p, span in sorted(parts.items()))
        for topic, parts in sorted(spans.items()))


def _span(partition: int, low: int, high: int, n: int) -> str:
    whole = high - low + 1
    return f"p{partition} {low}-{high}" + (f" ({n} of {whole})" if n < whole else "")


def skipped(next_offsets: MutableMapping[tuple[str, int], int],
            positions: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int, int]]:
    """Move `next_offsets` (per topic and partition) past the records taken; the ranges
    (topic, partition, first, last) passed over without a record being taken. A record
    below the next offset is one read again (after a restart or a rebalance): no skip."""
    out: list[tuple[str, int, int, int]] = []
    for topic, partition, offset in positions:
        want = next_offsets.get((topic, partition))
        if want is not None and offset > want:
            out.append((topic, partition, want, offset - 1))
        next_offsets[(topic, partition)] = offset + 1
    return out
