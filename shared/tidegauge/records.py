"""The JSON records the store keeps in Redis: samples and collector statuses, encoded and decoded.

A stored sample record that a writer could not store today (bad JSON, non-finite or implausible times, an
older writer's mistakes) decodes to :class:`InvalidRecord`; reads skip it, report it and go on. Key names
are not here: :mod:`tidegauge.store` owns them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tidegauge.model import CollectorStatus, Sample, SeriesKey, parse_labels
from tidegauge.ratelimit_log import RateLimitedLog

logger = logging.getLogger(__name__)

LABEL_CACHE_SIZE = 200_000
INVALID_LOG_INTERVAL_SECONDS = 60.0
"""An invalid stored record is logged at most once per interval per metric (the rest are counted)."""
MAX_ERRORS_KEPT = 20


class LabelMatcher(Protocol):
    """Anything that decides whether a label set is selected (see :mod:`tidegauge.selectors`)."""

    def matches(self, labels: Mapping[str, str], /) -> bool: ...


class InvalidRecord(ValueError):
    """A stored record that is not a valid sample (bad JSON, non-finite or implausible times)."""


InvalidRecordHook = Callable[[str, str], None]
"""Told ``(metric, label string)`` of each invalid record a read skipped (e.g. to count it)."""


def encode_sample(sample: Sample) -> str:
    return json.dumps(
        {"v": sample.value, "t": sample.timestamp, "c": sample.collected_at, "src": sample.source},
        separators=(",", ":"),
    )


def decode_sample(key: SeriesKey, raw: str) -> Sample:
    """The sample a record holds; :class:`InvalidRecord` if it is not one a writer may store now."""
    try:
        data = json.loads(raw)
        return Sample(key, float(data["v"]), float(data["t"]), float(data["c"]), str(data.get("src", "")))
    except (ValueError, KeyError, TypeError) as error:  # InvalidSeriesError is a ValueError
        raise InvalidRecord(f"stored record of {key.metric} {key.label_string!r} refused: {error}") from error


def valid_sample(key: SeriesKey, raw: str | None) -> Sample | None:
    """The stored sample, or None when there is none or it is invalid (e.g. an old writer's inf time)."""
    if raw is None:
        return None
    try:
        return decode_sample(key, raw)
    except InvalidRecord:
        return None


class SeriesCache:
    """Parsed label strings and the last decoded sample per series.

    A read of 10,000 series then re-parses nothing that did not change since the previous read:
    the server reads the same hash every few seconds and collectors rewrite it every ~15 s.
    """

    def __init__(self, size: int = LABEL_CACHE_SIZE, on_invalid: InvalidRecordHook | None = None) -> None:
        self._size = size
        self._on_invalid = on_invalid
        self._invalid_log = RateLimitedLog(logger, INVALID_LOG_INTERVAL_SECONDS)
        self._labels: dict[str, tuple[dict[str, str], tuple[tuple[str, str], ...]]] = {}
        self._samples: dict[tuple[str, str], tuple[str, Sample]] = {}

    def labels(self, label_string: str) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
        entry = self._labels.get(label_string)
        if entry is None:
            labels = parse_labels(label_string)
            entry = (labels, tuple(sorted(labels.items())))
            if len(self._labels) >= self._size:
                self._labels.clear()
            self._labels[label_string] = entry
        return entry

    def sample(
        self, metric: str, label_string: str, pairs: tuple[tuple[str, str], ...], raw: str
    ) -> Sample | None:
        """The decoded sample, or None (logged rate-limited, reported) for an invalid record."""
        slot = (metric, label_string)
        cached = self._samples.get(slot)
        if cached is not None and cached[0] == raw:
            return cached[1]
        try:
            sample = decode_sample(SeriesKey(metric, pairs), raw)
        except InvalidRecord as error:
            self._invalid(metric, label_string, error)
            return None
        if len(self._samples) >= self._size:
            self._samples.clear()
        self._samples[slot] = (raw, sample)
        return sample

    def _invalid(self, metric: str, label_string: str, error: InvalidRecord) -> None:
        if self._on_invalid is not None:
            self._on_invalid(metric, label_string)
        self._invalid_log.warning("skipping an invalid stored series of %s: %s", metric, error, key=metric)


def select(
    metric: str, entries: Mapping[str, str], selector: LabelMatcher | None, cache: SeriesCache
) -> list[Sample]:
    samples: list[Sample] = []
    # Sorting the canonical label strings is several times cheaper than sorting the label tuples.
    for label_string in sorted(entries):
        labels, pairs = cache.labels(label_string)
        if selector is None or selector.matches(labels):
            sample = cache.sample(metric, label_string, pairs, entries[label_string])
            if sample is not None:
                samples.append(sample)
    return samples


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a metric's change feed stands: ``version`` counts the transactions that changed its series;
    its change log is complete above ``floor``; ``epoch`` names this life of the feed (a Redis that lost
    its data starts a new one, so equal versions of two lives are never confused)."""

    version: int
    floor: int
    epoch: str

    def continues(self, known: FeedPosition) -> bool:
        """Whether a reader at ``known`` catches up from the log: same life, not ahead, not trimmed past."""
        return self.epoch == known.epoch and self.floor <= known.version <= self.version


@dataclass(frozen=True, slots=True)
class Changes:
    """A feed's position, and the label strings changed or removed after the version asked about."""

    position: FeedPosition | None
    label_strings: tuple[str, ...] = ()


def decode_feed(version: str | None, floor: str | None, epoch: str | None) -> FeedPosition | None:
    """The position the feed hash's fields hold; None when there is no feed (or it is not one)."""
    if version is None or epoch is None:
        return None
    try:
        return FeedPosition(int(version), int(floor or 0), epoch)
    except ValueError:
        return None


def encode_status(status: CollectorStatus) -> str:
    return json.dumps(
        {
            "source": status.source,
            "kind": status.kind,
            "started_at": status.started_at,
            "finished_at": status.finished_at,
            "ok": status.ok,
            "samples_written": status.samples_written,
            "series_failed": status.series_failed,
            "errors": list(status.errors[:MAX_ERRORS_KEPT]),
            "api_calls": dict(status.api_calls),
            "metrics_requested": status.metrics_requested,
            "duration_share_seconds": status.duration_share_seconds,
            "series_no_data": status.series_no_data,
        },
        separators=(",", ":"),
    )


def decode_status(raw: str) -> CollectorStatus:
    data: dict[str, Any] = json.loads(raw)
    return CollectorStatus(
        source=str(data["source"]),
        kind=str(data.get("kind", "")),
        started_at=float(data["started_at"]),
        finished_at=float(data["finished_at"]),
        ok=bool(data["ok"]),
        samples_written=int(data.get("samples_written", 0)),
        series_failed=int(data.get("series_failed", 0)),
        errors=tuple(str(error) for error in data.get("errors", ())),
        api_calls={str(name): int(count) for name, count in data.get("api_calls", {}).items()},
        metrics_requested=int(data.get("metrics_requested", 0)),
        duration_share_seconds=float(data.get("duration_share_seconds", data.get("compute_seconds", 0.0))),
        series_no_data=int(data.get("series_no_data", 0)),
    )
