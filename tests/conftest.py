"""Shared fixtures: real Redis-protocol servers on loopback, started once per test session."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from typing import cast

import fakeredis
import pytest

from tidegauge.localredis import RedisCluster, RedisServer, RedisServerNotFound, find_server_binary
from tidegauge.redis_connection import ConnectionSettings, SyncClient, connect
from tidegauge.store import Store


def _uses_a_cluster(item: pytest.Item) -> bool:
    if item.get_closest_marker("cluster") is not None or "redis_cluster" in getattr(item, "fixturenames", ()):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(
        value in ("cluster", "redis_cluster") for value in callspec.params.values()
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that talks to a Redis Cluster carries the ``cluster`` marker, and may leave garbage.

    redis-py's asyncio cluster client leaves the connections of nodes it re-maps (a node killed or not
    up yet, a startup node renamed after discovery) to the garbage collector, which warns whenever it
    runs (redis-py #3572; still seen with 7.4.1). Those tests ignore ResourceWarning, and
    :func:`_collect_cluster_garbage` collects that garbage when they end and again before the next test
    starts, so it never warns in a test that does not use a cluster: every other test keeps
    ``filterwarnings = error``.
    """
    for item in items:
        if _uses_a_cluster(item):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.filterwarnings("ignore::ResourceWarning"))


_cluster_garbage_pending = False
"""Set when a cluster test ended: what it left may be freed only once pytest lets go of that test
(its captured log records hold tracebacks, and so clients), at the next test's set-up."""


def _collect_quietly() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(autouse=True)
def _collect_cluster_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    global _cluster_garbage_pending
    if _cluster_garbage_pending:
        _collect_quietly()
        _cluster_garbage_pending = False
    yield
    if request.node.get_closest_marker("cluster") is not None:
        _collect_quietly()
        _cluster_garbage_pending = True


def _server_binary() -> str:
    try:
        return find_server_binary()
    except RedisServerNotFound as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real standalone server on a free 127.0.0.1 port."""
    with RedisServer(binary=_server_binary()) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real three-node Redis Cluster on 127.0.0.1, slots split evenly."""
    with RedisCluster(binary=_server_binary()) as cluster:
        yield cluster


def _flushed(client: SyncClient) -> SyncClient:
    client.flushall()  # type: ignore[attr-defined]
    return client


@pytest.fixture(params=["fakeredis", "redis", "cluster"])
def redis_client(request: pytest.FixtureRequest) -> Iterator[SyncClient]:
    """The same test against fakeredis, a real server and a real cluster, each emptied first."""
    if request.param == "fakeredis":
        # fakeredis implements the same commands; its signatures are looser than redis-py's typed stubs.
        client: SyncClient = cast(SyncClient, fakeredis.FakeRedis(decode_responses=True))
    elif request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        client = connect(ConnectionSettings(server.url))
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        client = connect(ConnectionSettings(cluster.url))
    yield _flushed(client)
    client.close()


@pytest.fixture
def store(redis_client: SyncClient) -> Store:
    return Store(redis_client, history_length=50)
