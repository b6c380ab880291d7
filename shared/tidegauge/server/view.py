"""One metric's series held by the server and kept in step with Redis through the writers' change feed.

Writers bump a per-metric version and log the label strings they changed in the same transaction as
the write (see :mod:`tidegauge.store`). A refresh asks for the feed's position and what changed since
the version the view holds, then reads only those series: its cost follows what changed, not the
metric's size. It reads the whole metric only when the log cannot say what changed: at the first
refresh, when the view is further behind than the log reaches, when Redis lost the feed (restarted
empty: a new epoch, or no feed at all) and for data written before the feed existed. A full read goes
in HSCAN steps, so the event loop serves requests between steps; it builds a new index and swaps it in,
so requests never see half of one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from tidegauge.model import Sample
from tidegauge.quantity import QuantityError, milli_value
from tidegauge.records import Changes, FeedPosition
from tidegauge.server import heap
from tidegauge.server.index import SeriesIndex
from tidegauge.server.types import ExternalMetricValue
from tidegauge.store import SCAN_COUNT

logger = logging.getLogger(__name__)

FREEZE_EVERY = SCAN_COUNT * 10
"""Series read between two :func:`heap.freeze_young` calls in a large read (or delta)."""

WHOLE_READ_SHARE = 0.5
"""When more than this share of the series changed, a refresh reads the metric whole (in steps): per
series, HSCAN costs about half what HMGET of named fields does."""

Dropped = Callable[[str, str, Exception], None]
"""Told ``(metric, label string, error)`` of a series that cannot be served."""


class NoChangeFeed(Exception):
    """The reader turned out to have no change feed (e.g. a test's wrapper store): read it as before."""


@runtime_checkable
class FeedReader(Protocol):
    """The change-feed side of :class:`tidegauge.store.AsyncStore`."""

    async def read_changes(self, metric: str, since: int | None = None) -> Changes: ...
    async def read_series(self, metric: str, label_strings: Sequence[str]) -> list[Sample | None]: ...
    def scan_latest(self, metric: str) -> AsyncIterator[list[tuple[str, Sample]]]: ...


class Series(NamedTuple):
    """A series as served: its labels, source timestamp and the API value (rendered once per change)."""

    labels: dict[str, str]
    timestamp: float
    value: ExternalMetricValue


def render(name: str, sample: Sample, known: Series | None, dropped: Dropped) -> Series | None:
    """``sample`` as an API value: ``known`` again when it holds the same value and time; None (told to
    ``dropped``) when the value has no quantity form (|v| >= 9.2e15), which never fails other series.

    The JSON itself is rendered at the first answer that holds it (and then kept), so a full read of a
    large metric does not render series nobody asks for."""
    if known is not None and known.timestamp == sample.timestamp and known.value.value == sample.value:
        return known
    try:
        milli_value(sample.value)
    except QuantityError as error:
        dropped(name, sample.key.label_string, error)
        return None
    labels = sample.labels
    return Series(labels, sample.timestamp, ExternalMetricValue(name, labels, sample.timestamp, sample.value))


class FollowedMetric:
    """One metric's series, refreshed by :meth:`refresh` from the change feed (one refresh at a time)."""

    def __init__(self, name: str, reader: FeedReader, dropped: Dropped) -> None:
        self.name = name
        self.series: SeriesIndex[Series] = SeriesIndex()
        self.position: FeedPosition | None = None
        self.newest: float | None = None
        """The newest source timestamp held (for telemetry)."""
        self.refreshed_at: float | None = None
        """When (monotonic) the last successful refresh started; set by the caller."""
        self.full_reads = 0
        self.series_read = 0
        """Series read from Redis so far: what refreshes cost."""
        self._reader = reader
        self._dropped = dropped

    async def refresh(self) -> None:
        """Catch up with Redis: the changed series only when the log continues from our version."""
        known = self.position
        changes = await self._reader.read_changes(self.name, None if known is None else known.version)
        position = changes.position
        if known is not None and position is not None and position.continues(known):
            changed = changes.label_strings
            if len(changed) > max(SCAN_COUNT, len(self.series) * WHOLE_READ_SHARE):
                await self._read_all(position)  # HSCAN steps cost less per series than HMGET ones
                return
            if position.version != known.version:
                await self._apply(changed)
            self.position = position
            return
        if position is not None and known is not None:
            logger.info("re-reading %s: its change feed does not continue from %s", self.name, known)
        await self._read_all(position)

    async def _read_all(self, before: FeedPosition | None) -> None:
        """Read every series anew; ``before`` is the feed's position read before the scan starts."""
        series: SeriesIndex[Series] = SeriesIndex()
        previous, read, newest = self.series, 0, None
        async for chunk in self._reader.scan_latest(self.name):
            if read // FREEZE_EVERY != (read + len(chunk)) // FREEZE_EVERY:
                heap.freeze_young()
            read += len(chunk)
            for label_string, sample in chunk:
                entry = render(self.name, sample, previous.get(label_string), self._dropped)
                if entry is not None:
                    series.put(label_string, entry.labels, entry)
                    if newest is None or entry.timestamp > newest:
                        newest = entry.timestamp
        self.series, self.position, self.newest = series, before, newest
        self.full_reads += 1
        self.series_read += read
        for _step in previous.dismantle(SCAN_COUNT * 10):
            await asyncio.sleep(0)
        if before is not None:
            # What changed while the scan ran (including series it saw before they were removed).
            changes = await self._reader.read_changes(self.name, before.version)
            if changes.position is not None and changes.position.continues(before):
                await self._apply(changes.label_strings)
                self.position = changes.position
        heap.settle()  # the new series are held long-term: keep full collection passes off them

    async def _apply(self, label_strings: Sequence[str]) -> None:
        removed, large = False, len(label_strings) >= FREEZE_EVERY
        for start in range(0, len(label_strings), SCAN_COUNT):
            if large and start and start % FREEZE_EVERY == 0:
                heap.freeze_young()
            names = label_strings[start : start + SCAN_COUNT]
            samples = await self._reader.read_series(self.name, names)
            self.series_read += len(names)
            for label_string, sample in zip(names, samples, strict=True):
                entry = None
                if sample is not None:
                    entry = render(self.name, sample, self.series.get(label_string), self._dropped)
                if entry is None:
                    removed = removed or label_string in self.series
                    self.series.remove(label_string)
                    continue
                self.series.put(label_string, entry.labels, entry)
                if self.newest is None or entry.timestamp > self.newest:
                    self.newest = entry.timestamp
        if removed:
            self.newest = newest_timestamp(self.series)
        if large:
            heap.settle()


def newest_timestamp(series: SeriesIndex[Series]) -> float | None:
    """The newest source timestamp of the series held (for telemetry), None when there are none."""
    return max((entry.timestamp for entry in series.values()), default=None)
