"""Prometheus exposition (docs/metrics.md): counts, not only ratios, so `sum()` across workers is
right. Labels are `indicator`, `unit`, `window` (and `type` / `reason` on pipeline counters);
never a case id or anything about a patient. Region-wide figures are sums in PromQL.

The collector is built on a `snapshot` callable so the same code serves the embedded demo
and the Faust worker; every metric goes to an explicit registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

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


# One indicator × unit's series: (name, help, counter?, per window?, its value)
Value = Callable[[MetricsSnapshot, Group, Live, str], float]
_GROUPS: tuple[tuple[str, str, bool, bool, Value], ...] = (
    ("completed_within", "Clocks fulfilled within the limit, in the window", False, True,
     lambda s, k, live, w: live.within[w]),
    ("completed_over", "Clocks fulfilled after the deadline, in the window", False, True,
     lambda s, k, live, w: live.over[w]),
    ("waiting", "Clocks open now", False, False, lambda s, k, live, w: live.waiting),
    ("waiting_over_limit", "Clocks open now and past their deadline", False, False,
     lambda s, k, live, w: live.waiting_over_limit),
    ("paused", "Clocks paused now (medical reasons)", False, False,
     lambda s, k, live, w: live.paused),
    ("excluded", "Clocks excluded now (patient's choice)", False, False,
     lambda s, k, live, w: live.excluded),
    ("at_risk", "Open clocks due within the at-risk horizon (worklist size)", False, False,
     lambda s, k, live, w: s.at_risk.get(k, 0)),
    ("breaches", "Clocks that passed their deadline still open", True, False,
     lambda s, k, live, w: live.breaches),
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
        rows = sorted(snap.live.items())
        for name, doc, counter, windowed, value in _GROUPS:
            family = (CounterMetricFamily if counter else GaugeMetricFamily)(
                PREFIX + name, doc,
                labels=["indicator", "unit", "window"] if windowed else ["indicator", "unit"])
            for key, live in rows:
                labels = [INDICATORS[key[0]].id, key[1]]
                for w in WINDOWS if windowed else ("",):
                    family.add_metric([*labels, w] if windowed else labels,
                                      value(snap, key, live, w))
            yield family

    def render(self) -> bytes:
        """The text exposition of `collect()`, as generate_latest writes it, with the
        per-group series formatted here: one label string per group instead of one per
        series (most of a scrape's time went to the library's formatting)."""
        snap = self._snapshot()
        head = generate_latest(_Families([*_targets(), *_pipeline(snap)]))
        if snap.watermark_us is None:
            return head
        rows = [(f'indicator="{INDICATORS[k[0]].id}",unit="{_escape(k[1])}"', k, live)
                for k, live in sorted(snap.live.items())]
        out: list[str] = []
        for name, doc, counter, windowed, value in _GROUPS:
            full = PREFIX + name + ("_total" if counter else "")
            out.append(f"# HELP {full} {doc}\n# TYPE {full} "
                       f"{'counter' if counter else 'gauge'}\n")
            for labels, key, live in rows:
                if windowed:
                    out.extend(f'{full}{{{labels},window="{w}"}} '
                               f"{_go(value(snap, key, live, w))}\n"
                               for w in WINDOWS)
                else:
                    out.append(f"{full}{{{labels}}} {_go(value(snap, key, live, ''))}\n")
        return head + "".join(out).encode()


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


_go: Callable[[float], str] = floatToGoString  # a number as the text format writes it


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


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


class MonitorRegistry(CollectorRegistry):
    """A registry of one MonitorCollector, which it renders itself (`exposition`)."""

    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        super().__init__(auto_describe=False)
        self.monitor = MonitorCollector(snapshot)
        self.register(self.monitor)


def registry_for(snapshot: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    return MonitorRegistry(snapshot)


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format of a registry; a MonitorRegistry's written the fast way."""
    if isinstance(registry, MonitorRegistry):
        return registry.monitor.render()
    return generate_latest(registry)
