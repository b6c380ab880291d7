"""Serve-time signals composed around the provider: windows and keep-alive over each served series'
history (and, in :mod:`.derived`, metrics defined by expressions).

:class:`SignalsProvider` has the provider's one method, ``get_external_metric(namespace, selector,
name)``: the provider decides exposure, freshness and fallbacks exactly as before; for a metric with a
``window`` or ``keep_alive_seconds`` this layer then replaces each served value by the window function
of its series' history (raw values stay in Redis). Cost is bounded: only the answer's series' histories
are read (one pipeline per answer), at most ``history_points`` newest points each, and kept per series
until the series' latest timestamp changes or ``history_cache_seconds`` pass.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tidegauge.config import ExposureDecision, Labels, MetricPolicy
from tidegauge.config.model import DerivedMetric, Window
from tidegauge.selectors import Selector, parse_selector
from tidegauge.server.derived import DerivedEvaluator
from tidegauge.server.histories import HISTORY_CACHE_SERIES, SeriesHistories, history_points
from tidegauge.server.provider import MetricNotFound
from tidegauge.server.types import ExternalMetrics, ExternalMetricValue
from tidegauge.server.windows import Point, expiry, smoothed

logger = logging.getLogger(__name__)


class SignalPolicies(Protocol):
    """The part of :class:`tidegauge.config.Config` this layer reads."""

    @property
    def derived(self) -> Mapping[str, DerivedMetric]: ...
    def metric_policy(self, metric: str) -> MetricPolicy: ...
    def exposure_for(self, namespace: str, metric: str) -> ExposureDecision: ...


class SignalsProvider:
    """The provider's interface with windows and keep-alive applied to the metrics configured for them,
    and the derived metrics of the config evaluated (:mod:`.derived`)."""

    def __init__(
        self,
        inner: ExternalMetrics,
        histories: SeriesHistories,
        policies: SignalPolicies,
        *,
        interval_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._histories = histories
        self._policies = policies
        self._interval = interval_seconds
        self._clock = clock
        self._served: dict[tuple[str, Labels], _Served] = {}
        self._derived = DerivedEvaluator(
            self._collected,
            inner.get_external_metric,
            histories,
            policies,
            interval_seconds=interval_seconds,
            clock=clock,
        )

    async def get_external_metric(
        self, namespace: str, selector: Selector, name: str
    ) -> list[ExternalMetricValue]:
        """As the provider's, with each value smoothed when ``name`` has a window or keep-alive; a
        derived metric's one value when ``name`` is derived."""
        derived = self._policies.derived.get(name)
        if derived is None:
            return await self._collected(namespace, selector, name)
        _check_visible(self._policies.exposure_for(namespace, name), selector, name)
        return [await self._derived.value(namespace, name, derived.expression)]

    async def _collected(self, namespace: str, selector: Selector, name: str) -> list[ExternalMetricValue]:
        values = await self._inner.get_external_metric(namespace, selector, name)
        policy = self._policies.metric_policy(name)
        if not values or (policy.window is None and policy.keep_alive_seconds is None):
            return values
        return await self._smoothed(name, policy, values)

    async def _smoothed(
        self, name: str, policy: MetricPolicy, values: list[ExternalMetricValue]
    ) -> list[ExternalMetricValue]:
        """Each value through the window and keep-alive; a series' last answer is reused while its
        value is unchanged and no point has left (or entered) its window since."""
        window, keep_alive = policy.window, policy.keep_alive_seconds
        now = self._clock()
        served: list[ExternalMetricValue | None] = []
        pending: list[tuple[int, tuple[str, Labels]]] = []
        for index, value in enumerate(values):
            key = (name, tuple(sorted(value.labels.items())))
            known = self._served.get(key)
            if known is not None and known.version == (value.timestamp, value.value) and now < known.until:
                served.append(known.value)
            else:
                served.append(None)
                pending.append((index, key))
        if pending:
            span = max(window.seconds if window is not None else 0.0, keep_alive or 0.0)
            histories = await self._histories.points(
                name, [values[index] for index, _ in pending], history_points(span, self._interval)
            )
            if len(self._served) + len(pending) > HISTORY_CACHE_SERIES:
                self._served.clear()
            for (index, key), points in zip(pending, histories, strict=True):
                entry = _smooth(name, values[index], points, now, window, keep_alive)
                self._served[key] = entry
                served[index] = entry.value
        return [value for value in served if value is not None]


@dataclass(frozen=True, slots=True)
class _Served:
    version: tuple[float, float]
    """The raw value's timestamp and value it was computed for."""
    until: float
    """Source time up to which the same window holds the same points."""
    value: ExternalMetricValue


def _smooth(
    name: str,
    raw: ExternalMetricValue,
    points: tuple[Point, ...],
    now: float,
    window: Window | None,
    keep_alive: float | None,
) -> _Served:
    value = smoothed(raw.value, points, now, window, keep_alive)
    window_seconds, until = raw.window_seconds, math.inf
    if window is not None:
        window_seconds = max(1, round(window.seconds))
        until = expiry(points, now, window.seconds)
    if keep_alive is not None:
        until = min(until, expiry(points, now, keep_alive))
    rendered = ExternalMetricValue(name, raw.labels, raw.timestamp, value, window_seconds)
    return _Served((raw.timestamp, raw.value), until, rendered)


def _check_visible(exposure: ExposureDecision, selector: Selector, name: str) -> None:
    """A derived metric (one item, no labels) is answered only when exposed and selected, as a series."""
    if not exposure.allowed or (
        exposure.selectors and not any(parse_selector(text).matches({}) for text in exposure.selectors)
    ):
        raise MetricNotFound(f"external metric {name!r} not found")
    if not selector.matches({}):
        raise MetricNotFound(
            f"external metric {name!r} has no series matching the selector {str(selector)!r} "
            "(a derived metric has no labels: select nothing)"
        )
