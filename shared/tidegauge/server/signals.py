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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidegauge.config import MetricPolicy
from tidegauge.model import HistoryPoint, SeriesKey
from tidegauge.selectors import Selector
from tidegauge.server.types import ExternalMetrics, ExternalMetricValue
from tidegauge.server.windows import Point, in_window, kept_alive, window_value

logger = logging.getLogger(__name__)

MAX_HISTORY_POINTS = 1440
"""The most points one series' window reads (the store keeps ``redis.history_length``, 1440 by default)."""
HISTORY_CACHE_SECONDS = 15.0
HISTORY_CACHE_SERIES = 100_000


class HistoryReader(Protocol):
    """The part of :class:`tidegauge.server.backend.RedisBackend` that reads history streams."""

    async def read_histories(self, keys: Sequence[SeriesKey], *, count: int) -> list[list[HistoryPoint]]: ...


class SignalPolicies(Protocol):
    """The part of :class:`tidegauge.config.Config` this layer reads."""

    def metric_policy(self, metric: str) -> MetricPolicy: ...


def history_points(seconds: float, interval_seconds: float) -> int:
    """Points to read for a span of ``seconds`` when collectors write every ``interval_seconds``:
    twice the expected count (runs may overlap or retry) plus a margin, at most MAX_HISTORY_POINTS."""
    return min(MAX_HISTORY_POINTS, 2 * math.ceil(seconds / interval_seconds) + 8)


@dataclass(frozen=True, slots=True)
class _History:
    version: float
    count: int
    read_at: float
    points: tuple[Point, ...]


class SeriesHistories:
    """History points of the series of one answer, read together, cached per series and version."""

    def __init__(
        self,
        reader: HistoryReader,
        *,
        cache_seconds: float = HISTORY_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[SeriesKey, _History] = {}
        self.reads = 0
        """Pipelines sent (one per answer that had any series not cached): for tests and benchmarks."""

    async def points(
        self, metric: str, values: Sequence[ExternalMetricValue], count: int
    ) -> list[tuple[Point, ...]]:
        """Each value's series history, oldest first, ending with the value itself (the authority)."""
        keys = [SeriesKey.of(metric, value.labels) for value in values]
        now = self._monotonic()
        known: list[_History | None] = []
        missing: list[int] = []
        for index, (key, value) in enumerate(zip(keys, values, strict=True)):
            cached = self._cache.get(key)
            if (
                cached is None
                or cached.version != value.timestamp
                or cached.count < count
                or now - cached.read_at >= self._cache_seconds
            ):
                cached = None
                missing.append(index)
            known.append(cached)
        if missing:
            self.reads += 1
            read = await self._reader.read_histories([keys[index] for index in missing], count=count)
            if len(self._cache) + len(missing) > HISTORY_CACHE_SERIES:
                self._cache.clear()
            for index, points in zip(missing, read, strict=True):
                value = values[index]
                older = [(p.timestamp, p.value) for p in points if p.timestamp < value.timestamp]
                merged = (*older, (value.timestamp, value.value))
                entry = _History(value.timestamp, count, now, merged)
                self._cache[keys[index]] = entry
                known[index] = entry
        return [entry.points if entry is not None else () for entry in known]


class SignalsProvider:
    """The provider's interface with windows and keep-alive applied to the metrics configured for them."""

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
        self._rendered: dict[tuple[str, SeriesKey], ExternalMetricValue] = {}

    async def get_external_metric(
        self, namespace: str, selector: Selector, name: str
    ) -> list[ExternalMetricValue]:
        """As the provider's, with each value smoothed when ``name`` has a window or keep-alive."""
        values = await self._inner.get_external_metric(namespace, selector, name)
        policy = self._policies.metric_policy(name)
        if not values or (policy.window is None and policy.keep_alive_seconds is None):
            return values
        return await self._smoothed(name, policy, values)

    async def _smoothed(
        self, name: str, policy: MetricPolicy, values: list[ExternalMetricValue]
    ) -> list[ExternalMetricValue]:
        window, keep_alive = policy.window, policy.keep_alive_seconds
        span = max(window.seconds if window is not None else 0.0, keep_alive or 0.0)
        histories = await self._histories.points(name, values, history_points(span, self._interval))
        now = self._clock()
        smoothed: list[ExternalMetricValue] = []
        for value, points in zip(values, histories, strict=True):
            served = value.value
            window_seconds = value.window_seconds
            if window is not None:
                recent = in_window(points, now, window.seconds) or [points[-1]]
                served = window_value(window.function, recent, window.seconds)
                window_seconds = max(1, round(window.seconds))
            if keep_alive is not None:
                served = kept_alive(served, in_window(points, now, keep_alive))
            smoothed.append(self._render(name, value, served, window_seconds))
        return smoothed

    def _render(
        self, name: str, raw: ExternalMetricValue, value: float, window_seconds: int
    ) -> ExternalMetricValue:
        """The served value, reusing the last rendering of its series when nothing about it changed."""
        key = (name, SeriesKey.of(name, raw.labels))
        known = self._rendered.get(key)
        if (
            known is not None
            and known.value == value
            and known.timestamp == raw.timestamp
            and known.window_seconds == window_seconds
        ):
            return known
        rendered = ExternalMetricValue(name, raw.labels, raw.timestamp, value, window_seconds)
        if len(self._rendered) >= HISTORY_CACHE_SERIES:
            self._rendered.clear()
        self._rendered[key] = rendered
        return rendered
