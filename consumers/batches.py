"""What a batch of Kafka records spans, for the one INFO line the worker and the sink log per
batch: `topic p0 12-40, p3 7-9; other-topic p1 0-5` (first and last offset per partition)."""

from __future__ import annotations

from collections.abc import Iterable


def describe(positions: Iterable[tuple[str, int, int]]) -> str:
    """(topic, partition, offset) of each record, as one line."""
    spans: dict[str, dict[int, tuple[int, int]]] = {}
    for topic, partition, offset in positions:
        parts = spans.setdefault(topic, {})
        low, high = parts.get(partition, (offset, offset))
        parts[partition] = (min(low, offset), max(high, offset))
    return "; ".join(
        f"{topic} " + ", ".join(f"p{p} {lo}-{hi}" for p, (lo, hi) in sorted(parts.items()))
        for topic, parts in sorted(spans.items()))
