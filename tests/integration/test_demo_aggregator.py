"""The demo's HPA-side client against the real server, with the demo's own certificates."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_harness import ServerThread
from tidegauge.config import parse_config
from tidegauge.demo.aggregator import AggregatorClient, FailedReading, MetricReading
from tidegauge.demo.config import DemoTiming, demo_config_yaml
from tidegauge.demo.pki import FRONT_PROXY_CLIENT_NAME, DemoPki
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server.settings import AuthenticationFlags, AuthorizationMode, ServerSettings
from tidegauge.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(tmp_path: Path) -> DemoPki:
    return DemoPki.generate(tmp_path)


@pytest.fixture
def server(pki: DemoPki, redis_server: RedisServer) -> Iterator[ServerThread]:
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    sampled_at = time.time() - 4
    store.write(
        [
            Sample.of("sqs_messages", {"queue": "demo-orders", "state": state}, value, sampled_at)
            for state, value in [("visible", 40), ("in_flight", 7), ("delayed", 0.5)]
        ]
        + [Sample.of("sqs_messages", {"queue": "other", "state": "visible"}, 1000, sampled_at)]
    )
    store.close()
    config_text = demo_config_yaml(
        redis_server.url, DemoTiming.for_compression(5), queue_name="demo-orders", cluster_name="demo"
    )
    settings = ServerSettings(
        bind_address="127.0.0.1",
        secure_port=0,
        metrics_port=None,
        tls_cert_file=str(pki.serving.certificate),
        tls_private_key_file=str(pki.serving.key),
        authentication=AuthenticationFlags(
            client_ca_file=str(pki.client_ca),
            requestheader_client_ca_file=str(pki.front_proxy_ca),
            requestheader_allowed_names=(FRONT_PROXY_CLIENT_NAME,),
            skip_lookup=True,
        ),
        authorization_mode=AuthorizationMode.ALWAYS_ALLOW_AUTHENTICATED,
    )
    with ServerThread(settings, parse_config(config_text, environ={})) as thread:
        yield thread


@pytest.fixture
def client(pki: DemoPki, server: ServerThread) -> Iterator[AggregatorClient]:
    aggregator = AggregatorClient(
        "127.0.0.1",
        server.port,
        server_ca=pki.serving_ca,
        client_certificate=pki.front_proxy.certificate,
        client_key=pki.front_proxy.key,
    )
    yield aggregator
    aggregator.close()


def test_the_queue_selector_sums_every_state_of_that_queue(client: AggregatorClient) -> None:
    # GIVEN three series of demo-orders and one of another queue, sampled 4 s ago
    # WHEN the HPA-side client fetches the backlog metric with the demo's selector
    reading = client.fetch("demo", "sqs_messages", "queue=demo-orders")

    # THEN it sums the three states (milli-values) and reports the samples' age
    assert isinstance(reading, MetricReading)
    assert (reading.value, reading.items) == (47.5, 3)
    assert 3 <= reading.age_seconds < 10


def test_a_missing_metric_is_a_failed_fetch_and_the_connection_is_kept(client: AggregatorClient) -> None:
    # GIVEN a metric no collector writes
    # WHEN it is fetched, then a served one on the same client
    missing = client.fetch("demo", "aurora_cpu_percent", "cluster=demo")
    served = client.fetch("demo", "sqs_messages", "queue=demo-orders")

    # THEN the first fails as the server's Status says (the HPA would hold), the second succeeds
    assert isinstance(missing, FailedReading)
    assert missing.status == 404
    assert isinstance(served, MetricReading)
    assert client.requests == 2


def test_a_stopped_server_is_a_failed_fetch_not_an_exception(
    client: AggregatorClient, server: ServerThread
) -> None:
    # GIVEN a server that went away after one request
    assert isinstance(client.fetch("demo", "sqs_messages", "queue=demo-orders"), MetricReading)
    server.call(server.server.stop())

    # WHEN the client fetches again
    reading = client.fetch("demo", "sqs_messages", "queue=demo-orders")

    # THEN it reports a failed fetch
    assert isinstance(reading, FailedReading)
    assert reading.status == 0


def test_the_backlog_as_the_deployments_object_metric_is_the_same_sum(client: AggregatorClient) -> None:
    # GIVEN the demo config's objects: rule (queue demo-orders describes Deployment demo/orders-worker)
    # WHEN the HPA-side client fetches the Object metric of that Deployment
    reading = client.fetch_object("demo", "deployments.apps", "orders-worker", "sqs_messages")

    # THEN one item: the three states summed, as the External metric's items add up
    assert isinstance(reading, MetricReading)
    assert (reading.value, reading.items) == (47.5, 1)
    assert 3 <= reading.age_seconds < 10
    # AND another Deployment has no backlog: a failed fetch (the HPA would hold)
    missing = client.fetch_object("demo", "deployments.apps", "web", "sqs_messages")
    assert isinstance(missing, FailedReading)
    assert missing.status == 404
