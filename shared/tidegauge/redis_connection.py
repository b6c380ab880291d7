"""Build redis-py clients (sync and asyncio, standalone or cluster) from a URL and settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis
import redis.asyncio
import redis.asyncio.cluster

logger = logging.getLogger(__name__)


class SyncClient(Protocol):
    """The part of redis-py's ``Redis`` / ``RedisCluster`` (``decode_responses=True``) tidegauge uses."""

    def ping(self) -> bool: ...
    def close(self) -> None: ...
    def pipeline(self, transaction: bool = ...) -> Any: ...
    def hgetall(self, name: str) -> dict[str, str]: ...
    def smembers(self, name: str) -> set[str]: ...
    def srem(self, name: str, *values: str) -> int: ...
    def xrevrange(self, name: str, max: str = ..., min: str = ..., count: int | None = ...) -> Any: ...


class AsyncClient(Protocol):
    """The asyncio counterpart of :class:`SyncClient`."""

    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...
    async def hgetall(self, name: str) -> dict[str, str]: ...
    async def hlen(self, name: str) -> int: ...
    async def hmget(self, name: str, keys: Sequence[str]) -> list[str | None]: ...
    async def hscan(
        self, name: str, cursor: int = ..., *, count: int | None = ...
    ) -> tuple[int, dict[str, str]]: ...
    async def smembers(self, name: str) -> set[str]: ...
    def pipeline(self, transaction: bool = ...) -> Any: ...


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How to reach Redis. ``cluster=None`` asks the server whether cluster mode is on.

    The URL carries TLS (``rediss://``), AUTH (``redis://user:password@host``) and the database;
    ``username``/``password`` given here win over the URL (e.g. a token from Secrets Manager).
    """

    url: str
    cluster: bool | None = None
    username: str | None = None
    password: str | None = None
    tls_ca_file: str | None = None
    socket_timeout_seconds: float = 1.0

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": self.socket_timeout_seconds,
            "socket_connect_timeout": self.socket_timeout_seconds,
        }
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password
        if self.tls_ca_file and self.url.startswith("rediss://"):
            options["ssl_ca_certs"] = self.tls_ca_file
        return options


CLUSTER_REINITIALIZE_STEPS = 1
"""Re-read the slot map on EVERY MOVED or connection error. redis-py's default (every 5th) never
fires for tidegauge's writes: each write is a new transaction pipeline whose error count starts at 0
and gives up after fewer than 5 attempts, so a collector kept writing to a dead primary for ever."""


def _cluster_enabled(settings: ConnectionSettings) -> bool:
    if settings.cluster is not None:
        return settings.cluster
    probe = redis.Redis.from_url(settings.url, **settings.client_options())
    try:
        info = cast(Mapping[str, Any], probe.info("cluster"))
        return bool(int(info.get("cluster_enabled", 0)))
    finally:
        probe.close()


async def cluster_enabled_async(settings: ConnectionSettings) -> bool:
    """Like :func:`connect`'s detection, without blocking an event loop (raises redis-py errors)."""
    if settings.cluster is not None:
        return settings.cluster
    probe = redis.asyncio.Redis.from_url(settings.url, **settings.client_options())
    try:
        info = cast(Mapping[str, Any], await probe.info("cluster"))
        return bool(int(info.get("cluster_enabled", 0)))
    finally:
        await probe.aclose()


def connect(settings: ConnectionSettings) -> SyncClient:
    """A synchronous client; cluster mode is detected when ``settings.cluster`` is None."""
    options = settings.client_options()
    if _cluster_enabled(settings):
        options["reinitialize_steps"] = CLUSTER_REINITIALIZE_STEPS
        return cast(SyncClient, redis.RedisCluster.from_url(settings.url, **options))
    return cast(SyncClient, redis.Redis.from_url(settings.url, **options))


def connect_async(settings: ConnectionSettings, *, cluster: bool | None = None) -> AsyncClient:
    """An asyncio client. Cluster detection talks to the server, so do it once at start-up (sync)."""
    enabled = settings.cluster if cluster is None else cluster
    if enabled is None:
        enabled = _cluster_enabled(settings)
    options = settings.client_options()
    if enabled:
        options["reinitialize_steps"] = CLUSTER_REINITIALIZE_STEPS
        return cast(AsyncClient, redis.asyncio.cluster.RedisCluster.from_url(settings.url, **options))
    return cast(AsyncClient, redis.asyncio.Redis.from_url(settings.url, **options))
