"""Shared fixtures: real Redis-protocol servers on loopback, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import fakeredis
import pytest

from tidegauge.localredis import RedisCluster, RedisServer, RedisServerNotFound, find_server_binary
from tidegauge.redis_connection import ConnectionSettings, SyncClient, connect
from tidegauge.store import Store


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
