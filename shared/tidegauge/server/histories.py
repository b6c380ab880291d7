"""History points of the series of one answer: read in one pipeline, cached per series and version.

Windows, keep-alive, rates and projections read only the series an answer holds, at most
``history_points(span, interval)`` newest points each, and keep them until the series' latest
timestamp changes (a write appends to the history and replaces the latest value in one transaction),
then extend them with the entries added since.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidegauge.config import Labels
from tidegauge.model import HistoryPoint, SeriesKey
from tidegauge.server.types import ExternalMetricValue
from tidegauge.server.windows import Point

MAX_HISTORY_POINTS = 1440
"""The most points one series' window reads (the store keeps ``redis.history_length``, 1440 by default)."""
HISTORY_CACHE_SECONDS = 3600.0
"""How long a series' history is extended incrementally before it is read whole again."""
HISTORY_CACHE_SERIES = 100_000


class HistoryReader(Protocol):
    """The part of :class:`tidegauge.server.backend.RedisBackend` that reads history streams."""

    async def read_histories(
        self, keys: Sequence[SeriesKey], *, count: int, after: Sequence[str | None] | None = None
    ) -> list[tuple[str | None, list[HistoryPoint]]]: ...


def history_points(seconds: float, interval_seconds: float) -> int:
    """Points to read for a span of ``seconds`` when collectors write every ``interval_seconds``:
    twice the expected count (runs may overlap or retry) plus a margin, at most MAX_HISTORY_POINTS."""
    return min(MAX_HISTORY_POINTS, 2 * math.ceil(seconds / interval_seconds) + 8)


@dataclass(frozen=True, slots=True)
class _History:
    version: float
    """The latest timestamp of the series when read: the history only grows when it changes."""
    count: int
    read_at: float
    last_id: str | None
    stream: tuple[Point, ...]
    """The stream's newest points (at most ``count``), oldest first."""
    points: tuple[Point, ...]
    """``stream`` older than the latest value, then the latest value itself."""


class SeriesHistories:
    """History points of the series of one answer, read together, cached per series and version.

    A series seen before is read incrementally (only the stream entries after the last one read), so
    after a collector run each series costs one short read; a full read happens on first sight, when
    more points are needed, or every ``cache_seconds``.
    """

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
        self._cache: dict[tuple[str, Labels], _History] = {}
        self.reads = 0
        """Pipelines sent (one per answer that had any series not cached): for tests and benchmarks."""

    async def points(
        self, metric: str, values: Sequence[ExternalMetricValue], count: int
    ) -> list[tuple[Point, ...]]:
        """Each value's series history, oldest first, ending with the value itself (the authority)."""
        now = self._monotonic()
        known: list[_History | None] = []
        stale: list[tuple[int, tuple[str, Labels], _History | None]] = []
        for index, value in enumerate(values):
            key = (metric, tuple(sorted(value.labels.items())))
            cached = self._cache.get(key)
            if cached is not None and (cached.count < count or now - cached.read_at >= self._cache_seconds):
                cached = None
            if cached is None or cached.version != value.timestamp:
                stale.append((index, key, cached))
                known.append(None)
            else:
                known.append(cached)
        if stale:
            self.reads += 1
            read = await self._reader.read_histories(
                [SeriesKey(metric, key[1]) for _, key, _ in stale],
                count=count,
                after=[cached.last_id if cached is not None else None for _, _, cached in stale],
            )
            if len(self._cache) + len(stale) > HISTORY_CACHE_SERIES:
                self._cache.clear()
            for (index, key, cached), (last_id, new) in zip(stale, read, strict=True):
                entry = _entry(values[index], count, now, cached, last_id, new)
                self._cache[key] = entry
                known[index] = entry
        return [entry.points if entry is not None else () for entry in known]


def _entry(
    value: ExternalMetricValue,
    count: int,
    now: float,
    cached: _History | None,
    last_id: str | None,
    new: Sequence[HistoryPoint],
) -> _History:
    added = tuple((point.timestamp, point.value) for point in new)
    stream = (cached.stream + added)[-count:] if cached is not None else added
    read_at = cached.read_at if cached is not None else now
    return _History(
        value.timestamp, count, read_at, last_id, stream, ending_with(stream, value.timestamp, value.value)
    )


def ending_with(stream: Sequence[Point], timestamp: float, value: float) -> tuple[Point, ...]:
    """A series' history as windows read it: the stream's points older than the latest value, then the
    latest value itself (the authority). Shared with ``tidegauge explain``."""
    return (*(point for point in stream if point[0] < timestamp), (timestamp, value))
