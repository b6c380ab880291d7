"""The external metrics provider: what the store holds, turned into API values, fresh and exposed only.

The serving layer calls :meth:`get_external_metric`. (custom-metrics-apiserver's second method,
``list_external_metrics``, feeds per-metric discovery; tidegauge's discovery lists the one
``externalmetrics`` resource, as the contract allows, so there is no list to keep.)

Rules, for a request (namespace, selector, metric) at time ``now``:

- Exposure: ``config.exposure_for(namespace, metric)`` not allowed -> 404 NotFound, exactly as for a
  metric that does not exist (a namespace learns nothing about metrics it may not read). Allowed with
  selectors -> a series is visible only if one of them matches it, in addition to the request's selector.
- Staleness: a series is fresh while ``now - sample.timestamp <= max_age_seconds`` (source time).
  Fresh matching series are served; stale ones are left out. Nothing fresh -> 404 NotFound (the HPA
  then holds its replica count), unless the metric has a fallback:
- Fallback ``(value, after_seconds)``: the request has been "unfresh" since ``newest matching
  timestamp + max_age_seconds`` when some series match, or else since the first time this server
  answered this (namespace, metric, selector) with nothing matching (remembered in memory, forgotten
  once fresh data matches again; kept per namespace, at most ``UNFRESH_PER_NAMESPACE`` each, so a
  flood of selectors in one namespace forgets only that namespace's least recently asked clocks).
  Once unfresh for at least ``after_seconds``, one item is served:
  the fallback value, labels = the selector's single-valued equalities, timestamp = ``now``.
  Before that, 404 as without a fallback.
- Last known good (``fallback: {mode: last_known_good, max_age_seconds: N}``): with nothing fresh, the
  matching series at most N s past the max age (``now - timestamp <= max_age_seconds + N``) are served
  with their real timestamps, before any fixed fallback; past that, the fixed fallback or 404.
- Each series' JSON is rendered once per change of its value or timestamp, not once per request.
- Each metric's series are read with one HGETALL, shared by all requests for ``snapshot_seconds``
  (concurrent requests wait for the same read), and bounded by ``read_timeout_seconds``: a timeout is
  :class:`StoreUnavailable` (503), never a hang.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from tidegauge.config import ExposureDecision, MetricPolicy
from tidegauge.model import METRIC_NAME_PATTERN, Sample
from tidegauge.quantity import QuantityError
from tidegauge.ratelimit_log import RateLimitedLog
from tidegauge.records import LabelMatcher
from tidegauge.selectors import Operator, Selector, parse_selector
from tidegauge.server.types import ExternalMetricValue
from tidegauge.store import StoreUnavailable

logger = logging.getLogger(__name__)

_MEMORY_LIMIT = 10_000
DROPPED_LOG_INTERVAL_SECONDS = 60.0
"""A series left out of an answer is logged at most once per interval per metric (the rest counted)."""
UNFRESH_PER_NAMESPACE = 1_000
"""Fallback clocks (metric, selector) remembered per namespace; beyond, that namespace's least
recently asked ones are forgotten, so one tenant cannot reset another's HPA fallback."""
UNFRESH_NAMESPACES = 10_000
"""Namespaces with fallback clocks remembered; beyond, the least recently asked one is forgotten."""


class MetricReader(Protocol):
    """The part of :class:`tidegauge.store.AsyncStore` the provider reads through."""

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]: ...


class PolicySource(Protocol):
    """The part of :class:`tidegauge.config.Config` that decides freshness and exposure."""

    def metric_policy(self, metric: str) -> MetricPolicy: ...
    def exposure_for(self, namespace: str, metric: str) -> ExposureDecision: ...


class MetricNotFound(Exception):
    """No fresh series to serve (unknown, hidden, unmatched or stale); the message says which, safely."""


_SeriesVersion = tuple[tuple[tuple[str, str], ...], float, float]
"""A series' labels, timestamp and value: when all three are unchanged, so is its rendering."""


class _Series(NamedTuple):
    labels: dict[str, str]
    timestamp: float
    value: ExternalMetricValue


@dataclass(frozen=True, slots=True)
class _Snapshot:
    read_at: float
    series: tuple[_Series, ...]


@functools.lru_cache(maxsize=1024)
def _exposure_selector(text: str) -> Selector:
    return parse_selector(text)


def _fallback_labels(selector: Selector) -> dict[str, str]:
    return {
        requirement.key: next(iter(requirement.values))
        for requirement in selector.requirements
        if requirement.operator in (Operator.EQUALS, Operator.IN) and len(requirement.values) == 1
    }


class ExternalMetricsProvider:
    """Reads snapshots of metrics from the store and answers with fresh, visible values."""

    def __init__(
        self,
        reader: MetricReader,
        policies: PolicySource,
        *,
        snapshot_seconds: float = 1.0,
        read_timeout_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        record_fallback: Callable[[str], None] = lambda metric: None,
        record_last_known_good: Callable[[str], None] = lambda metric: None,
        record_dropped: Callable[[str, str], None] = lambda metric, reason: None,
        newest_timestamps: dict[str, float] | None = None,
    ) -> None:
        """``record_fallback(metric)`` hears of each fallback served (``record_last_known_good`` of each
        last-known-good answer), ``record_dropped(metric, reason)`` of
        each series a read leaves out (e.g. |value| >= 9.2e15); ``newest_timestamps`` (per metric, the
        newest source time of its last read) is kept up to date for telemetry."""
        self._reader = reader
        self._policies = policies
        self._snapshot_seconds = snapshot_seconds
        self._read_timeout = read_timeout_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._snapshots: dict[str, _Snapshot] = {}
        self._reads: dict[str, asyncio.Future[_Snapshot]] = {}
        self._rendered: dict[str, dict[_SeriesVersion, _Series]] = {}
        self._unfresh_since: dict[str, dict[tuple[str, str], float]] = {}
        """Per namespace, per (metric, selector): since when nothing matched, least recently asked first."""
        self._record_fallback = record_fallback
        self._record_last_known_good = record_last_known_good
        self._record_dropped = record_dropped
        self._dropped_log = RateLimitedLog(logger, DROPPED_LOG_INTERVAL_SECONDS, monotonic=monotonic)
        self.newest_timestamps: dict[str, float] = {} if newest_timestamps is None else newest_timestamps

    async def get_external_metric(
        self, namespace: str, selector: Selector, name: str
    ) -> list[ExternalMetricValue]:
        """Fresh values of ``name`` visible from ``namespace`` that ``selector`` selects, sorted by labels."""
        if not METRIC_NAME_PATTERN.match(name):
            raise MetricNotFound(f"external metric {name!r} not found")
        exposure = self._policies.exposure_for(namespace, name)
        if not exposure.allowed:
            raise MetricNotFound(f"external metric {name!r} not found")
        visible = [_exposure_selector(text) for text in exposure.selectors]
        snapshot = await self._snapshot(name)
        policy = self._policies.metric_policy(name)
        now = self._clock()
        oldest_fresh = now - policy.max_age_seconds
        fresh: list[ExternalMetricValue] = []
        stale: list[_Series] = []
        newest_stale: float | None = None
        for series in snapshot.series:
            if not selector.matches(series.labels):
                continue
            if visible and not any(allowed.matches(series.labels) for allowed in visible):
                continue
            if series.timestamp >= oldest_fresh:
                fresh.append(series.value)
            else:
                stale.append(series)
                if newest_stale is None or series.timestamp > newest_stale:
                    newest_stale = series.timestamp
        key = (name, str(selector))
        if fresh:
            self._forget_unfresh(namespace, key)
            return fresh
        if policy.last_known_good is not None:
            oldest_good = oldest_fresh - policy.last_known_good.max_age_seconds
            good = [series.value for series in stale if series.timestamp >= oldest_good]
            if good:
                self._record_last_known_good(name)
                return good
        fallback = policy.fallback
        if fallback is not None:
            since = self._unfresh_moment(namespace, key, newest_stale, policy, now)
            if now - since >= fallback.after_seconds:
                logger.info(
                    "serving fallback %s for %s in %s (nothing fresh since %.0f)",
                    fallback.value,
                    name,
                    namespace,
                    since,
                )
                self._record_fallback(name)
                return [ExternalMetricValue(name, _fallback_labels(selector), now, fallback.value)]
        if newest_stale is not None:
            raise MetricNotFound(
                f"external metric {name!r} has no fresh series matching the selector: the newest is "
                f"{now - newest_stale:.0f} s old, more than its max age of "
                f"{policy.max_age_seconds:g} s (stale)"
            )
        if not snapshot.series:
            raise MetricNotFound(f"external metric {name!r} not found")
        raise MetricNotFound(
            f"external metric {name!r} has no series matching the selector {str(selector)!r}"
        )

    def _unfresh_moment(
        self,
        namespace: str,
        key: tuple[str, str],
        newest_stale: float | None,
        policy: MetricPolicy,
        now: float,
    ) -> float:
        if newest_stale is not None:
            self._forget_unfresh(namespace, key)
            return newest_stale + policy.max_age_seconds
        clocks = self._unfresh_since.pop(namespace, None)
        if clocks is None:
            clocks = {}
            if len(self._unfresh_since) >= UNFRESH_NAMESPACES:
                del self._unfresh_since[next(iter(self._unfresh_since))]
        self._unfresh_since[namespace] = clocks
        since = clocks.pop(key, None)
        if since is None:
            since = now
            while len(clocks) >= UNFRESH_PER_NAMESPACE:
                del clocks[next(iter(clocks))]
        clocks[key] = since
        return since

    def _forget_unfresh(self, namespace: str, key: tuple[str, str]) -> None:
        clocks = self._unfresh_since.get(namespace)
        if clocks is not None and clocks.pop(key, None) is not None and not clocks:
            del self._unfresh_since[namespace]

    async def _snapshot(self, name: str) -> _Snapshot:
        cached = self._snapshots.get(name)
        if cached is not None and self._monotonic() - cached.read_at < self._snapshot_seconds:
            return cached
        if self._snapshot_seconds <= 0:
            return await self._read(name)
        read = self._reads.get(name)
        if read is None:
            read = asyncio.ensure_future(self._read(name))
            self._reads[name] = read
            read.add_done_callback(functools.partial(self._finish_read, name))
        return await asyncio.shield(read)

    def _finish_read(self, name: str, read: asyncio.Future[_Snapshot]) -> None:
        self._reads.pop(name, None)
        if read.cancelled() or read.exception() is not None:
            return
        if name not in self._snapshots and len(self._snapshots) >= _MEMORY_LIMIT:
            self._snapshots.clear()
        self._snapshots[name] = read.result()

    async def _read(self, name: str) -> _Snapshot:
        started = self._monotonic()
        try:
            samples = await asyncio.wait_for(self._reader.read_latest(name), self._read_timeout)
        except TimeoutError as error:
            raise StoreUnavailable(f"reading {name} took longer than {self._read_timeout:g} s") from error
        previous = self._rendered.get(name, {})
        rendered: dict[_SeriesVersion, _Series] = {}
        series = _series_of(name, samples, previous, rendered, self._dropped)
        if name not in self._rendered and len(self._rendered) >= _MEMORY_LIMIT:
            self._rendered.clear()
        self._rendered[name] = rendered
        if series:
            self.newest_timestamps[name] = max(s.timestamp for s in series)
        return _Snapshot(started, series)

    def _dropped(self, name: str, label_string: str, error: Exception) -> None:
        """A series left out of ``name``'s answers: counted, and logged at most once per interval."""
        self._record_dropped(name, "unservable")
        self._dropped_log.warning("not serving series %s of %s: %s", label_string, name, error, key=name)


def _series_of(
    name: str,
    samples: Sequence[Sample],
    previous: dict[_SeriesVersion, _Series],
    rendered: dict[_SeriesVersion, _Series],
    dropped: Callable[[str, str, Exception], None],
) -> tuple[_Series, ...]:
    """Samples as API values; unchanged ones reuse the previous read's rendering, new ones render now.

    A series that cannot be rendered (a value with no quantity form: |v| >= 9.2e15) is reported to
    ``dropped`` and left out; it never fails the other series' answer.
    """
    series: list[_Series] = []
    for sample in samples:
        version = (sample.key.labels, sample.timestamp, sample.value)
        known = previous.get(version)
        if known is not None:
            series.append(known)
            rendered[version] = known
            continue
        labels = sample.labels
        value = ExternalMetricValue(name, labels, sample.timestamp, sample.value)
        try:
            value.encoded()
        except (QuantityError, ValueError, OverflowError, OSError) as error:
            dropped(name, sample.key.label_string, error)
            continue
        entry = _Series(labels, sample.timestamp, value)
        series.append(entry)
        rendered[version] = entry
    return tuple(series)
