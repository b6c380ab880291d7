"""The writers' change feed and the server's view that follows it, on fakeredis, a real server and a real
three-node cluster: deltas read only what changed, and the view always ends equal to Redis."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import cast

import fakeredis
import fakeredis.aioredis
import pytest

from tidegauge.async_store import AsyncStore
from tidegauge.localredis import RedisCluster, RedisServer
from tidegauge.model import Sample, SeriesKey
from tidegauge.redis_connection import AsyncClient, ConnectionSettings, SyncClient, connect, connect_async
from tidegauge.selectors import parse_selector
from tidegauge.server.provider import ExternalMetricsProvider
from tidegauge.server.view import FollowedMetric
from tidegauge.store import Store, changes_key, feed_key, latest_key

METRIC = "sqs_messages"
NOW = 1_790_000_000.0


@dataclass
class Backend:
    """One Redis (fake, real or cluster): a sync client for writers, and a factory of async clients."""

    sync: SyncClient
    async_client: Callable[[], AsyncClient]


@pytest.fixture(params=["fakeredis", "redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        sync = cast(SyncClient, fakeredis.FakeRedis(server=server, decode_responses=True))
        yield Backend(
            sync,
            lambda: cast(AsyncClient, fakeredis.aioredis.FakeRedis(server=server, decode_responses=True)),
        )
        return
    if request.param == "redis":
        settings = ConnectionSettings(cast(RedisServer, request.getfixturevalue("redis_server")).url)
        cluster = False
    else:
        settings = ConnectionSettings(cast(RedisCluster, request.getfixturevalue("redis_cluster")).url)
        cluster = True
    sync = connect(settings)
    sync.flushall()  # type: ignore[attr-defined]
    yield Backend(sync, lambda: connect_async(settings, cluster=cluster))
    sync.close()


def sample(queue: str, value: float, age: float = 0.0, state: str = "visible") -> Sample:
    return Sample.of(METRIC, {"queue": queue, "state": state}, value, NOW - age, source="bench")


def in_redis(store: Store) -> dict[str, tuple[float, float]]:
    return {s.key.label_string: (s.value, s.timestamp) for s in store.read_latest(METRIC)}


def in_view(view: FollowedMetric) -> dict[str, tuple[float, float]]:
    return {
        name: (entry.value.value, entry.timestamp)
        for name in view.series.label_strings()
        if (entry := view.series.get(name)) is not None
    }


def run(backend: Backend, scenario: Callable[[AsyncStore], Awaitable[None]]) -> None:
    async def main() -> None:
        reader = AsyncStore(backend.async_client())
        try:
            await scenario(reader)
        finally:
            await reader.close()

    asyncio.run(main())


def dropped(metric: str, label_string: str, error: Exception) -> None:
    raise AssertionError(f"{metric} {label_string}: {error}")


def test_write_bumps_the_version_and_logs_the_changed_series_in_one_slot(backend: Backend) -> None:
    # GIVEN a writer
    store = Store(backend.sync, history_length=0)
    # WHEN it writes two batches THEN the version counts them and the log names each series' last change
    store.write([sample("a", 1), sample("b", 2)])
    store.write([sample("b", 3, age=-1)])
    feed = backend.sync.hgetall(feed_key(METRIC))
    assert (feed["version"], feed["floor"]) == ("2", "0")
    assert len(feed["epoch"]) == 16
    log = backend.sync.zrange(changes_key(METRIC), 0, -1, withscores=True)  # type: ignore[attr-defined]
    assert sorted(log) == [("queue=a,state=visible", 1.0), ("queue=b,state=visible", 2.0)]


def test_view_started_mid_stream_reads_once_then_only_what_changed(backend: Backend) -> None:
    # GIVEN 200 series written before the server starts
    store = Store(backend.sync, history_length=0)
    store.write(sample(f"q{n:03d}", n) for n in range(200))

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        # WHEN the server's view first refreshes THEN it reads the whole metric once
        await view.refresh()
        assert (view.full_reads, view.series_read, len(view.series)) == (1, 200, 200)
        # AND WHEN three series change and one is retired THEN the next refresh reads those four only
        store.write([sample("q001", 100, age=-1), sample("q002", 200, age=-1), sample("new", 7, age=-1)])
        store.retire([SeriesKey.of(METRIC, {"queue": "q003", "state": "visible"})])
        await view.refresh()
        assert (view.full_reads, view.series_read) == (1, 204)
        assert in_view(view) == in_redis(store)
        assert "queue=q003,state=visible" not in view.series
        # AND a refresh with nothing changed reads no series
        await view.refresh()
        assert view.series_read == 204

    run(backend, scenario)


def test_series_retired_as_stale_leave_the_view_by_the_delta(backend: Backend) -> None:
    # GIVEN a view of a fresh series and one last collected an hour ago
    store = Store(backend.sync, history_length=0)
    store.write(
        [sample("fresh", 1), Sample.of(METRIC, {"queue": "old"}, 2, NOW - 3600, collected_at=NOW - 3600)]
    )

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        await view.refresh()
        assert len(view.series) == 2
        # WHEN the collector's housekeeping retires series idle for ten minutes
        retired = store.retire_stale(600, now=NOW)
        await view.refresh()
        # THEN the view drops it without reading the metric again
        assert [key.label_string for key in retired] == ["queue=old"]
        assert (view.full_reads, sorted(in_view(view))) == (1, ["queue=fresh,state=visible"])

    run(backend, scenario)


def test_most_series_changed_is_read_whole_in_steps(backend: Backend) -> None:
    # GIVEN a view of 400 series
    store = Store(backend.sync, history_length=0)
    store.write(sample(f"q{n:03d}", n) for n in range(400))

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        await view.refresh()
        # WHEN 300 of them change THEN the refresh reads the metric whole rather than field by field
        store.write(sample(f"q{n:03d}", n + 1000, age=-1) for n in range(300))
        await view.refresh()
        assert (view.full_reads, view.series_read) == (2, 800)
        assert in_view(view) == in_redis(store)
        # AND a few changes later go back to the delta
        store.write([sample("q001", 5, age=-2)])
        await view.refresh()
        assert (view.full_reads, view.series_read) == (2, 801)

    run(backend, scenario)


def test_writer_racing_the_view_ends_equal_to_redis(backend: Backend) -> None:
    # GIVEN a writer thread rewriting and retiring series while the server's view refreshes
    store = Store(backend.sync, history_length=0)
    store.write(sample(f"q{n:02d}", n) for n in range(50))
    done = threading.Event()

    def writer() -> None:
        try:
            for round_ in range(1, 60):
                store.write(sample(f"q{(round_ * 7 + k) % 80:02d}", round_, age=-round_) for k in range(5))
                if round_ % 10 == 0:
                    store.retire([SeriesKey.of(METRIC, {"queue": f"q{round_:02d}", "state": "visible"})])
        finally:
            done.set()

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        thread = threading.Thread(target=writer)
        thread.start()
        refreshes = 0
        while not done.is_set() and refreshes < 10_000:
            await view.refresh()
            refreshes += 1
        thread.join(30)
        # WHEN the writer has stopped and the view refreshes once more THEN it equals Redis
        await view.refresh()
        assert in_view(view) == in_redis(store)
        assert refreshes > 1

    run(backend, scenario)


def test_redis_restarted_empty_leaves_no_ghosts_even_when_the_new_version_catches_up(
    backend: Backend,
) -> None:
    # GIVEN a view that holds two series at feed version 2
    store = Store(backend.sync, history_length=0)
    store.write([sample("a", 1)])
    store.write([sample("b", 2)])

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        await view.refresh()
        assert len(view.series) == 2
        # WHEN Redis loses everything (a restart without persistence) THEN the view drops the series
        backend.sync.flushall()  # type: ignore[attr-defined]
        await view.refresh()
        assert in_view(view) == {}
        # AND WHEN writers start again and reach the same version number before the next refresh
        await view.refresh()
        store.write([sample("c", 3)])
        store.write([sample("c", 4, age=-1)])
        await view.refresh()
        # THEN the view holds what Redis holds now, nothing of before
        assert in_view(view) == in_redis(store) == {"queue=c,state=visible": (4.0, NOW + 1)}

    run(backend, scenario)


def test_new_epoch_at_the_same_version_is_a_full_read(backend: Backend) -> None:
    # GIVEN a view at version 2 of one feed
    store = Store(backend.sync, history_length=0)
    store.write([sample("a", 1)])
    store.write([sample("b", 2)])

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        await view.refresh()
        # WHEN Redis is emptied and refilled to version 2 between two refreshes
        backend.sync.flushall()  # type: ignore[attr-defined]
        store.write([sample("c", 3)])
        store.write([sample("d", 4)])
        await view.refresh()
        # THEN the other epoch tells the view to read everything again: no ghost of a or b
        assert view.full_reads == 2
        assert in_view(view) == in_redis(store)
        assert sorted(in_view(view)) == ["queue=c,state=visible", "queue=d,state=visible"]

    run(backend, scenario)


def test_log_trimmed_past_the_views_version_makes_a_full_read(backend: Backend) -> None:
    # GIVEN a writer whose log keeps 3 versions, and a view at version 1
    store = Store(backend.sync, history_length=0, change_log_versions=3)
    store.write([sample("a", 1)])

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        await view.refresh()
        # WHEN 5 more versions are written, so the log no longer reaches back to version 1
        for n in range(5):
            store.write([sample(f"b{n}", n)])
        feed = backend.sync.hgetall(feed_key(METRIC))
        assert (feed["version"], feed["floor"]) == ("6", "3")
        assert backend.sync.zcard(changes_key(METRIC)) == 3  # type: ignore[attr-defined]
        await view.refresh()
        # THEN the view read everything again and equals Redis
        assert view.full_reads == 2
        assert in_view(view) == in_redis(store)
        # AND within the log's reach it goes back to deltas
        store.write([sample("a", 9, age=-1)])
        await view.refresh()
        assert view.full_reads == 2
        assert in_view(view) == in_redis(store)

    run(backend, scenario)


def test_data_written_before_the_feed_existed_is_read_in_full_each_refresh(backend: Backend) -> None:
    # GIVEN series an older writer stored (no feed keys), and a newer writer that then writes one more
    store = Store(backend.sync, history_length=0)
    store.write([sample("old", 1)])
    backend.sync.delete(feed_key(METRIC), changes_key(METRIC))  # type: ignore[attr-defined]

    async def scenario(reader: AsyncStore) -> None:
        view = FollowedMetric(METRIC, reader, dropped)
        # WHEN the view refreshes THEN it serves the old data (a full read, nothing to follow)
        await view.refresh()
        await view.refresh()
        assert (view.full_reads, in_view(view)) == (2, in_redis(store))
        # AND once a new writer created the feed, one more full read and then deltas
        store.write([sample("new", 2)])
        await view.refresh()
        store.write([sample("new", 3, age=-1)])
        await view.refresh()
        assert view.full_reads == 3
        assert in_view(view) == in_redis(store)
        assert len(in_view(view)) == 2

    run(backend, scenario)


def test_provider_sees_a_write_at_the_first_request_after_the_refresh_interval(backend: Backend) -> None:
    from tests.support.server_harness import server_config

    store = Store(backend.sync, history_length=0)
    store.write([sample("a", 1, age=5)])
    now = [100.0]
    config = server_config("redis://127.0.0.1:1/0")

    async def scenario(reader: AsyncStore) -> None:
        provider = ExternalMetricsProvider(
            reader, config, clock=lambda: NOW, monotonic=lambda: now[0], refresh_seconds=0.5
        )

        async def value() -> float:
            items = await provider.get_external_metric("shop", parse_selector("queue=a"), METRIC)
            return items[0].value

        assert await value() == 1
        # GIVEN a collector writes a new value
        store.write([sample("a", 2)])
        # WHEN the HPA asks within the refresh interval THEN it may still see the old one
        now[0] += 0.4
        assert await value() == 1
        # AND at the first request after the interval THEN it sees the new one
        now[0] += 0.2
        assert await value() == 2

    run(backend, scenario)


def test_keys_of_the_feed_share_the_metrics_slot() -> None:
    from redis.crc import key_slot

    slots = {key_slot(k.encode()) for k in (latest_key(METRIC), feed_key(METRIC), changes_key(METRIC))}
    assert len(slots) == 1
