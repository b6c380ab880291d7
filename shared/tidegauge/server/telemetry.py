"""The server's own metrics, in the Prometheus text format (version 0.0.4), served on a plain-HTTP port.

Hand-written (a few counters and one histogram) to keep the image's dependencies to aiohttp and redis.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    pairs = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...]) -> None:
        self.name, self.help_text, self.label_names = name, help_text, label_names
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} counter"]
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(self.label_names, labels)} {_number(value)}")
        return lines


class Histogram:
    def __init__(
        self, name: str, help_text: str, label_names: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name, self.help_text, self.label_names, self.buckets = name, help_text, label_names, buckets
        self.series: dict[tuple[str, ...], list[float]] = {}
        """Per label tuple: one count per bucket (non-cumulative), then +Inf count, then the sum."""

    def observe(self, value: float, *labels: str) -> None:
        counts = self.series.get(labels)
        if counts is None:
            counts = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        counts[bisect.bisect_left(self.buckets, value)] += 1
        counts[-1] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} histogram"]
        for labels, counts in sorted(self.series.items()):
            cumulative = 0.0
            for bound, count in zip((*self.buckets, math.inf), counts[:-1], strict=True):
                cumulative += count
                le = f'le="{_number(bound)}"'
                lines.append(
                    f"{self.name}_bucket{_labels(self.label_names, labels, le)} {_number(cumulative)}"
                )
            lines.append(f"{self.name}_sum{_labels(self.label_names, labels)} {counts[-1]!r}")
            lines.append(f"{self.name}_count{_labels(self.label_names, labels)} {_number(cumulative)}")
        return lines


class Telemetry:
    """Every metric the server exports; ``newest_timestamps`` is read at scrape time."""

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
        self.requests = Counter(
            "tidegauge_http_requests_total",
            "Requests answered, by HTTP code and kind of path.",
            ("code", "kind"),
        )
        self.latency = Histogram(
            "tidegauge_http_request_duration_seconds",
            "Time to answer a request, by HTTP code and kind of path.",
            ("code", "kind"),
            LATENCY_BUCKETS,
        )
        self.redis_errors = Counter(
            "tidegauge_redis_errors_total", "Failed Redis reads, by kind (unavailable or error).", ("kind",)
        )
        self.authentications = Counter(
            "tidegauge_authentication_total", "Authentication outcomes, by method.", ("method", "outcome")
        )
        self.authorizations = Counter(
            "tidegauge_authorization_decisions_total", "Authorization decisions, by outcome.", ("outcome",)
        )
        self.fallbacks = Counter(
            "tidegauge_fallback_served_total", "Fallback values served, by metric.", ("metric",)
        )
        self.series_dropped = Counter(
            "tidegauge_series_dropped_total",
            "Series left out of a read, by metric and reason (invalid-record: bad stored time or value; "
            "unservable: |value| >= 9.2e15, no quantity form).",
            ("metric", "reason"),
        )
        self.connections_closed = Counter(
            "tidegauge_connections_closed_total",
            "Connections the server cut or refused, by reason (refused, evicted-idle, header-timeout, "
            "header-too-large, malformed-request, tls-handshake-failed).",
            ("reason",),
        )
        self.open_connections = open_connections
        self.newest_timestamps = newest_timestamps if newest_timestamps is not None else {}
        self.redis_up = redis_up
        self._clock = clock

    def render(self) -> bytes:
        lines: list[str] = []
        for family in (
            self.requests,
            self.redis_errors,
            self.authentications,
            self.authorizations,
            self.fallbacks,
            self.series_dropped,
            self.connections_closed,
        ):
            lines += family.render()
        lines += [
            "# HELP tidegauge_connections_open Open connections of the secure port.",
            "# TYPE tidegauge_connections_open gauge",
            f"tidegauge_connections_open {self.open_connections()}",
        ]
        lines += self.latency.render()
        up = self.redis_up()
        lines += [
            "# HELP tidegauge_redis_up 1 if Redis answered the server's last request or ping, else 0.",
            "# TYPE tidegauge_redis_up gauge",
            f"tidegauge_redis_up {1 if up else 0}",
        ]
        gauge = "tidegauge_metric_newest_sample_age_seconds"
        lines += [
            f"# HELP {gauge} Age (source time) of the newest sample of each metric the server has read.",
            f"# TYPE {gauge} gauge",
        ]
        now = self._clock()
        for metric, timestamp in sorted(self.newest_timestamps.items()):
            lines.append(f'{gauge}{{metric="{_escape(metric)}"}} {_number(round(now - timestamp, 3))}')
        return ("\n".join(lines) + "\n").encode()
