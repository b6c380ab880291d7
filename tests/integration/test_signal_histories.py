"""Window histories on real Redis: one pipeline per answer, re-read only when a series changes."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from tests.support.clock import FakeClock
from tests.support.server_harness import seed
from tidegauge.async_store import AsyncStore
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample, SeriesKey
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server.histories import SeriesHistories, history_points
from tidegauge.server.types import ExternalMetricValue
from tidegauge.store import Store, history_key

NOW = 1_700_000_000.0


def test_histories_are_read_once_per_series_version(redis_server: RedisServer) -> None:
    # GIVEN two series with three points each
    samples = [
        Sample.of("sqs_messages", {"queue": queue}, value, NOW + 15 * step)
        for step, value in enumerate([1, 2, 3])
        for queue in ("a", "b")
    ]
    seed(redis_server.url, [], flush=True)
    for sample in samples:
        seed(redis_server.url, [sample])
    latest = [ExternalMetricValue("sqs_messages", {"queue": q}, NOW + 30, 3) for q in ("a", "b")]

    async def scenario() -> tuple[list[object], int, list[object], int]:
        store = AsyncStore.connect(ConnectionSettings(redis_server.url), cluster=False)
        histories = SeriesHistories(store, monotonic=FakeClock())
        try:
            # WHEN one answer's histories are asked twice THEN one pipeline, both series' points
            first = await histories.points("sqs_messages", latest, 10)
            await histories.points("sqs_messages", latest, 10)
            once = histories.reads
            # WHEN series b gets a newer value THEN it is read again (only what is new), and a is not
            seed(redis_server.url, [Sample.of("sqs_messages", {"queue": "b"}, 4, NOW + 45)])
            newer = [*latest[:1], ExternalMetricValue("sqs_messages", {"queue": "b"}, NOW + 45, 4)]
            second = await histories.points("sqs_messages", newer, 3)
            return list(first), once, list(second), histories.reads
        finally:
            await store.close()

    first, once, second, after = asyncio.run(scenario())

    expected = ((NOW, 1.0), (NOW + 15, 2.0), (NOW + 30, 3.0))
    assert first == [expected, expected]
    # THEN b holds its 3 newest points, the last being the new one; a is unchanged
    assert second == [expected, ((NOW + 15, 2.0), (NOW + 30, 3.0), (NOW + 45, 4.0))]
    assert (once, after) == (1, 2)


def test_points_read_cover_the_span_at_the_collectors_interval() -> None:
    assert history_points(60, 15) == 16
    assert history_points(86_400, 1) == 1440


@pytest.mark.parametrize("topology", ["redis_server", "redis_cluster"])
def test_read_histories_reads_whole_or_only_what_is_newer(
    topology: str, request: pytest.FixtureRequest
) -> None:
    # GIVEN three series of one metric (one hash tag: one slot in a cluster), four points each
    url = request.getfixturevalue(topology).url
    sync = Store.connect(ConnectionSettings(url))
    try:
        cast(Any, sync.client).flushall()
        for step in range(4):
            sync.write(Sample.of("jobs", {"queue": q}, step, NOW + step) for q in ("a", "b", "c"))
    finally:
        sync.close()
    keys = [SeriesKey.of("jobs", {"queue": q}) for q in ("a", "b", "c")]

    async def scenario() -> tuple[list[Any], list[Any]]:
        store = AsyncStore.connect(ConnectionSettings(url), cluster=topology == "redis_cluster")
        try:
            # WHEN read whole (newest 3), then only what follows each series' second entry
            whole = await store.read_histories(keys, count=3)
            raw = cast(Any, store.client)
            after = [(await raw.xrange(history_key("jobs", key.series_id), count=2))[1][0] for key in keys]
            newer = await store.read_histories(keys, count=10, after=after)
            return whole, newer
        finally:
            await store.close()

    whole, newer = asyncio.run(scenario())

    # THEN a whole read gives the newest points oldest first, and the newest id; "after", only the newer
    assert [[p.value for p in points] for _, points in whole] == [[1.0, 2.0, 3.0]] * 3
    assert [[p.value for p in points] for _, points in newer] == [[2.0, 3.0]] * 3
    assert [entry_id for entry_id, _ in newer] == [entry_id for entry_id, _ in whole]
