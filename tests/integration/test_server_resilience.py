"""Redis outages, certificate rotation, draining and SIGTERM, with real processes and real TLS."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.support.serve_process import ServeProcess
from tests.support.server_harness import (
    PassThroughStore,
    Pki,
    Reply,
    ServerThread,
    aggregator_headers,
    orders_sample,
    request,
    seed,
    served_certificate_digest,
    server_config,
    settings_for,
)
from tidegauge.async_store import AsyncStore
from tidegauge.errors import UsageError
from tidegauge.localredis import (
    CLUSTER_BUS_OFFSET,
    MAX_PORT,
    RedisCluster,
    RedisServer,
    free_port,
    free_ports,
)
from tidegauge.model import Sample
from tidegauge.records import LabelMatcher
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server.runner import Server
from tidegauge.store import latest_key

pytestmark = pytest.mark.integration

METRIC_PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/sqs_messages"


def metric(server: ServerThread, pki: Pki, path: str = METRIC_PATH) -> Reply:
    return request(server.port, path, pki.context(pki.aggregator), aggregator_headers())


def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    """Poll ``predicate`` until true, bounded in time (for state changes in another process)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        time.sleep(0.05)


def redis_up_gauge(server: ServerThread) -> float:
    body = request(server.server.metrics_port, "/metrics", None).body.decode()
    return float(
        next(line for line in body.splitlines() if line.startswith("tidegauge_redis_up ")).split()[1]
    )


def test_redis_outage_keeps_readiness_and_discovery_answers_503_and_recovers_on_the_same_port(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    redis = RedisServer(port=port).start()
    seed(redis.url, [orders_sample()])
    # The metric-list refresh (its own WARNING when Redis is down) stays out of the counted window.
    settings = settings_for(pki, request_timeout_seconds=1.0)
    with ServerThread(settings, server_config(redis.url)) as server:
        assert metric(server, pki).status == 200
        assert redis_up_gauge(server) == 1
        # GIVEN Redis stops WHEN the HPA asks THEN a 503 Status well within the aggregator's timeout
        redis.stop()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for _ in range(5):
                started = time.monotonic()
                reply = metric(server, pki)
                assert time.monotonic() - started < 2.5
                assert reply.status == 503
                assert reply.json()["reason"] == "ServiceUnavailable"
                assert "Retry-After" not in reply.headers
                assert "Connection refused" not in reply.body.decode()
            # THEN the server stays ready and discovery answers: the APIService stays Available
            assert request(server.port, "/readyz", pki.context()).status == 200
            discovery = request(
                server.port,
                "/apis/external.metrics.k8s.io/v1beta1",
                pki.context(pki.aggregator),
                aggregator_headers(),
            )
            assert discovery.status == 200
            assert discovery.json()["kind"] == "APIResourceList"
            assert redis_up_gauge(server) == 0
        # THEN the outage is logged once, not once per request
        warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
        assert len(warnings) == 1, [record.getMessage() for record in warnings]
        assert "Redis unavailable" in warnings[0].getMessage()
        # WHEN Redis comes back on the same port THEN answers recover without a restart
        redis = RedisServer(port=port).start()
        try:
            seed(redis.url, [orders_sample()])
            wait_for(lambda: metric(server, pki).status == 200)
            assert redis_up_gauge(server) == 1
            assert request(server.port, "/readyz", pki.context()).status == 200
        finally:
            redis.stop()


@pytest.mark.cluster
def test_server_started_before_its_cluster_answers_503_then_reads_in_cluster_mode(pki: Pki) -> None:
    # GIVEN the ports of a cluster that is not up yet, and a config URL naming a node that does NOT
    # own the metric's slot (a standalone client would get MOVED from it)
    ports = free_ports(3, MAX_PORT - CLUSTER_BUS_OFFSET)
    cluster = RedisCluster(ports=ports)
    owner = cluster.primary_index(latest_key("sqs_messages"))
    url = f"redis://127.0.0.1:{ports[(owner + 1) % 3]}/0"
    with ServerThread(settings_for(pki, request_timeout_seconds=1.0), server_config(url)) as server:
        # WHEN the HPA asks before the cluster is up THEN a 503 Status, and the server stays ready
        reply = metric(server, pki)
        assert reply.status == 503
        assert reply.json()["reason"] == "ServiceUnavailable"
        assert request(server.port, "/readyz", pki.context()).status == 200
        # WHEN the cluster comes up on those ports THEN the metric is served: never a 500 (MOVED)
        with cluster:
            seed(cluster.url, [orders_sample()])
            codes: list[int] = []

            def answered() -> bool:
                codes.append(metric(server, pki).status)
                return codes[-1] != 503

            wait_for(answered)
            assert set(codes) <= {503, 200}, codes
            assert codes[-1] == 200, codes
            items = metric(server, pki).json()["items"]
            assert [(item["metricLabels"], item["value"]) for item in items] == [({"queue": "orders"}, "5")]


def served_digest(port: int, pki: Pki) -> str:
    return served_certificate_digest(port, ssl.create_default_context(cadata=pki.server_ca.pem.decode()))


def test_rotated_serving_certificate_is_served_without_restart(pki: Pki, redis_server: RedisServer) -> None:
    with ServerThread(settings_for(pki), server_config(redis_server.url)) as server:
        before = served_digest(server.port, pki)
        # GIVEN new certificate files on disk WHEN new connections arrive THEN the new certificate is served
        rotated = pki.server_ca.issue_server("tidegauge-rotated")
        Path(pki.key_file).write_bytes(rotated.key_pem)
        Path(pki.cert_file).write_bytes(rotated.certificate_pem)
        wait_for(lambda: served_digest(server.port, pki) != before)
        assert request(server.port, "/healthz", pki.context()).status == 200


class SlowStore(PassThroughStore):
    """An AsyncStore whose reads wait for ``release``, telling ``reading`` when one started."""

    def __init__(self, store: AsyncStore) -> None:
        super().__init__(store)
        self.reading = threading.Event()
        self.release: asyncio.Event | None = None

    async def read_latest(self, metric: str, selector: LabelMatcher | None = None) -> list[Sample]:
        self.release = asyncio.Event()
        self.reading.set()
        await self.release.wait()
        return await self.store.read_latest(metric, selector)


def test_shutdown_drains_in_flight_requests_and_stops_accepting(pki: Pki, redis_server: RedisServer) -> None:
    seed(redis_server.url, [orders_sample()])
    slow = SlowStore(AsyncStore.connect(ConnectionSettings(redis_server.url, cluster=False)))
    server = ServerThread(settings_for(pki), server_config(redis_server.url), store=slow)
    replies: list[Reply] = []
    client = threading.Thread(target=lambda: replies.append(metric(server, pki)))
    client.start()
    assert slow.reading.wait(10)
    # GIVEN a request in flight WHEN shutdown starts THEN the port closes, then the request completes
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    wait_for(lambda: _refused(server.port))
    assert slow.release is not None
    server.loop.call_soon_threadsafe(slow.release.set)
    client.join(10)
    stopping.join(30)
    assert [reply.status for reply in replies] == [200]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture
def serve_process(pki: Pki, redis_server: RedisServer) -> Iterator[tuple[ServeProcess, int]]:
    port = free_port()
    args = [
        "--bind-address", "127.0.0.1", "--secure-port", str(port),
        "--metrics-bind-address", "127.0.0.1", "--metrics-port", str(free_port()),
        "--tls-cert-file", pki.cert_file, "--tls-private-key-file", pki.key_file,
        "--client-ca-file", pki.client_ca_file, "--authentication-skip-lookup",
        "--authorization-mode", "AlwaysAllowAuthenticated", "--redis-url", redis_server.url,
    ]  # fmt: skip
    served = ServeProcess(args, {**os.environ, "TIDEGAUGE_CONFIG": ""})
    try:
        yield served, port
    finally:
        served.stop()


def test_sigterm_drains_and_exits_zero(serve_process: tuple[ServeProcess, int], pki: Pki) -> None:
    served, port = serve_process
    served.wait_ready()
    assert request(port, "/readyz", pki.context()).status == 200
    user = pki.client_ca.issue("jane")
    assert request(port, METRIC_PATH, pki.context(user)).status == 200
    # GIVEN a serving process WHEN it gets SIGTERM THEN it drains and exits 0
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(15) == 0
    log = served.wait_log_closed()
    assert "draining" in log
    assert "stopped" in log


def test_a_rotated_password_in_the_url_file_is_used_without_a_restart(pki: Pki, tmp_path: Path) -> None:
    # GIVEN a Redis that requires a password, and the URL with that password in a file (a mounted Secret)
    with RedisServer(extra_args=("--requirepass", "old-secret")) as redis_process:
        port = redis_process.port
        url_file = tmp_path / "url"
        url_file.write_text(f"redis://:old-secret@127.0.0.1:{port}/0\n")
        seed(f"redis://:old-secret@127.0.0.1:{port}/0", [orders_sample()])
        settings = settings_for(
            pki, redis_url_file=str(url_file), tls_reload_interval_seconds=0.1, request_timeout_seconds=1.0
        )
        with ServerThread(settings, server_config(f"redis://127.0.0.1:{port}/0")) as server:
            assert metric(server, pki).status == 200
            # WHEN the password is rotated on Redis and every client connection is dropped
            admin = Redis(host="127.0.0.1", port=port, password="old-secret")
            try:
                admin.config_set("requirepass", "new-secret")
                admin.client_kill_filter(_type="normal")
            finally:
                admin.close()
            # THEN metric reads answer 503 (the old password is refused) and readiness holds
            wait_for(lambda: metric(server, pki).status == 503)
            assert request(server.port, "/readyz", pki.context()).status == 200
            # WHEN the Secret's file gets the new URL THEN the server reconnects with it, no restart
            url_file.write_text(f"redis://:new-secret@127.0.0.1:{port}/0\n")
            wait_for(lambda: metric(server, pki).status == 200)
            assert [item["value"] for item in metric(server, pki).json()["items"]] == ["5"]


def test_a_url_file_without_a_url_is_a_usage_error(pki: Pki, tmp_path: Path) -> None:
    empty = tmp_path / "url"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="no redis:// or rediss:// URL"):
        Server(settings_for(pki, redis_url_file=str(empty)), server_config("redis://127.0.0.1:1/0"))
