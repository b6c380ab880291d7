"""The server's Redis connects on first contact, fails fast while Redis is away, and reports health."""

from __future__ import annotations

import asyncio

import pytest

from tidegauge.model import Sample
from tidegauge.records import LabelMatcher
from tidegauge.server.backend import RedisBackend, ServerStore
from tidegauge.server.health import RedisHealth
from tidegauge.store import StoreUnavailable


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class EmptyStore:
    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        return []

    async def metric_names(self) -> set[str]:
        return set()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def test_connection_is_retried_at_most_once_per_interval_until_redis_answers() -> None:
    clock = FakeMonotonic()
    attempts: list[float] = []
    reachable = False

    async def connect() -> ServerStore:
        attempts.append(clock.now)
        if not reachable:
            raise StoreUnavailable("Redis unreachable while trying to detect cluster mode")
        return EmptyStore()

    health = RedisHealth(monotonic=clock)
    backend = RedisBackend(connect, health, retry_seconds=1.0, monotonic=clock)

    async def scenario() -> None:
        nonlocal reachable
        # GIVEN Redis unreachable WHEN three reads arrive within the interval THEN one connection attempt
        for _ in range(3):
            with pytest.raises(StoreUnavailable, match="unreachable"):
                await backend.read_latest("sqs_messages")
        assert attempts == [100.0]
        assert health.up is False
        # WHEN Redis answers and the interval has passed THEN the next read connects and succeeds
        reachable = True
        clock.now += 1.5
        assert await backend.read_latest("sqs_messages") == []
        assert await backend.ping() is True
        assert attempts == [100.0, 101.5]
        assert health.up is True

    asyncio.run(scenario())
