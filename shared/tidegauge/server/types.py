"""The API values the provider hands to the serving layer, each able to encode itself once.

A value lives as long as the provider's snapshot of its metric, so its JSON is rendered once and
reused by every request that selects it (rendering dominates the cost of a 1,000-series answer).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Protocol

from tidegauge.quantity import format_quantity
from tidegauge.selectors import Selector

DEFAULT_WINDOW_SECONDS = 60
EXTERNAL_LIST_PREFIX = b"".join(
    (
        b'{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1",',
        b'"metadata":{},"items":[',
    )
)
LIST_SUFFIX = b"]}"

_TIMESTAMPS: dict[int, str] = {}
_TIMESTAMP_CACHE_SIZE = 4096


def format_timestamp(unix_seconds: float) -> str:
    """RFC 3339 in UTC with a ``Z`` and whole seconds, as ``metav1.Time`` marshals."""
    second = int(unix_seconds // 1)
    text = _TIMESTAMPS.get(second)
    if text is None:
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        if len(_TIMESTAMPS) >= _TIMESTAMP_CACHE_SIZE:
            _TIMESTAMPS.clear()
        _TIMESTAMPS[second] = text
    return text


class ExternalMetricValue:
    """One item of an ``ExternalMetricValueList``: a series' labels, value and SOURCE timestamp."""

    __slots__ = ("_encoded", "labels", "metric_name", "timestamp", "value", "window_seconds")

    def __init__(
        self,
        metric_name: str,
        labels: Mapping[str, str],
        timestamp: float,
        value: float,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self.metric_name = metric_name
        self.labels = labels
        self.timestamp = timestamp
        self.value = value
        self.window_seconds = window_seconds
        self._encoded: bytes | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "metricName": self.metric_name,
            "metricLabels": dict(self.labels),
            "timestamp": format_timestamp(self.timestamp),
            "window": self.window_seconds,
            "value": format_quantity(self.value),
        }

    def encoded(self) -> bytes:
        """This item's JSON, rendered on first use (raises ``QuantityError`` for an unservable value)."""
        if self._encoded is None:
            self._encoded = json.dumps(self.to_dict(), separators=(",", ":")).encode()
        return self._encoded

    def __repr__(self) -> str:
        labels = dict(self.labels)
        return f"ExternalMetricValue({self.metric_name!r}, {labels!r}, {self.timestamp}, {self.value})"


def encode_external_list(values: list[ExternalMetricValue]) -> bytes:
    """The ``ExternalMetricValueList`` document of ``values``."""
    return EXTERNAL_LIST_PREFIX + b",".join([value.encoded() for value in values]) + LIST_SUFFIX


class ExternalMetrics(Protocol):
    """What the routes call: :class:`~tidegauge.server.provider.ExternalMetricsProvider`'s one method,
    also offered by the signals layer composed around it (:mod:`tidegauge.server.signals`)."""

    async def get_external_metric(
        self, namespace: str, selector: Selector, name: str
    ) -> list[ExternalMetricValue]: ...
