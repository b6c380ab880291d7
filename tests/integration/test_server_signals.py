"""Better signals through the real server on real Redis: last known good, windows, derived metrics."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.integration.test_server_kubectl import KUBECTL, write_kubeconfig
from tests.support.clock import FakeClock
from tests.support.server_harness import (
    Pki,
    Reply,
    ServerThread,
    aggregator_headers,
    request,
    seed,
    settings_for,
)
from tidegauge.config import Config, parse_config
from tidegauge.demo.aggregator import parse_quantity
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.server.types import format_timestamp
from tidegauge.store import Store

EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop"

SIGNALS_CONFIG = """
version: 1
redis: {url: "redis://127.0.0.1:1/0"}
sources:
  - {name: orders, type: sqs, region: eu-west-1, queues: {names: [orders]}}
  - {name: smooth, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sqs_smoothed}
  - {name: sparse, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sqs_sparse}
  - {name: peak, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sqs_peak}
  - {name: sent, type: sqs, region: eu-west-1, queues: {names: [orders]}, metric: sent_total}
  - name: db
    type: cloudwatch
    region: eu-west-1
    queries:
      - {preset: aurora_cpu, identifier: orders-db, max_age_seconds: 240}
derived:
  orders_pressure: 'max(sqs_messages{queue="orders"} / 100, aurora_cpu_percent{cluster="orders-db"} / 70)'
  orders_in_a_minute:
    expression: 'project(sqs_messages{queue="orders"}[60s], 60s)'
  orders_sent_per_second: 'rate(sent_total{queue="orders"}[60s])'
objects:
  - {metric: orders_pressure, resource: deployments.apps, namespace: shop, name: orders-worker}
metrics:
  sqs_messages:
    max_age_seconds: 60
    fallback: {mode: last_known_good, max_age_seconds: 120}
  sqs_smoothed:
    max_age_seconds: 60
    window: {seconds: 70, function: avg}
  sqs_sparse:
    max_age_seconds: 60
    keep_alive_seconds: 120
  sqs_peak:
    max_age_seconds: 60
    window: {seconds: 30, function: max}
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def config_for(redis_url: str, text: str = SIGNALS_CONFIG) -> Config:
    return parse_config(text, "<test>", redis_url=redis_url, environ={})


def served(server: ServerThread, pki: Pki, path: str) -> Reply:
    return request(server.port, f"{EXTERNAL}/{path}", pki.context(pki.aggregator), aggregator_headers())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=float(int(time.time()) - 3600))


@pytest.fixture
def server(pki: Pki, redis_server: RedisServer, clock: FakeClock) -> Iterator[ServerThread]:
    seed(redis_server.url, [], flush=True)
    with ServerThread(settings_for(pki), config_for(redis_server.url), clock=clock) as thread:
        yield thread


def test_last_known_good_spans_a_collector_outage_and_stops_at_its_limit(
    server: ServerThread, pki: Pki, redis_server: RedisServer, clock: FakeClock
) -> None:
    # GIVEN a collector that wrote 42 at t0 and then stopped (max age 60 s, last known good 120 s past it)
    written_at = clock.now
    seed(redis_server.url, [Sample.of("sqs_messages", {"queue": "orders"}, 42, written_at)])
    # WHEN asked during the outage, up to 180 s after the last write THEN 42 with its real timestamp
    for elapsed in (30, 61, 180):
        clock.now = written_at + elapsed
        reply = served(server, pki, "sqs_messages")
        assert reply.status == 200, (elapsed, reply.body)
        (item,) = reply.json()["items"]
        assert (item["value"], item["timestamp"]) == ("42", format_timestamp(written_at))
    # WHEN 181 s have passed THEN 404 saying stale
    clock.now = written_at + 181
    reply = served(server, pki, "sqs_messages")
    assert reply.status == 404
    assert "stale" in reply.json()["message"]
    # THEN the two last-known-good answers (at 61 s and 180 s) are counted in /metrics
    scraped = request(server.server.metrics_port, "/metrics", None).body.decode()
    assert 'tidegauge_last_known_good_served_total{metric="sqs_messages"} 2.0' in scraped


FLICKER = [0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0]
"""SQS's approximate count of an idle queue right after deletes: +1/+2 spikes, every 10 s."""


def test_flickering_counts_are_smoothed_so_no_spike_reaches_the_hpa(
    server: ServerThread, pki: Pki, redis_server: RedisServer, clock: FakeClock
) -> None:
    # GIVEN sqs_smoothed served as the 70 s average of its history (an HPA with target 1 scales up on >= 1)
    served_values: list[float] = []
    start = clock.now
    for step, raw in enumerate(FLICKER):
        # WHEN the collector writes each flickering count and the HPA asks right after
        clock.now = start + 10 * step
        seed(redis_server.url, [Sample.of("sqs_smoothed", {"queue": "orders"}, raw, clock.now)])
        reply = served(server, pki, "sqs_smoothed")
        assert reply.status == 200, reply.body
        (item,) = reply.json()["items"]
        assert item["window"] == 70
        served_values.append(float(parse_quantity(item["value"])))
    # THEN every served value stays below 1 while the raw counts reached 2, and Redis keeps the raw value
    assert max(served_values) < 1
    assert max(FLICKER) == 2
    assert served_values[6] == pytest.approx(2 / 7, abs=0.001)
    store = Store.connect(ConnectionSettings(redis_server.url))
    try:
        assert [s.value for s in store.read_latest("sqs_smoothed")] == [FLICKER[-1]]
    finally:
        store.close()


def test_keep_alive_holds_a_sparse_queue_at_one_until_its_span_has_passed(
    server: ServerThread, pki: Pki, redis_server: RedisServer, clock: FakeClock
) -> None:
    # GIVEN 3 messages at t0, then empty readings every 30 s (keep-alive 120 s)
    start = clock.now
    seen: list[str] = []
    for step, raw in enumerate([3, 0, 0, 0, 0, 0]):
        clock.now = start + 30 * step
        seed(redis_server.url, [Sample.of("sqs_sparse", {"queue": "orders"}, raw, clock.now)])
        (item,) = served(server, pki, "sqs_sparse").json()["items"]
        seen.append(item["value"])
    # THEN 3, then at least 1 while t0 is within the last 120 s (up to 120 s), then the raw 0
    assert seen == ["3", "1", "1", "1", "1", "0"]


def test_a_peak_leaves_the_window_on_time_without_a_new_sample(
    server: ServerThread, pki: Pki, redis_server: RedisServer, clock: FakeClock
) -> None:
    # GIVEN a peak of 5 and then 0, ten seconds later, served as the max of the last 30 s
    start = clock.now
    seed(redis_server.url, [Sample.of("sqs_peak", {"queue": "orders"}, 5, start)])
    clock.now = start + 10
    seed(redis_server.url, [Sample.of("sqs_peak", {"queue": "orders"}, 0, clock.now)])
    values = []
    # WHEN asked at 10 s, 30 s (the peak is exactly 30 s old) and 31 s, with no new sample
    for elapsed in (10, 30, 31):
        clock.now = start + elapsed
        (item,) = served(server, pki, "sqs_peak").json()["items"]
        values.append(item["value"])
    # THEN the peak holds for its 30 s and then leaves, though the latest value never changed
    assert values == ["5", "5", "0"]


def test_derived_metrics_are_served_from_fresh_inputs_and_go_stale_with_any_input(
    server: ServerThread, pki: Pki, redis_server: RedisServer, clock: FakeClock
) -> None:
    # GIVEN a backlog growing 2 msg/s to 190, the database at 56 % CPU, a counter reset once
    now = clock.now
    for step, (backlog, sent) in enumerate([(100, 0), (130, 60), (160, 10), (190, 70)]):
        at = now - 45 + 15 * step
        seed(
            redis_server.url,
            [
                Sample.of("sqs_messages", {"queue": "orders", "state": "visible"}, backlog, at),
                Sample.of("sent_total", {"queue": "orders"}, sent, at),
            ],
        )
    seed(redis_server.url, [Sample.of("aurora_cpu_percent", {"cluster": "orders-db"}, 56, now - 30)])
    # WHEN kubectl asks for the pressure THEN max(190 / 100, 56 / 70) = 1.9, no labels, the oldest time
    assert KUBECTL is not None
    raw = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            write_kubeconfig(pki, server.port),
            "get",
            "--raw",
            f"{EXTERNAL}/orders_pressure",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (item,) = json.loads(raw.stdout)["items"]
    assert (item["metricName"], item["metricLabels"], item["value"]) == ("orders_pressure", {}, "1900m")
    assert item["timestamp"] == format_timestamp(now - 30)
    # THEN the custom metrics API serves it too, as the Object metric of the Deployment its rule names
    custom = request(
        server.port,
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/deployments.apps/orders-worker/orders_pressure",
        pki.context(pki.aggregator),
        aggregator_headers(),
    )
    assert custom.status == 200, custom.body
    (described,) = custom.json()["items"]
    assert (described["describedObject"]["name"], described["value"]) == ("orders-worker", "1900m")
    assert described["timestamp"] == format_timestamp(now - 30)
    # THEN the projection is 190 + 2 msg/s * 60 s, and the rate counts the reset from zero: 130 / 45 s
    (projected,) = served(server, pki, "orders_in_a_minute").json()["items"]
    assert projected["value"] == "310"
    (sent,) = served(server, pki, "orders_sent_per_second").json()["items"]
    assert float(parse_quantity(sent["value"])) == pytest.approx(130 / 45, abs=0.001)
    # WHEN the database metric goes stale (the queue stays fresh) THEN the pressure is a 404 naming it
    clock.now = now + 220
    seed(
        redis_server.url, [Sample.of("sqs_messages", {"queue": "orders", "state": "visible"}, 200, clock.now)]
    )
    reply = served(server, pki, "orders_pressure")
    assert reply.status == 404
    assert 'aurora_cpu_percent{cluster="orders-db"} has no fresh series' in reply.json()["message"]
    # WHEN a selector is sent for a derived metric (it has no labels) THEN 404, not a wrong value
    assert served(server, pki, "orders_in_a_minute?labelSelector=queue%3Dorders").status == 404
