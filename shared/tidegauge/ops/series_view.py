"""One read of everything in Redis as operators look at it: every series with its age, staleness and
fallback, the collectors' last runs and usage; shared by ``tidegauge top`` and the ops page.

A series is stale past its metric's max age (the server's own rule, from the config when given); a
metric whose fallback is configured and which has no fresh series is marked as serving its fallback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tidegauge.model import CollectorStatus, MetricInfo, SeriesKey
from tidegauge.ops.common import Target, plain_number

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DECIMAL = ("", "k", "M", "G", "T", "P")
SORT_KEYS = ("metric", "age", "value", "source", "stale")


@dataclass(frozen=True)
class SeriesRow:
    key: SeriesKey
    metric: str
    labels: str
    value: float
    unit: str
    source: str
    timestamp: float
    age_seconds: float
    stale: bool
    fallback: bool

    @property
    def human(self) -> str:
        return human_value(self.value, self.unit)


@dataclass(frozen=True)
class Snapshot:
    taken_at: float
    metrics: tuple[MetricInfo, ...]
    rows: tuple[SeriesRow, ...]
    statuses: dict[str, CollectorStatus] = field(default_factory=dict)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)

    def sorted_rows(self, key: str) -> list[SeriesRow]:
        """Rows by ``key`` (one of :data:`SORT_KEYS`): newest first for age, largest first for value."""
        orders = {
            "metric": lambda r: (r.metric, r.labels),
            "age": lambda r: (r.age_seconds, r.metric, r.labels),
            "value": lambda r: (-r.value, r.metric, r.labels),
            "source": lambda r: (r.source, r.metric, r.labels),
            "stale": lambda r: (not r.stale, r.metric, r.labels),
        }
        return sorted(self.rows, key=orders[key])


def human_value(value: float, unit: str) -> str:
    """``1536`` bytes -> ``1.5 KiB``, ``2500000`` -> ``2.5M``, percent with ``%``; units other than bytes
    and percent follow the number."""
    lowered = unit.lower()
    if lowered in ("bytes", "byte", "b"):
        return _scaled(value, 1024, _BINARY, " ")
    if lowered in ("percent", "%"):
        return f"{value:.1f}%"
    text = _scaled(value, 1000, _DECIMAL, "")
    return f"{text} {unit}" if unit and lowered not in ("count", "none") else text


def _scaled(value: float, base: int, suffixes: tuple[str, ...], gap: str) -> str:
    magnitude, step = abs(value), 0
    while magnitude >= base and step < len(suffixes) - 1:
        magnitude /= base
        step += 1
    if step == 0:
        return plain_number(value) + (gap + suffixes[0] if suffixes[0] else "")
    sign = "-" if value < 0 else ""
    digits = f"{magnitude:.1f}".rstrip("0").rstrip(".")
    return f"{sign}{digits}{gap}{suffixes[step]}"


def take_snapshot(target: Target, now: float | None = None) -> Snapshot:
    """Everything, in one pass over the store."""
    moment = time.time() if now is None else now
    store = target.store
    metrics = tuple(store.list_metrics())
    rows: list[SeriesRow] = []
    for info in metrics:
        max_age = target.max_age_seconds(info.name)
        samples = store.read_latest(info.name)
        stale = [moment - s.timestamp > max_age for s in samples]
        policy = target.config.metric_policy(info.name) if target.config is not None else None
        fallback = policy is not None and policy.fallback is not None and all(stale)
        rows.extend(
            SeriesRow(
                key=sample.key,
                metric=info.name,
                labels=sample.key.label_string,
                value=sample.value,
                unit=info.unit,
                source=sample.source or info.source,
                timestamp=sample.timestamp,
                age_seconds=max(0.0, moment - sample.timestamp),
                stale=is_stale,
                fallback=fallback,
            )
            for sample, is_stale in zip(samples, stale, strict=True)
        )
    statuses = store.read_statuses()
    usage = {source: store.read_usage(source) for source in statuses}
    return Snapshot(moment, metrics, tuple(rows), statuses, usage)
