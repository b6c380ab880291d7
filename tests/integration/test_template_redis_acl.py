"""The access string template.yaml gives the ElastiCache user allows everything tidegauge does to Redis,
and nothing dangerous: checked with the same ACL on real servers, standalone and cluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from samtranslator.yaml_helper import yaml_parse

from tidegauge.async_store import AsyncStore
from tidegauge.localredis import RedisCluster, RedisServer
from tidegauge.model import CollectorStatus, Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "tidegauge"
PASSWORD = "an-acl-test-password-0123456789"


def access_string() -> str:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    user = template["Resources"]["CacheUser"]["Properties"]
    assert user["UserName"] == USERNAME
    value: str = user["AccessString"]
    return value


def admit(ports: list[int]) -> None:
    """ACL SETUSER on every node, as ElastiCache does for the users of a user group."""
    for port in ports:
        admin = redis.Redis(host="127.0.0.1", port=port)
        try:
            admin.execute_command(
                "ACL", "SETUSER", USERNAME, "reset", *access_string().split(), f">{PASSWORD}"
            )
        finally:
            admin.close()


@pytest.fixture(params=["redis_server", "redis_cluster"])
def restricted_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "redis_server":
        server: RedisServer = request.getfixturevalue("redis_server")
        ports, url = [server.port], server.url
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        ports, url = [node.port for node in cluster.nodes], cluster.url
    admit(ports)
    yield url
    for port in ports:
        admin = redis.Redis(host="127.0.0.1", port=port)
        admin.execute_command("ACL", "DELUSER", USERNAME)
        admin.close()


def settings(url: str) -> ConnectionSettings:
    # cluster=None: the collectors and the server detect cluster mode with INFO, as on ElastiCache.
    return ConnectionSettings(url, cluster=None, username=USERNAME, password=PASSWORD)


def test_collector_writes_and_maintenance_are_allowed(restricted_url: str) -> None:
    store = Store.connect(settings(restricted_url))
    try:
        now = time.time()
        store.describe("acl_probe", unit="messages")
        written = store.write([Sample.of("acl_probe", {"queue": "orders"}, 5, now, source="acl")])
        assert written == 1
        store.write_status(CollectorStatus("acl", "sqs", now - 1, now, ok=True))
        assert [s.value for s in store.read_latest("acl_probe")] == [5]
        assert "acl" in store.read_statuses()
        assert store.read_usage("acl")
        assert "acl_probe" in {m.name for m in store.list_metrics()}
        assert store.retire_stale(0, now=now + 60, metrics=["acl_probe"])
    finally:
        store.close()


def test_server_reads_are_allowed(restricted_url: str) -> None:
    writer = Store.connect(settings(restricted_url))
    writer.write([Sample.of("acl_read", {"queue": "orders"}, 7, time.time(), source="acl")])
    writer.close()

    async def read() -> list[float]:
        store = AsyncStore.connect(settings(restricted_url))
        try:
            assert await store.ping()
            assert "acl_read" in await store.metric_names()
            await store.read_statuses()
            return [sample.value for sample in await store.read_latest("acl_read")]
        finally:
            await store.close()

    assert asyncio.run(read()) == [7]


def test_dangerous_commands_and_foreign_keys_are_denied(restricted_url: str) -> None:
    client = redis.Redis.from_url(restricted_url, username=USERNAME, password=PASSWORD)
    try:
        for command in (("FLUSHALL",), ("CONFIG", "GET", "maxmemory"), ("KEYS", "*"), ("ACL", "LIST")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command("GET", "{tg}:not-ours")  # in this node's slot range or not: ACL first
    finally:
        client.close()
