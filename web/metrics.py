"""Prometheus exposition (SPEC §5.4): counts, not only ratios, so `sum()` across workers is
right. Labels are `indicator`, `unit`, `window` (and `type` / `reason` on pipeline counters);
never a case id or anything about a patient. Region-wide figures are sums in PromQL.

The collector is built on a `snapshot` callable so the same code serves the embedded demo
and the Faust worker; every metric goes to an explicit registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from models.indicators import INDICATORS
from models.live import Group, Live, LiveView
from models.measures import WINDOWS

PREFIX = "vardgaranti_"


@dataclass
class MetricsSnapshot:
    """What one process knows right now (read from its models.live.LiveView)."""

    live: Mapping[Group, Live]  # per (indicator, unit), at the watermark's date
    watermark_us: int | None
    at_risk: Mapping[Group, int] = field(default_factory=dict)
    processed: Mapping[str, int] = field(default_factory=dict)  # by event type
    rejected: Mapping[str, int] = field(default_factory=dict)  # by reason
    ignored: Mapping[str, int] = field(default_factory=dict)  # duplicate/inconsistent/orphan
    last_event_wall: float | None = None  # unix time of the last processed event
    newest_event_us: int | None = None  # event time of the newest event processed
    consumer_lag: Mapping[tuple[str, int], int] = field(default_factory=dict)


def snapshot_of(
    view: LiveView, processed: Mapping[str, int], rejected: Mapping[str, int],
    duplicates: int, last_event_wall: float | None,
    consumer_lag: Mapping[tuple[str, int], int] | None = None,
) -> MetricsSnapshot:
    """A process's live view and pipeline counters as one scrape sees them."""
    return MetricsSnapshot(
        live=view.live(), watermark_us=view.watermark_us, at_risk=view.at_risk_counts(),
        processed=dict(processed), rejected=dict(rejected), ignored=view.ignored(duplicates),
        last_event_wall=last_event_wall, newest_event_us=view.newest_us,
        consumer_lag=dict(consumer_lag or {}),
    )


class MonitorCollector(Collector):
    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        yield from _targets()
        yield from _pipeline(snap)
        if snap.watermark_us is None:
            return
        within = GaugeMetricFamily(
            PREFIX + "completed_within", "Clocks fulfilled within the limit, in the window",
            labels=["indicator", "unit", "window"],
        )
        over = GaugeMetricFamily(
            PREFIX + "completed_over", "Clocks fulfilled after the deadline, in the window",
            labels=["indicator", "unit", "window"],
        )
        gauges = {
            name: GaugeMetricFamily(PREFIX + name, doc, labels=["indicator", "unit"])
            for name, doc in (
                ("waiting", "Clocks open now"),
                ("waiting_over_limit", "Clocks open now and past their deadline"),
                ("paused", "Clocks paused now (medical reasons)"),
                ("excluded", "Clocks excluded now (patient's choice)"),
                ("at_risk", "Open clocks due within the at-risk horizon (worklist size)"),
            )
        }
        breaches = CounterMetricFamily(
            PREFIX + "breaches", "Clocks that passed their deadline still open",
            labels=["indicator", "unit"],
        )
        for (ind, unit), live in sorted(snap.live.items()):
            name = INDICATORS[ind].id
            for w in WINDOWS:
                within.add_metric([name, unit, w], live.within[w])
                over.add_metric([name, unit, w], live.over[w])
            labels = [name, unit]
            gauges["waiting"].add_metric(labels, live.waiting)
            gauges["waiting_over_limit"].add_metric(labels, live.waiting_over_limit)
            gauges["paused"].add_metric(labels, live.paused)
            gauges["excluded"].add_metric(labels, live.excluded)
            gauges["at_risk"].add_metric(labels, snap.at_risk.get((ind, unit), 0))
            breaches.add_metric(labels, live.breaches)
        yield within
        yield over
        yield from gauges.values()
        yield breaches


def _targets() -> Iterable[Metric]:
    target = GaugeMetricFamily(
        PREFIX + "target_ratio", "The region's target share within the limit",
        labels=["indicator"],
    )
    reference = GaugeMetricFamily(
        PREFIX + "reference_ratio", "Published results of earlier years (annual report)",
        labels=["indicator", "year"],
    )
    for ind in INDICATORS:
        target.add_metric([ind.id], ind.target)
        reference.add_metric([ind.id, "2022"], ind.result_2022)
        reference.add_metric([ind.id, "2023"], ind.result_2023)
    yield target
    yield reference


def _pipeline(snap: MetricsSnapshot) -> Iterable[Metric]:
    for name, doc, label, values in (
        ("events_processed", "Valid events processed, by type", "type", snap.processed),
        ("events_rejected", "Lines sent to the dead letters, by reason", "reason", snap.rejected),
        ("events_ignored", "Valid events that changed no clock, by reason", "reason",
         snap.ignored),
    ):
        family = CounterMetricFamily(PREFIX + name, doc, labels=[label])
        for key, n in sorted(values.items()):
            family.add_metric([key], n)
        yield family
    if snap.watermark_us is not None:
        yield GaugeMetricFamily(
            PREFIX + "watermark_timestamp_seconds", "Event-time watermark (unix seconds)",
            value=snap.watermark_us / 1e6,
        )
    if snap.last_event_wall is not None:
        yield GaugeMetricFamily(
            PREFIX + "last_event_timestamp_seconds",
            "Wall-clock time the last event was processed (unix seconds)",
            value=snap.last_event_wall,
        )
    if snap.newest_event_us is not None:
        yield GaugeMetricFamily(
            PREFIX + "processing_lag_seconds",
            "Wall clock now minus the event time of the newest event processed",
            value=max(0.0, time.time() - snap.newest_event_us / 1e6),
        )
    lag = GaugeMetricFamily(
        PREFIX + "consumer_lag_messages", "Messages not yet consumed (streaming mode)",
        labels=["topic", "partition"],
    )
    for (topic, partition), n in sorted(snap.consumer_lag.items()):
        lag.add_metric([topic, str(partition)], n)
    yield lag


def registry_for(snapshot: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(snapshot))
    return registry
