"""The server's own metrics, exposed in the Prometheus text format on a plain-HTTP port.

Built on ``prometheus_client`` (the ecosystem's exposition, no dependencies of its own) with a registry of
the server's own, so process metrics (memory, CPU, open files) and the Python runtime's come with it.
Gauges that describe the moment (open connections, Redis up, sample ages) are read at scrape time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tidegauge.server.types import ExternalMetricValue

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""What :func:`prometheus_client.generate_latest` writes: the text format, version 0.0.4."""
SERVED_SERIES_LIMIT = 500
"""Series exported with their value and age; beyond, the least recently served are forgotten (and
counted), so a flood of series or selectors cannot grow the exposition without bound."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# Counters without their `<name>_created` twin series: scrapers never need them here, they double the lines.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it untyped


class Counter:
    """A counter whose label values are given positionally: ``requests.inc("200", "health")``."""

    def __init__(
        self, name: str, help_text: str, label_names: tuple[str, ...], registry: CollectorRegistry
    ) -> None:
        self._counter = prometheus_client.Counter(name, help_text, label_names, registry=registry)
        self._name, self._label_names, self._registry = name, label_names, registry

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._counter.labels(*labels).inc(amount)

    def value(self, *labels: str) -> float:
        """The count so far for these label values (0 when never incremented)."""
        sample = self._registry.get_sample_value(
            self._name, dict(zip(self._label_names, labels, strict=True))
        )
        return 0.0 if sample is None else sample


class Histogram:
    """A histogram observed with its label values after the value: ``latency.observe(0.2, "200", "x")``."""

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: tuple[str, ...],
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self._histogram = prometheus_client.Histogram(
            name, help_text, label_names, buckets=buckets, registry=registry
        )

    def observe(self, value: float, *labels: str) -> None:
        self._histogram.labels(*labels).observe(value)


class ServedSeries:
    """The last value and source time of each series the server answered, least recently served first."""

    def __init__(self, limit: int = SERVED_SERIES_LIMIT) -> None:
        self.limit = limit
        self.forgotten = 0
        self._series: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def record(self, values: Iterable[ExternalMetricValue]) -> None:
        """Each served item, as the most recently served."""
        for item in values:
            key = (item.metric_name, ",".join(f"{k}={v}" for k, v in sorted(item.labels.items())))
            self._series.pop(key, None)
            self._series[key] = (float(item.value), float(item.timestamp))
            while len(self._series) > self.limit:
                self._series.popitem(last=False)
                self.forgotten += 1

    def items(self) -> list[tuple[tuple[str, str], tuple[float, float]]]:
        return sorted(self._series.items())


class _AtScrapeTime(Collector):
    """The gauges of the moment, computed when Prometheus asks."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        telemetry = self._telemetry
        yield GaugeMetricFamily(
            "tidegauge_connections_open",
            "Open connections of the secure port.",
            value=telemetry.open_connections(),
        )
        yield GaugeMetricFamily(
            "tidegauge_redis_up",
            "1 if Redis answered the server's last request or ping, else 0.",
            value=1 if telemetry.redis_up() else 0,
        )
        ages = GaugeMetricFamily(
            "tidegauge_metric_newest_sample_age_seconds",
            "Age (source time) of the newest sample of each metric the server has read.",
            labels=["metric"],
        )
        now = telemetry.clock()
        for metric, timestamp in sorted(telemetry.newest_timestamps.items()):
            ages.add_metric([metric], round(now - timestamp, 3))
        yield ages
        values = GaugeMetricFamily(
            "tidegauge_served_series_value",
            f"Last value served of each series (at most {telemetry.served.limit}, the most recently served).",
            labels=["metric", "series"],
        )
        series_ages = GaugeMetricFamily(
            "tidegauge_served_series_age_seconds",
            "Age (source time) of the last value served of each series, now.",
            labels=["metric", "series"],
        )
        for (metric, series), (value, timestamp) in telemetry.served.items():
            values.add_metric([metric, series], value)
            series_ages.add_metric([metric, series], round(now - timestamp, 3))
        yield values
        yield series_ages
        yield GaugeMetricFamily(
            "tidegauge_served_series_forgotten",
            "Served series left out of the two gauges above because of their bound, since start.",
            value=telemetry.served.forgotten,
        )


class Telemetry:
    """Every metric the server exports, in a registry of its own."""

    def __init__(
        self,
        newest_timestamps: dict[str, float] | None = None,
        clock: Callable[[], float] = time.time,
        *,
        redis_up: Callable[[], bool | None] = lambda: None,
        open_connections: Callable[[], int] = lambda: 0,
    ) -> None:
        """``redis_up`` (did Redis answer the last time: None before the first ask) and ``open_connections``
        (of the secure port) are read at scrape time; ``newest_timestamps`` is filled by the provider."""
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "tidegauge_http_requests_total",
            "Requests answered, by HTTP code and kind of path.",
            ("code", "kind"),
            registry,
        )
        self.latency = Histogram(
            "tidegauge_http_request_duration_seconds",
            "Time to answer a request, by HTTP code and kind of path.",
            ("code", "kind"),
            LATENCY_BUCKETS,
            registry,
        )
        self.redis_errors = Counter(
            "tidegauge_redis_errors_total",
            "Failed Redis reads, by kind (unavailable or error).",
            ("kind",),
            registry,
        )
        self.authentications = Counter(
            "tidegauge_authentication_total",
            "Authentication outcomes, by method.",
            ("method", "outcome"),
            registry,
        )
        self.authorizations = Counter(
            "tidegauge_authorization_decisions_total",
            "Authorization decisions, by outcome.",
            ("outcome",),
            registry,
        )
        self.fallbacks = Counter(
            "tidegauge_fallback_served_total", "Fallback values served, by metric.", ("metric",), registry
        )
        self.last_known_good = Counter(
            "tidegauge_last_known_good_served_total",
            "Answers of stale series served as last known good, by metric.",
            ("metric",),
            registry,
        )
        self.series_dropped = Counter(
            "tidegauge_series_dropped_total",
            "Series left out of a read, by metric and reason (invalid-record: bad stored time or value; "
            "unservable: |value| >= 9.2e15, no quantity form).",
            ("metric", "reason"),
            registry,
        )
        self.connections_closed = Counter(
            "tidegauge_connections_closed_total",
            "Connections the server cut or refused, by reason (refused, evicted-idle, header-timeout, "
            "header-too-large, malformed-request, tls-handshake-failed).",
            ("reason",),
            registry,
        )
        self.delegated = Counter(
            "tidegauge_delegated_requests_total",
            "External metric requests forwarded to the delegated adapter, by its HTTP code "
            "(unavailable: no answer in time).",
            ("code",),
            registry,
        )
        self.delegated_latency = Histogram(
            "tidegauge_delegated_request_duration_seconds",
            "Time the delegated adapter took to answer a forwarded request, by its HTTP code.",
            ("code",),
            LATENCY_BUCKETS,
            registry,
        )
        self.newest_timestamps = newest_timestamps if newest_timestamps is not None else {}
        self.served = ServedSeries()
        self.redis_up = redis_up
        self.open_connections = open_connections
        self.clock = clock
        registry.register(_AtScrapeTime(self))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

    def record_delegated(self, code: str, seconds: float) -> None:
        self.delegated.inc(code)
        self.delegated_latency.observe(seconds, code)

    def render(self) -> bytes:
        return generate_latest(self.registry)
