"""The read side of the Redis schema on redis-py's asyncio client, for the API server.

Key names, records and the change feed's layout are :mod:`tidegauge.store`'s (the one owner of the
schema); this module reads them without blocking an event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

from tidegauge.model import CollectorStatus, HistoryPoint, MetricInfo, Sample, SeriesKey
from tidegauge.records import (
    Changes,
    FeedPosition,
    InvalidRecordHook,
    LabelMatcher,
    SeriesCache,
    decode_feed,
    decode_status,
    select,
)
from tidegauge.redis_connection import AsyncClient, ConnectionSettings, connect_async
from tidegauge.store import (
    COLLECTORS_KEY,
    FEED_FIELDS,
    METRICS_KEY,
    SCAN_COUNT,
    changes_key,
    feed_key,
    history_key,
    latest_key,
    meta_key,
    metric_info,
    translate_errors,
)


class AsyncStore:
    """The read side of the schema on redis-py's asyncio client, for the API server."""

    def __init__(self, client: AsyncClient, *, on_invalid: InvalidRecordHook | None = None) -> None:
        self.client = client
        self._cache = SeriesCache(on_invalid=on_invalid)

    @classmethod
    def connect(
        cls,
        settings: ConnectionSettings,
        *,
        cluster: bool | None = None,
        on_invalid: InvalidRecordHook | None = None,
    ) -> AsyncStore:
        with translate_errors("connect"):
            return cls(connect_async(settings, cluster=cluster), on_invalid=on_invalid)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> bool:
        with translate_errors("ping"):
            return bool(await self.client.ping())

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        with translate_errors(f"read {metric}"):
            entries: dict[str, str] = await self.client.hgetall(latest_key(metric))
        return select(metric, entries, selector, self._cache)

    async def read_changes(self, metric: str, since: int | None = None) -> Changes:
        """The feed's position and, when ``since`` is given, the series changed after that version.

        One pipeline, no transaction (redis-py's cluster transactions leak connections): the position,
        the log, and the position again. A trim or a new epoch between the reads shows in the second
        position, so a log cut short is never taken for a complete one.
        """
        with translate_errors(f"read changes of {metric}"):
            if since is None:
                return Changes(decode_feed(*await self.client.hmget(feed_key(metric), FEED_FIELDS)))
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(feed_key(metric), FEED_FIELDS)
            pipe.zrangebyscore(changes_key(metric), f"({since}", "+inf")
            pipe.hmget(feed_key(metric), FEED_FIELDS)
            before, changed, after = await pipe.execute()
        first, last = decode_feed(*before), decode_feed(*after)
        if first is None or last is None or first.epoch != last.epoch:
            return Changes(last)
        return Changes(FeedPosition(first.version, last.floor, first.epoch), tuple(changed))

    async def read_series(self, metric: str, label_strings: Sequence[str]) -> list[Sample | None]:
        """The latest sample of each series named; None where it is gone (or its record is invalid)."""
        if not label_strings:
            return []
        with translate_errors(f"read {metric}"):
            raws: list[str | None] = await self.client.hmget(latest_key(metric), label_strings)
        return [
            None if raw is None else self._cache.sample(metric, name, self._cache.labels(name)[1], raw)
            for name, raw in zip(label_strings, raws, strict=True)
        ]

    async def scan_latest(self, metric: str) -> AsyncIterator[list[tuple[str, Sample]]]:
        """Every valid latest sample of ``metric`` with its label string, in HSCAN steps of about
        ``SCAN_COUNT`` (unordered; a series may come twice), so a caller yields to its loop between steps."""
        cursor: int = 0
        while True:
            with translate_errors(f"read {metric}"):
                cursor, entries = await self.client.hscan(latest_key(metric), cursor, count=SCAN_COUNT)
            step: list[tuple[str, Sample]] = []
            for label_string, raw in entries.items():
                sample = self._cache.sample(metric, label_string, self._cache.labels(label_string)[1], raw)
                if sample is not None:
                    step.append((label_string, sample))
            yield step
            if not cursor:
                return

    async def metric_names(self) -> set[str]:
        with translate_errors("list metrics"):
            return set(await self.client.smembers(METRICS_KEY))

    async def list_metrics(self) -> list[MetricInfo]:
        names = sorted(await self.metric_names())
        infos: list[MetricInfo] = []
        with translate_errors("describe metrics"):
            for name in names:
                meta: dict[str, str] = await self.client.hgetall(meta_key(name))
                count = await self.client.hlen(latest_key(name))
                infos.append(metric_info(name, meta, int(count)))
        return infos

    async def read_statuses(self) -> dict[str, CollectorStatus]:
        with translate_errors("read collector status"):
            raw: dict[str, str] = await self.client.hgetall(COLLECTORS_KEY)
        return {source: decode_status(value) for source, value in sorted(raw.items())}

    async def read_histories(
        self, keys: Sequence[SeriesKey], *, count: int, after: Sequence[str | None] | None = None
    ) -> list[tuple[str | None, list[HistoryPoint]]]:
        """Up to ``count`` newest history points of each series, oldest first, in one pipeline, with the
        newest entry id read; with ``after[i]`` (an id), only entries newer than it."""
        if not keys:
            return []
        since = list(after) if after is not None else [None] * len(keys)
        with translate_errors(f"read history of {keys[0].metric}"):
            pipe = self.client.pipeline(transaction=False)
            for key, last in zip(keys, since, strict=True):
                stream = history_key(key.metric, key.series_id)
                if last is None:
                    pipe.xrevrange(stream, count=count)
                else:
                    pipe.xrevrange(stream, min=_next_id(last), count=count)
            replies = await pipe.execute()
        return [
            (entries[0][0] if entries else last, _history_points(entries))
            for entries, last in zip(replies, since, strict=True)
        ]


def _next_id(entry_id: str) -> str:
    """The smallest stream id after ``entry_id``: an inclusive start that works before Redis 6.2 too."""
    milliseconds, _, sequence = entry_id.partition("-")
    return f"{milliseconds}-{int(sequence or 0) + 1}"


def _history_points(entries: Sequence[tuple[str, Mapping[str, str]]]) -> list[HistoryPoint]:
    """XREVRANGE entries (newest first) as points, oldest first; an entry with a bad number is left out."""
    points: list[HistoryPoint] = []
    for _id, row in reversed(entries):
        try:
            points.append(HistoryPoint(float(row["v"]), float(row["t"]), float(row["c"])))
        except (KeyError, ValueError):
            continue
    return points
