"""Connecting to real servers: cluster detection, AUTH, TLS, and an unreachable server."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import cast

import pytest
import redis
import trustme

from tests.support.tls_proxy import tls_proxy
from tidegauge.async_store import AsyncStore
from tidegauge.localredis import RedisCluster, RedisServer, free_port
from tidegauge.model import Sample
from tidegauge.redis_connection import ConnectionSettings, connect
from tidegauge.selectors import parse_selector
from tidegauge.store import Store, StoreUnavailable


def test_cluster_mode_is_detected(redis_server: RedisServer, redis_cluster: RedisCluster) -> None:
    standalone = connect(ConnectionSettings(redis_server.url))
    clustered = connect(ConnectionSettings(redis_cluster.url))
    try:
        assert type(cast(object, standalone)) is redis.Redis
        assert type(cast(object, clustered)) is redis.RedisCluster
    finally:
        standalone.close()
        clustered.close()


def test_auth_from_url_and_from_settings() -> None:
    with RedisServer(extra_args=("--requirepass", "s3cret")) as server:
        port = server.port
        # GIVEN no password THEN the server refuses
        with pytest.raises(redis.AuthenticationError):
            connect(ConnectionSettings(f"redis://127.0.0.1:{port}/0", cluster=False)).ping()
        # WHEN the password is in the URL, or given apart (a Secrets Manager token), THEN it works
        in_url = Store.connect(ConnectionSettings(f"redis://:s3cret@127.0.0.1:{port}/0"))
        apart = Store.connect(ConnectionSettings(f"redis://127.0.0.1:{port}/0", password="s3cret"))
        in_url.write([Sample.of("m", {"a": "1"}, 1.0, 1_700_000_000.0)])
        assert [s.value for s in apart.read_latest("m")] == [1.0]
        in_url.close()
        apart.close()


def test_tls_url_with_ca_file(redis_server: RedisServer, tmp_path: object) -> None:
    # GIVEN a TLS endpoint whose certificate chains to a private CA
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = f"{tmp_path}/ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    with tls_proxy(server_context, redis_server.port) as port:
        # WHEN the client connects with rediss:// and the CA file THEN reads and writes work
        settings = ConnectionSettings(f"rediss://127.0.0.1:{port}/0", cluster=False, tls_ca_file=ca_file)
        store = Store.connect(settings)
        store.write([Sample.of("tls_metric", {"a": "1"}, 3.0, 1_700_000_000.0)])
        assert [s.value for s in store.read_latest("tls_metric")] == [3.0]
        store.close()
        # AND without the CA the certificate is refused
        untrusted = ConnectionSettings(f"rediss://127.0.0.1:{port}/0", cluster=False)
        with pytest.raises(StoreUnavailable):
            Store.connect(untrusted).ping()


def test_unreachable_server_fails_fast_with_store_unavailable() -> None:
    settings = ConnectionSettings(
        f"redis://127.0.0.1:{free_port()}/0", cluster=False, socket_timeout_seconds=0.5
    )
    store = Store.connect(settings)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="Redis unreachable"):
        store.read_latest("sqs_messages")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("topology", ["redis_server", "redis_cluster"])
def test_async_store_reads_what_the_sync_store_wrote(topology: str, request: pytest.FixtureRequest) -> None:
    target = request.getfixturevalue(topology)
    settings = ConnectionSettings(target.url)
    writer = Store.connect(settings)
    writer.client.flushall()  # type: ignore[attr-defined]
    writer.describe("sqs_messages", unit="messages")
    writer.write(
        [
            Sample.of("sqs_messages", {"queue": q, "state": "visible"}, n, 1_700_000_005.0)
            for q, n in (("a", 1), ("b", 2))
        ]
    )

    async def read() -> tuple[list[Sample], list[str]]:
        reader = AsyncStore.connect(settings)
        try:
            assert await reader.ping()
            samples = await reader.read_latest("sqs_messages", parse_selector("queue in (b)"))
            infos = await reader.list_metrics()
            return samples, [f"{i.name}:{i.unit}:{i.series_count}" for i in infos]
        finally:
            await reader.close()

    samples, infos = asyncio.run(read())
    assert [(s.labels["queue"], s.value, s.timestamp) for s in samples] == [("b", 2.0, 1_700_000_005.0)]
    assert infos == ["sqs_messages:messages:2"]
    writer.close()
