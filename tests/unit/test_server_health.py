"""Readiness ignores Redis; Redis health logs an outage once, a summary per interval, and its end."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tidegauge.server.health import Readiness, RedisHealth
from tidegauge.store import StoreUnavailable


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_readiness_fails_only_while_draining() -> None:
    readiness = Readiness()
    assert asyncio.run(readiness.problem()) is None
    readiness.draining = True
    assert asyncio.run(readiness.problem()) == "shutting down"


def test_redis_outage_logs_once_then_one_summary_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeMonotonic()
    health = RedisHealth(summary_interval_seconds=60, monotonic=clock)
    health.succeeded()
    caplog.set_level(logging.INFO, logger="tidegauge.server.health")
    caplog.clear()
    # GIVEN Redis fails 1,000 times in 59 s THEN one WARNING, and the gauge says down
    for _ in range(1000):
        health.failed(StoreUnavailable("refused"))
        clock.now += 0.059
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert health.up is False
    # WHEN the interval has passed THEN one summary with the count of failures since the first line
    clock.now += 2.0
    health.failed(StoreUnavailable("refused"))
    assert len(caplog.records) == 2
    assert "1000 failed reads" in caplog.records[1].getMessage()
    # WHEN Redis answers again THEN one line saying so, and the gauge says up
    health.succeeded()
    health.succeeded()
    assert len(caplog.records) == 3
    assert "answers again" in caplog.records[2].getMessage()
    assert "1001 failed reads" in caplog.records[2].getMessage()
    assert health.up is True
