"""History points of the series of one answer: read in one pipeline, cached per series and version.

Windows, keep-alive, rates and projections read only the series an answer holds, at most
``history_points(span, interval)`` newest points each, and keep them until the series' latest
timestamp changes (a write appends to the history and replaces the latest value in one transaction)
or ``cache_seconds`` pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidegauge.model import HistoryPoint, SeriesKey
from tidegauge.server.types import ExternalMetricValue
from tidegauge.server.windows import Point

MAX_HISTORY_POINTS = 1440
"""The most points one series' window reads (the store keeps ``redis.history_length``, 1440 by default)."""
HISTORY_CACHE_SECONDS = 15.0
HISTORY_CACHE_SERIES = 100_000


class HistoryReader(Protocol):
    """The part of :class:`tidegauge.server.backend.RedisBackend` that reads history streams."""

    async def read_histories(self, keys: Sequence[SeriesKey], *, count: int) -> list[list[HistoryPoint]]: ...


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
