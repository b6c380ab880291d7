"""Samples and series: the values that flow from a source, through Redis, to the HPA."""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from tidegauge import names

METRIC_NAME_PATTERN = names.SERIES_METRIC_NAME.pattern
"""Whole-string pattern of a stored metric name (kept for the server's provider, which imports it)."""
EARLIEST_TIMESTAMP = 946_684_800.0
"""2000-01-01T00:00:00Z: anything older is a unit mistake (or zero), not a measurement."""
MAX_FUTURE_SECONDS = 300.0
"""How far ahead of this machine's clock a timestamp may be (clock skew), not more."""

# Characters that would make the canonical label string ambiguous are percent-encoded.
_ESCAPES = {"%": "%25", ",": "%2C", "=": "%3D"}
_ESCAPE_PATTERN = re.compile(r"[%,=]")
_UNESCAPE_PATTERN = re.compile(r"%(25|2C|3D)")
_UNESCAPES = {"25": "%", "2C": ",", "3D": "="}


class InvalidSeriesError(ValueError):
    """A metric name, label or value that cannot be stored or served."""


def validate_metric_name(metric: str) -> str:
    """Return ``metric`` if it is usable as a Redis hash tag and a Kubernetes path segment."""
    if not names.SERIES_METRIC_NAME.accepts(metric):
        raise InvalidSeriesError(f"invalid metric name {metric!r}: {names.SERIES_METRIC_NAME.fix}")
    return metric


def _escape(text: str) -> str:
    return _ESCAPE_PATTERN.sub(lambda match: _ESCAPES[match.group(0)], text)


def _unescape(text: str) -> str:
    return _UNESCAPE_PATTERN.sub(lambda match: _UNESCAPES[match.group(1)], text)


class SeriesKey(NamedTuple):
    """A metric name plus its sorted labels: the identity of one series."""

    metric: str
    labels: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, metric: str, labels: Mapping[str, str]) -> SeriesKey:
        """Build a validated key; labels are sorted so equal label sets give equal keys."""
        validate_metric_name(metric)
        for name, value in labels.items():
            if not names.SERIES_LABEL_KEY.accepts(name):
                raise InvalidSeriesError(
                    f"invalid label name {name!r} on metric {metric!r}: {names.SERIES_LABEL_KEY.fix}"
                )
            if not isinstance(value, str) or not names.SERIES_LABEL_VALUE.accepts(value):
                raise InvalidSeriesError(
                    f"invalid value for label {name!r} on metric {metric!r}: {names.SERIES_LABEL_VALUE.fix}"
                )
        return cls(metric, tuple(sorted(labels.items())))

    @property
    def label_string(self) -> str:
        """Canonical ``k=v,k=v`` form (sorted, with ``%``, ``,`` and ``=`` percent-encoded)."""
        return format_labels(self.labels)

    @property
    def series_id(self) -> str:
        """A short stable id of the label set, used to name the series' history stream."""
        return series_id(self.label_string)

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def format_labels(labels: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{_escape(name)}={_escape(value)}" for name, value in labels)


def parse_labels(text: str) -> dict[str, str]:
    """Inverse of :func:`format_labels`."""
    if not text:
        return {}
    labels: dict[str, str] = {}
    for pair in text.split(","):
        name, separator, value = pair.partition("=")
        if not separator:
            raise InvalidSeriesError(f"malformed label string {text!r}: {pair!r} has no '='")
        labels[_unescape(name)] = _unescape(value)
    return labels


def series_id(label_string: str) -> str:
    return hashlib.blake2b(label_string.encode(), digest_size=8).hexdigest()


def timestamp_problem(unix_seconds: float, now: float | None = None) -> str | None:
    """Why ``unix_seconds`` is not a plausible time of a measurement, or None when it is."""
    if not math.isfinite(unix_seconds):
        return f"is {unix_seconds}, not a finite number"
    if unix_seconds < EARLIEST_TIMESTAMP:
        return f"is {unix_seconds:.0f}, before 2000-01-01"
    ahead = unix_seconds - (time.time() if now is None else now)
    if ahead > MAX_FUTURE_SECONDS:
        return f"is {unix_seconds:.0f}, {ahead:.0f} s in the future"
    return None


@dataclass(frozen=True, slots=True)
class Sample:
    """One observed value of a series.

    ``timestamp`` is when the source measured it (SQS call time, CloudWatch datapoint time);
    ``collected_at`` is when a collector wrote it. Both are Unix seconds.
    """

    key: SeriesKey
    value: float
    timestamp: float
    collected_at: float
    source: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise InvalidSeriesError(f"value of {self.key.metric} {self.key.label_string} is not finite")
        for name in ("timestamp", "collected_at"):
            problem = timestamp_problem(getattr(self, name))
            if problem is not None:
                raise InvalidSeriesError(
                    f"{name} of {self.key.metric} {self.key.label_string} {problem}: "
                    "give Unix seconds (not milliseconds) from this century, at most "
                    f"{MAX_FUTURE_SECONDS:g} s ahead of now"
                )

    @classmethod
    def of(
        cls,
        metric: str,
        labels: Mapping[str, str],
        value: float,
        timestamp: float,
        collected_at: float | None = None,
        source: str = "",
    ) -> Sample:
        return cls(
            SeriesKey.of(metric, labels),
            float(value),
            float(timestamp),
            float(timestamp if collected_at is None else collected_at),
            source,
        )

    @property
    def metric(self) -> str:
        return self.key.metric

    @property
    def labels(self) -> dict[str, str]:
        return self.key.label_dict()

    def age(self, now: float) -> float:
        """Seconds since the source measured this value."""
        return now - self.timestamp


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One entry of a series' history stream."""

    value: float
    timestamp: float
    collected_at: float


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What the store knows about a metric (for discovery, dashboards and the CLI)."""

    name: str
    unit: str = ""
    description: str = ""
    source: str = ""
    updated_at: float = 0.0
    series_count: int = 0


@dataclass(frozen=True, slots=True)
class CollectorStatus:
    """Outcome of one collector run for one source, kept so operators can see health and cost."""

    source: str
    kind: str
    started_at: float
    finished_at: float
    ok: bool
    samples_written: int = 0
    series_failed: int = 0
    errors: tuple[str, ...] = ()
    api_calls: Mapping[str, int] = field(default_factory=dict)
    metrics_requested: int = 0
    duration_share_seconds: float = 0.0
    """The invocation's duration divided equally by its sources (Lambda bills the duration, not CPU);
    stored as ``duration_share_seconds``, read from the older ``compute_seconds`` too."""
    series_no_data: int = 0
    """Queries that returned no datapoint (not an error: e.g. DBLoad while the database is idle)."""

    @property
    def duration_seconds(self) -> float:
        return self.finished_at - self.started_at
