"""The Redis schema: the only module that knows tidegauge's key names (the JSON records stored under
them are encoded and decoded in :mod:`tidegauge.records`).

Layout (schema version 2; every key of one metric shares the hash tag ``{<metric>}`` so a batch
for one metric is one transaction, on standalone Redis and on Redis Cluster alike):

- ``tg:{<metric>}:latest``          HASH   canonical label string -> ``{"v","t","c","src"}`` JSON
- ``tg:{<metric>}:feed``            HASH   ``version`` (+1 per transaction that changes ``latest``),
  ``floor`` (the change log is complete above it), ``epoch`` (new whenever the feed is created anew)
- ``tg:{<metric>}:changes``         ZSET   label string -> the version that last changed (or removed) it;
  members at or below ``floor`` are trimmed
- ``tg:{<metric>}:hist:<series id>`` STREAM entries ``v``, ``t``, ``c``; ``XADD MAXLEN ~ history_length``
- ``tg:meta:{<metric>}``            HASH   ``unit``, ``description``, ``updated_at``, ``source:<name>`` per
  source that wrote it (its last write time); a ``source`` field (older writers) is read when no
  ``source:<name>`` field exists
- ``tg:metrics``                    SET    metric names
- ``tg:collectors``                 HASH   source name -> JSON status of its last run
- ``tg:usage:{<source>}``           HASH   running totals (runs, samples, API calls, metrics, seconds)
- ``tg:marker:{<source>}``          HASH   small per-source collector state (e.g. ``last_active_at``)
- ``tg:schema``                     STRING schema version
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import redis
import redis.exceptions

from tidegauge.errors import OperationFailed
from tidegauge.model import (
    CollectorStatus,
    HistoryPoint,
    MetricInfo,
    Sample,
    SeriesKey,
    series_id,
    validate_metric_name,
)
from tidegauge.records import (
    FeedPosition,
    InvalidRecordHook,
    LabelMatcher,
    SeriesCache,
    decode_feed,
    decode_status,
    encode_sample,
    encode_status,
    select,
    valid_sample,
)
from tidegauge.redis_connection import ConnectionSettings, SyncClient, connect

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
SCHEMA_KEY = "tg:schema"
METRICS_KEY = "tg:metrics"
COLLECTORS_KEY = "tg:collectors"
DEFAULT_HISTORY_LENGTH = 1440
WRITE_ATTEMPTS = 5
CHANGE_LOG_VERSIONS = 10_000
"""Versions a metric's change log covers: a reader further behind re-reads the whole metric."""
SCAN_COUNT = 100
"""Fields asked per HSCAN/HMGET step of a full read, so no step blocks the server's loop for long."""


def latest_key(metric: str) -> str:
    return f"tg:{{{metric}}}:latest"


def history_key(metric: str, series: str) -> str:
    return f"tg:{{{metric}}}:hist:{series}"


def feed_key(metric: str) -> str:
    return f"tg:{{{metric}}}:feed"


def changes_key(metric: str) -> str:
    return f"tg:{{{metric}}}:changes"


def meta_key(metric: str) -> str:
    return f"tg:meta:{{{metric}}}"


SOURCE_FIELD_PREFIX = "source:"
"""``tg:meta:{<metric>}`` field ``source:<name>``: when that source last wrote the metric (unix ts)."""


_RENAMED_USAGE_FIELDS = {"compute_seconds": "duration_share_seconds"}
"""Usage totals written under an older name, added to the current one when read."""


def usage_key(source: str) -> str:
    return f"tg:usage:{{{source}}}"


def marker_key(source: str) -> str:
    return f"tg:marker:{{{source}}}"


class StoreError(OperationFailed):
    """Redis answered with an error the caller cannot fix by retrying."""


class StoreUnavailable(StoreError):
    """Redis could not be reached in time; retrying later may succeed."""

    hint = (
        "check the Redis URL (--redis-url, $TIDEGAUGE_REDIS_URL or redis.url in the config), that the server "
        "runs and that this machine may reach it"
    )


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn redis-py exceptions into :class:`StoreError` / :class:`StoreUnavailable`."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
        raise StoreUnavailable(f"Redis unreachable while trying to {action}: {error}") from error
    except redis.exceptions.ClusterDownError as error:
        raise StoreUnavailable(f"Redis cluster down while trying to {action}: {error}") from error
    except redis.exceptions.RedisError as error:
        raise StoreError(f"Redis error while trying to {action}: {error}") from error


def metric_info(name: str, meta: Mapping[str, str], series_count: int) -> MetricInfo:
    """A metric's listing from its metadata hash and series count (both stores list metrics so)."""
    sources = sorted(
        field.removeprefix(SOURCE_FIELD_PREFIX) for field in meta if field.startswith(SOURCE_FIELD_PREFIX)
    )
    return MetricInfo(
        name=name,
        unit=meta.get("unit", ""),
        description=meta.get("description", ""),
        # Every source that has written the metric; "source" is what writers before "source:<name>" kept.
        source=",".join(sources) if sources else meta.get("source", ""),
        updated_at=float(meta.get("updated_at", 0.0)),
        series_count=series_count,
    )


FEED_FIELDS = ("version", "floor", "epoch")


def _read_feed(client: Any, metric: str) -> FeedPosition | None:
    """The feed position, read through ``client`` (a pipeline in WATCH mode executes at once)."""
    version, floor, epoch = client.hmget(feed_key(metric), FEED_FIELDS)
    return decode_feed(version, floor, epoch)


def _log_changes(
    pipe: Any, metric: str, position: FeedPosition | None, label_strings: Iterable[str], keep: int
) -> None:
    """Queue, in the caller's transaction, the next feed version and the series it changed."""
    version = (0 if position is None else position.version) + 1
    old_floor = 0 if position is None else position.floor
    floor = max(old_floor, version - keep)
    epoch = secrets.token_hex(8) if position is None else position.epoch
    pipe.hset(feed_key(metric), mapping={"version": version, "floor": floor, "epoch": epoch})
    pipe.zadd(changes_key(metric), dict.fromkeys(label_strings, version))
    if floor > old_floor:
        pipe.zremrangebyscore(changes_key(metric), "-inf", floor)


def _replaces(sample: Sample, stored: str | None) -> bool:
    """Whether ``sample`` may replace the stored record of its series: newer, or the record is invalid."""
    kept = valid_sample(sample.key, stored)
    return kept is None or kept.timestamp <= sample.timestamp


def _group_by_metric(samples: Iterable[Sample]) -> dict[str, dict[str, Sample]]:
    """Samples per metric, per label string; of two samples of one series the newer source time wins."""
    grouped: dict[str, dict[str, Sample]] = {}
    for sample in samples:
        series = grouped.setdefault(sample.key.metric, {})
        label_string = sample.key.label_string
        previous = series.get(label_string)
        if previous is None or sample.timestamp >= previous.timestamp:
            series[label_string] = sample
    return grouped


class Store:
    """Synchronous access to the schema, for collectors, the CLI and dashboards' helpers."""

    def __init__(
        self,
        client: SyncClient,
        *,
        history_length: int = DEFAULT_HISTORY_LENGTH,
        on_invalid: InvalidRecordHook | None = None,
        change_log_versions: int = CHANGE_LOG_VERSIONS,
    ) -> None:
        self.client = client
        self.history_length = history_length
        self.change_log_versions = change_log_versions
        self._cache = SeriesCache(on_invalid=on_invalid)

    @classmethod
    def connect(cls, settings: ConnectionSettings, *, history_length: int = DEFAULT_HISTORY_LENGTH) -> Store:
        with translate_errors("connect"):
            return cls(connect(settings), history_length=history_length)

    def close(self) -> None:
        self.client.close()

    def ping(self) -> bool:
        with translate_errors("ping"):
            return bool(self.client.ping())

    # -- writing -----------------------------------------------------------------------------------

    def write(self, samples: Iterable[Sample]) -> int:
        """Write samples, one atomic transaction per metric; returns how many were applied.

        A sample older (by source timestamp) than the stored one of its series is not applied, so two
        overlapping collector runs can never move a series back in time.
        """
        applied = 0
        metrics: list[str] = []
        for metric, series in _group_by_metric(samples).items():
            applied += self._write_metric(metric, series)
            metrics.append(metric)
        if metrics:
            with translate_errors("register metrics"):
                pipe = self.client.pipeline(transaction=False)
                pipe.sadd(METRICS_KEY, *metrics)
                pipe.set(SCHEMA_KEY, SCHEMA_VERSION)
                pipe.execute()
        return applied

    def _write_metric(self, metric: str, series: Mapping[str, Sample]) -> int:
        key = latest_key(metric)
        fields = list(series)
        for _attempt in range(WRITE_ATTEMPTS):
            with translate_errors(f"write {metric}"), self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key, feed_key(metric))
                    stored = pipe.hmget(key, fields)
                    position = _read_feed(pipe, metric)
                    # An invalid stored record (e.g. an inf time from an old writer) never blocks a write.
                    fresh = {
                        label_string: sample
                        for label_string, sample, current in zip(fields, series.values(), stored, strict=True)
                        if _replaces(sample, current)
                    }
                    pipe.multi()
                    if fresh:
                        pipe.hset(key, mapping={name: encode_sample(s) for name, s in fresh.items()})
                        _log_changes(pipe, metric, position, fresh, self.change_log_versions)
                        self._append_history(pipe, metric, fresh)
                        newest = max(s.collected_at for s in fresh.values())
                        meta: dict[str, float] = {"updated_at": newest}
                        for sample in fresh.values():
                            if sample.source:
                                meta[SOURCE_FIELD_PREFIX + sample.source] = sample.collected_at
                        pipe.hset(meta_key(metric), mapping=meta)
                    pipe.execute()
                    return len(fresh)
                except redis.exceptions.WatchError:
                    logger.debug("concurrent write to %s, retrying", metric)
        raise StoreError(f"gave up writing {metric}: {WRITE_ATTEMPTS} conflicting concurrent writes")

    def _append_history(self, pipe: Any, metric: str, fresh: Mapping[str, Sample]) -> None:
        if self.history_length <= 0:
            return
        for label_string, sample in fresh.items():
            pipe.xadd(
                history_key(metric, series_id(label_string)),
                {"v": sample.value, "t": sample.timestamp, "c": sample.collected_at},
                maxlen=self.history_length,
                approximate=True,
            )

    def describe(self, metric: str, *, unit: str = "", description: str = "") -> None:
        """Record a metric's unit and description for discovery and dashboards."""
        validate_metric_name(metric)
        with translate_errors(f"describe {metric}"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(meta_key(metric), mapping={"unit": unit, "description": description})
            pipe.sadd(METRICS_KEY, metric)
            pipe.execute()

    # -- reading -----------------------------------------------------------------------------------

    def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        """The latest sample of every series of ``metric`` that ``selector`` selects.

        Sorted by canonical label string, so the order is stable from read to read.
        """
        with translate_errors(f"read {metric}"):
            entries: dict[str, str] = self.client.hgetall(latest_key(metric))
        return select(metric, entries, selector, self._cache)

    def read_history(self, key: SeriesKey, *, count: int = 100) -> list[HistoryPoint]:
        """Up to ``count`` newest history points of one series, oldest first."""
        with translate_errors(f"read history of {key.metric}"):
            entries = self.client.xrevrange(history_key(key.metric, key.series_id), count=count)
        points = [HistoryPoint(float(row["v"]), float(row["t"]), float(row["c"])) for _id, row in entries]
        points.reverse()
        return points

    def metric_names(self) -> set[str]:
        with translate_errors("list metrics"):
            return set(self.client.smembers(METRICS_KEY))

    def list_metrics(self) -> list[MetricInfo]:
        names = sorted(self.metric_names())
        with translate_errors("describe metrics"):
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(meta_key(name))
                pipe.hlen(latest_key(name))
            results = pipe.execute()
        return [metric_info(name, results[2 * i], int(results[2 * i + 1])) for i, name in enumerate(names)]

    # -- retiring ----------------------------------------------------------------------------------

    def retire(self, keys: Iterable[SeriesKey]) -> int:
        """Remove the given series (latest value and history) now; returns how many existed."""
        by_metric: dict[str, list[str]] = {}
        for key in keys:
            by_metric.setdefault(key.metric, []).append(key.label_string)
        return sum(self._retire_series(metric, names) for metric, names in by_metric.items())

    def _retire_series(self, metric: str, label_strings: Sequence[str]) -> int:
        key, action = latest_key(metric), f"retire series of {metric}"
        for _attempt in range(WRITE_ATTEMPTS):
            with translate_errors(action), self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key, feed_key(metric))
                    position = _read_feed(pipe, metric)
                    pipe.multi()
                    pipe.hdel(key, *label_strings)
                    pipe.delete(*(history_key(metric, series_id(name)) for name in label_strings))
                    _log_changes(pipe, metric, position, label_strings, self.change_log_versions)
                    return int(pipe.execute()[0])
                except redis.exceptions.WatchError:
                    logger.debug("concurrent write to %s, retrying", metric)
        raise StoreError(f"gave up retiring series of {metric}: {WRITE_ATTEMPTS} conflicting writes")

    def retire_stale(
        self, max_idle_seconds: float, *, now: float | None = None, metrics: Sequence[str] | None = None
    ) -> list[SeriesKey]:
        """Remove series not written (collection time) for ``max_idle_seconds``; returns their keys.

        Metrics left without series leave ``tg:metrics``; their metadata stays.
        """
        cutoff = (time.time() if now is None else now) - max_idle_seconds
        retired: list[SeriesKey] = []
        emptied: list[str] = []
        for metric in sorted(self.metric_names() if metrics is None else metrics):
            removed, remaining = self._retire_metric(metric, cutoff)
            retired.extend(removed)
            if remaining == 0:
                emptied.append(metric)
        if emptied:
            with translate_errors("unregister metrics"):
                self.client.srem(METRICS_KEY, *emptied)
        return retired

    def _retirable(self, metric: str, label_string: str, raw: str, cutoff: float) -> bool:
        """Not written since ``cutoff`` (collection time), or an invalid record that no read serves."""
        sample = valid_sample(SeriesKey(metric, self._cache.labels(label_string)[1]), raw)
        return sample is None or sample.collected_at < cutoff

    def _retire_metric(self, metric: str, cutoff: float) -> tuple[list[SeriesKey], int]:
        key = latest_key(metric)
        for _attempt in range(WRITE_ATTEMPTS):
            action = f"retire series of {metric}"
            with translate_errors(action), self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key, feed_key(metric))
                    entries: dict[str, str] = pipe.hgetall(key)
                    stale = [
                        name for name, raw in entries.items() if self._retirable(metric, name, raw, cutoff)
                    ]
                    position = _read_feed(pipe, metric) if stale else None
                    pipe.multi()
                    if stale:
                        pipe.hdel(key, *stale)
                        pipe.delete(*(history_key(metric, series_id(name)) for name in stale))
                        _log_changes(pipe, metric, position, stale, self.change_log_versions)
                    pipe.execute()
                except redis.exceptions.WatchError:
                    continue
            keys = [SeriesKey(metric, self._cache.labels(name)[1]) for name in stale]
            return keys, len(entries) - len(stale)
        raise StoreError(f"gave up retiring series of {metric}: {WRITE_ATTEMPTS} conflicting writes")

    # -- collector status --------------------------------------------------------------------------

    def write_status(self, status: CollectorStatus) -> None:
        """Record a collector run: its status replaces the last one; usage totals accumulate."""
        with translate_errors(f"record status of {status.source}"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(COLLECTORS_KEY, status.source, encode_status(status))
            usage = usage_key(status.source)
            pipe.hincrby(usage, "runs", 1)
            pipe.hincrby(usage, "failed_runs", 0 if status.ok else 1)
            pipe.hincrby(usage, "samples_written", status.samples_written)
            pipe.hincrby(usage, "metrics_requested", status.metrics_requested)
            pipe.hincrbyfloat(usage, "duration_share_seconds", status.duration_share_seconds)
            for operation, count in status.api_calls.items():
                pipe.hincrby(usage, f"api_calls.{operation}", count)
            pipe.hsetnx(usage, "since", status.started_at)
            pipe.execute()

    def read_statuses(self) -> dict[str, CollectorStatus]:
        with translate_errors("read collector status"):
            raw: dict[str, str] = self.client.hgetall(COLLECTORS_KEY)
        return {source: decode_status(value) for source, value in sorted(raw.items())}

    def write_marker(self, source: str, name: str, value: float) -> None:
        """Remember one number for ``source`` across invocations (e.g. when its queues last had messages)."""
        with translate_errors(f"record {name} of {source}"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(marker_key(source), name, repr(float(value)))
            pipe.execute()

    def read_marker(self, source: str, name: str) -> float | None:
        """The number :meth:`write_marker` last stored, or None if never written."""
        with translate_errors(f"read {name} of {source}"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(marker_key(source), name)
            raw = pipe.execute()[0]
        return None if raw is None else float(raw)

    def read_usage(self, source: str) -> dict[str, float]:
        """Running totals for ``source`` since ``since`` (Unix seconds of its first recorded run)."""
        with translate_errors(f"read usage of {source}"):
            raw: dict[str, str] = self.client.hgetall(usage_key(source))
        usage: dict[str, float] = {}
        for name, value in raw.items():
            field_name = _RENAMED_USAGE_FIELDS.get(name, name)
            usage[field_name] = usage.get(field_name, 0.0) + float(value)
        return usage
