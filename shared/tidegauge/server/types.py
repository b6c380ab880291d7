"""The API values the provider hands to the serving layer, each able to encode itself once.

A value lives as long as the provider's snapshot of its metric, so its JSON is rendered once and
reused by every request that selects it (rendering dominates the cost of a 1,000-series answer).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from tidegauge.quantity import format_quantity
from tidegauge.selectors import EVERYTHING, Operator, Selector

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


CUSTOM_GROUP = "custom.metrics.k8s.io"


@dataclass(frozen=True, slots=True)
class DescribedObject:
    """The ``describedObject`` of a custom metric value (an ``ObjectReference``: empty fields left out)."""

    kind: str
    api_version: str
    name: str
    namespace: str = ""

    def to_dict(self) -> dict[str, str]:
        reference = {"kind": self.kind, "namespace": self.namespace, "name": self.name}
        reference["apiVersion"] = self.api_version
        return {key: value for key, value in reference.items() if value}


@dataclass(frozen=True, slots=True)
class CustomMetricValue:
    """One item of a ``MetricValueList``: a metric's value for one object, at its SOURCE timestamp."""

    described: DescribedObject
    metric_name: str
    timestamp: float
    value: float
    selector: Selector = EVERYTHING
    """The request's ``metricLabelSelector``, echoed back as upstream adapters do."""
    window_seconds: int = DEFAULT_WINDOW_SECONDS

    def to_dict(self, version: str) -> dict[str, object]:
        """The item in ``custom.metrics.k8s.io/<version>`` shape (v1beta2 or v1beta1)."""
        selector = label_selector(self.selector)
        common = {"describedObject": self.described.to_dict()}
        if version == "v1beta1":
            return {
                **common,
                "metricName": self.metric_name,
                "timestamp": format_timestamp(self.timestamp),
                "window": self.window_seconds,
                "value": format_quantity(self.value),
                "selector": selector,
            }
        return {
            **common,
            "metric": {"name": self.metric_name, "selector": selector},
            "timestamp": format_timestamp(self.timestamp),
            "windowSeconds": self.window_seconds,
            "value": format_quantity(self.value),
        }


def label_selector(selector: Selector) -> dict[str, object] | None:
    """``selector`` as a ``metav1.LabelSelector`` (as ``metav1.ParseToLabelSelector``); None when empty."""
    if selector.is_empty:
        return None
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, object]] = []
    for requirement in selector.requirements:
        operator = requirement.operator
        if operator is Operator.EQUALS:
            match_labels[requirement.key] = next(iter(requirement.values))
            continue
        expression: dict[str, object] = {"key": requirement.key, "operator": _SELECTOR_OPERATORS[operator]}
        if requirement.values:
            expression["values"] = sorted(requirement.values)
        expressions.append(expression)
    document: dict[str, object] = {}
    if match_labels:
        document["matchLabels"] = match_labels
    if expressions:
        document["matchExpressions"] = expressions
    return document


_SELECTOR_OPERATORS = {
    Operator.IN: "In",
    Operator.NOT_IN: "NotIn",
    Operator.NOT_EQUALS: "NotIn",
    Operator.EXISTS: "Exists",
    Operator.DOES_NOT_EXIST: "DoesNotExist",
}


def encode_custom_list(values: list[CustomMetricValue], version: str) -> bytes:
    """The ``MetricValueList`` document of ``values`` in ``custom.metrics.k8s.io/<version>``."""
    document = {
        "kind": "MetricValueList",
        "apiVersion": f"{CUSTOM_GROUP}/{version}",
        "metadata": {},
        "items": [value.to_dict(version) for value in values],
    }
    return json.dumps(document, separators=(",", ":")).encode()
