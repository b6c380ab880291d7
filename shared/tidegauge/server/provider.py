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
- Each metric's series are held indexed by label pair (:mod:`tidegauge.server.index`), so a request
  costs what its answer holds. With a store that has a change feed (:mod:`tidegauge.server.view`) the
  held series are refreshed at most every ``refresh_seconds`` from what changed; otherwise they are
  read whole (one HGETALL) and shared by all requests for ``snapshot_seconds``. Either way concurrent
  requests wait for the same read, bounded by ``read_timeout_seconds``: a timeout is
  :class:`StoreUnavailable` (503), never a hang.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidegauge.config import ExposureDecision, MetricPolicy
from tidegauge.model import METRIC_NAME_PATTERN, Sample
from tidegauge.ratelimit_log import RateLimitedLog
from tidegauge.records import LabelMatcher
from tidegauge.selectors import Operator, Selector, parse_selector
from tidegauge.server.index import SeriesIndex
from tidegauge.server.types import ExternalMetricValue
from tidegauge.server.view import (
    Dropped,
    FeedReader,
    FollowedMetric,
    NoChangeFeed,
    Series,
    newest_timestamp,
    render,
)
from tidegauge.store import StoreUnavailable

logger = logging.getLogger(__name__)

_MEMORY_LIMIT = 10_000
DROPPED_LOG_INTERVAL_SECONDS = 60.0
"""A series left out of an answer is logged at most once per interval per metric (the rest counted)."""
UNFRESH_PER_NAMESPACE = 1_000
"""Fallback clocks (metric, selector) remembered per namespace; beyond, that namespace's least
recently asked ones are forgotten, so one tenant cannot reset another's HPA fallback."""
FEED_REFRESH_SECONDS = 0.5
"""At most this long between a write and a request that sees it, when the store has a change feed."""
REFRESH_TIMEOUT_SECONDS = 60.0
"""A refresh (a full read of a large metric included) still running after this long is given up."""
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


@dataclass(frozen=True, slots=True)
class _Snapshot:
    read_at: float
    series: SeriesIndex[Series]


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
        refresh_seconds: float | None = None,
    ) -> None:
        """``record_fallback(metric)`` hears of each fallback served (``record_last_known_good`` of each
        last-known-good answer), ``record_dropped(metric, reason)`` of
        each series a read leaves out (e.g. |value| >= 9.2e15); ``newest_timestamps`` (per metric, the
        newest source time of its last read) is kept up to date for telemetry. A reader with a change feed
        (:class:`FeedReader`) is followed: each metric's view is refreshed at most every ``refresh_seconds``
        (default: ``snapshot_seconds``, at most ``FEED_REFRESH_SECONDS``) from what changed."""
        self._reader = reader
        if refresh_seconds is None:
            refresh_seconds = min(snapshot_seconds, FEED_REFRESH_SECONDS)
        self._refresh_seconds = refresh_seconds
        # Checked once: isinstance against a runtime Protocol costs tens of microseconds.
        self._feed: FeedReader | None = reader if isinstance(reader, FeedReader) else None
        self._views: dict[str, FollowedMetric] = {}
        self._refreshes: dict[str, asyncio.Task[None]] = {}
        self._policies = policies
        self._snapshot_seconds = snapshot_seconds
        self._read_timeout = read_timeout_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._snapshots: dict[str, _Snapshot] = {}
        self._reads: dict[str, asyncio.Future[_Snapshot]] = {}
        self._rendered: dict[str, SeriesIndex[Series]] = {}
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
        series_held = await self._series(name)
        policy = self._policies.metric_policy(name)
        now = self._clock()
        oldest_fresh = now - policy.max_age_seconds
        fresh: list[ExternalMetricValue] = []
        stale: list[Series] = []
        newest_stale: float | None = None
        for series in series_held.select(selector):
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
        if not len(series_held):
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

    async def _series(self, name: str) -> SeriesIndex[Series]:
        reader = self._feed
        if reader is None:
            return (await self._snapshot(name)).series
        try:
            return await self._followed(name, reader)
        except NoChangeFeed:
            logger.info("the store has no change feed: every refresh reads whole metrics")
            self._feed = None
            return (await self._snapshot(name)).series

    async def _followed(self, name: str, reader: FeedReader) -> SeriesIndex[Series]:
        view = self._views.get(name)
        if view is None:
            if len(self._views) >= _MEMORY_LIMIT:
                self._views.clear()
            view = self._views[name] = FollowedMetric(name, reader, self._dropped)
        arrived = self._monotonic()
        # At most two rounds: a refresh that started before this request may miss a write just before
        # it, so with refresh_seconds 0 the request waits for one that started after it arrived.
        for _round in range(2):
            done = view.refreshed_at
            if done is not None and (arrived - done < self._refresh_seconds or done >= arrived):
                break
            refresh = self._refreshes.get(name)
            if refresh is None:
                refresh = asyncio.ensure_future(self._refresh(view))
                self._refreshes[name] = refresh
                refresh.add_done_callback(functools.partial(self._finish_refresh, name))
            try:
                await asyncio.wait_for(asyncio.shield(refresh), self._read_timeout)
            except TimeoutError as error:
                raise StoreUnavailable(f"reading {name} took longer than {self._read_timeout:g} s") from error
        return view.series

    async def _refresh(self, view: FollowedMetric) -> None:
        started = self._monotonic()
        await asyncio.wait_for(view.refresh(), REFRESH_TIMEOUT_SECONDS)
        view.refreshed_at = started
        if view.newest is not None:
            self.newest_timestamps[view.name] = view.newest

    def _finish_refresh(self, name: str, refresh: asyncio.Task[None]) -> None:
        self._refreshes.pop(name, None)
        if not refresh.cancelled() and refresh.exception() is not None:
            logger.debug("refreshing %s failed: %s", name, refresh.exception())

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
        previous = self._rendered.get(name)
        series = _series_of(name, samples, previous, self._dropped)
        if name not in self._rendered and len(self._rendered) >= _MEMORY_LIMIT:
            self._rendered.clear()
        self._rendered[name] = series
        newest = newest_timestamp(series)
        if newest is not None:
            self.newest_timestamps[name] = newest
        return _Snapshot(started, series)

    def _dropped(self, name: str, label_string: str, error: Exception) -> None:
        """A series left out of ``name``'s answers: counted, and logged at most once per interval."""
        self._record_dropped(name, "unservable")
        self._dropped_log.warning("not serving series %s of %s: %s", label_string, name, error, key=name)


def _series_of(
    name: str,
    samples: Sequence[Sample],
    previous: SeriesIndex[Series] | None,
    dropped: Dropped,
) -> SeriesIndex[Series]:
    """Samples as API values, indexed; unchanged ones reuse the previous read's rendering.

    A series that cannot be rendered (a value with no quantity form: |v| >= 9.2e15) is reported to
    ``dropped`` and left out; it never fails the other series' answer.
    """
    index: SeriesIndex[Series] = SeriesIndex()
    for sample in samples:
        label_string = sample.key.label_string
        entry = render(name, sample, None if previous is None else previous.get(label_string), dropped)
        if entry is not None:
            index.put(label_string, entry.labels, entry)
    return index
