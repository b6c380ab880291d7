"""The server's Redis: connected once Redis answers, every outcome reported to :class:`RedisHealth`.

Cluster mode is never guessed: with ``redis.cluster`` unset it is asked of Redis on first contact, and
until Redis answers every read is :class:`StoreUnavailable` (a 503), retried at most once per
``retry_seconds`` so an outage costs no connection attempt per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from tidegauge.async_store import AsyncStore
from tidegauge.errors import UsageError
from tidegauge.model import HistoryPoint, Sample, SeriesKey
from tidegauge.records import Changes, InvalidRecordHook, LabelMatcher
from tidegauge.redis_connection import ConnectionSettings, cluster_enabled_async
from tidegauge.server.health import RedisHealth
from tidegauge.server.view import FeedReader, NoChangeFeed
from tidegauge.store import StoreUnavailable, translate_errors

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_SECONDS = 1.0


class ServerStore(Protocol):
    """What the server needs of :class:`AsyncStore` (tests pass a wrapper)."""

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]: ...
    async def metric_names(self) -> set[str]: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


@runtime_checkable
class HistoryStore(Protocol):
    """A store that also reads history streams (:class:`AsyncStore` does; test wrappers may not)."""

    async def read_histories(
        self, keys: Sequence[SeriesKey], *, count: int, after: Sequence[str | None] | None = None
    ) -> list[tuple[str | None, list[HistoryPoint]]]: ...


async def connect_when_answering(
    settings: ConnectionSettings, on_invalid: InvalidRecordHook | None = None
) -> AsyncStore:
    """An :class:`AsyncStore` in the mode the config names, or else the mode Redis reports now."""
    with translate_errors("detect whether Redis runs in cluster mode"):
        cluster = await cluster_enabled_async(settings)
    if settings.cluster is None:
        logger.info("Redis runs in %s mode", "cluster" if cluster else "standalone")
    return AsyncStore.connect(settings, cluster=cluster, on_invalid=on_invalid)


def _feed_of(store: ServerStore) -> FeedReader:
    if not isinstance(store, FeedReader):
        raise NoChangeFeed(f"{type(store).__name__} has no change feed")
    return store


async def _same(store: ServerStore) -> ServerStore:
    return store


class RedisUrlFile:
    """The Redis URL in a file (a mounted Secret key), re-read so that a rotated password needs no restart.

    Kubernetes rewrites a mounted Secret in place when it changes; :meth:`refresh` notices. A file that
    cannot be read, or does not hold a ``redis://`` / ``rediss://`` URL, keeps the URL last read (logged).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        url = self._read()
        if url is None:
            raise RedisUrlFileError(
                f"--redis-url-file {path}: no redis:// or rediss:// URL in it, or it cannot be read"
            )
        self.url = url

    def _read(self) -> str | None:
        try:
            text = Path(self.path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            logger.warning("cannot read the Redis URL file %s: %s", self.path, error)
            return None
        return text if text.startswith(("redis://", "rediss://")) else None

    def refresh(self) -> bool:
        """Re-read the file; True when it now holds another URL (which :attr:`url` then is)."""
        url = self._read()
        if url is None or url == self.url:
            return False
        self.url = url
        return True


class RedisUrlFileError(UsageError):
    """The Redis URL file given at start holds no URL."""

    hint = "mount the Secret key that holds the URL (see k8s/base/deployment.yaml) or pass --redis-url"


class RedisBackend:
    """A :class:`ServerStore` that connects lazily and tells ``health`` whether Redis answered."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[ServerStore]],
        health: RedisHealth,
        *,
        retry_seconds: float = RETRY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self.health = health
        self._retry_seconds = retry_seconds
        self._monotonic = monotonic
        self._store: ServerStore | None = None
        self._lock = asyncio.Lock()
        self._failed_at = float("-inf")
        self._failure: StoreUnavailable | None = None

    async def _connected(self) -> ServerStore:
        if self._store is not None:
            return self._store
        async with self._lock:
            if self._store is None:
                if self._failure is not None and self._monotonic() - self._failed_at < self._retry_seconds:
                    raise StoreUnavailable(str(self._failure))
                try:
                    self._store = await self._connect()
                except StoreUnavailable as error:
                    self._failed_at, self._failure = self._monotonic(), error
                    raise
            return self._store

    async def _call(self, action: Callable[[ServerStore], Awaitable[T]]) -> T:
        try:
            result = await action(await self._connected())
        except StoreUnavailable as error:
            self.health.failed(error)
            raise
        self.health.succeeded()
        return result

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        return await self._call(lambda store: store.read_latest(metric, selector))

    async def read_histories(
        self, keys: Sequence[SeriesKey], *, count: int, after: Sequence[str | None] | None = None
    ) -> list[tuple[str | None, list[HistoryPoint]]]:
        """As :meth:`AsyncStore.read_histories`; a store without histories has none to give."""

        async def read(store: ServerStore) -> list[tuple[str | None, list[HistoryPoint]]]:
            if isinstance(store, HistoryStore):
                return await store.read_histories(keys, count=count, after=after)
            return [(None, []) for _ in keys]

        return await self._call(read)

    async def metric_names(self) -> set[str]:
        return await self._call(lambda store: store.metric_names())

    async def read_changes(self, metric: str, since: int | None = None) -> Changes:
        """The store's change feed; :class:`NoChangeFeed` when the store has none."""
        return await self._call(lambda store: _feed_of(store).read_changes(metric, since))

    async def read_series(self, metric: str, label_strings: Sequence[str]) -> list[Sample | None]:
        return await self._call(lambda store: _feed_of(store).read_series(metric, label_strings))

    async def scan_latest(self, metric: str) -> AsyncIterator[list[tuple[str, Sample]]]:
        steps = _feed_of(await self._call(_same)).scan_latest(metric)
        while True:
            try:
                step = await self._call(lambda _store: anext(steps))
            except StopAsyncIteration:
                return
            yield step

    async def ping(self) -> bool:
        return await self._call(lambda store: store.ping())

    async def check(self, timeout_seconds: float) -> None:
        """Ping Redis (for the health gauge between requests); a failure is recorded, not raised."""
        try:
            await asyncio.wait_for(self.ping(), timeout_seconds)
        except StoreUnavailable:
            pass
        except TimeoutError:
            self.health.failed(StoreUnavailable(f"Redis did not answer a ping within {timeout_seconds:g} s"))

    async def reset(self) -> None:
        """Drop the connection: the next read connects anew (with settings read anew)."""
        async with self._lock:
            store, self._store, self._failure = self._store, None, None
        if store is not None:
            await store.close()

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
