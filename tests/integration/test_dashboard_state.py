"""The ops page's JSON: the HPAs using each metric (read from a kube-apiserver) and the cost estimate."""

from __future__ import annotations

import time

import pytest

from tests.support.cluster_objects import external_metric, hpa
from tests.support.kube_fake import FakeKubeApiServer
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample
from tidegauge.ops.cluster import ClusterOptions, connect
from tidegauge.ops.common import Target
from tidegauge.ops.dashboard import hpas_by_metric
from tidegauge.ops.dashboard_state import monthly_cost, state
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store


def test_state_lists_the_hpas_using_each_metric(kube: FakeKubeApiServer, redis_server: RedisServer) -> None:
    # GIVEN two HPAs in two namespaces on sqs_messages, one on another metric, and the metric in Redis
    for namespace, name, metric in (
        ("shop", "worker", "sqs_messages"),
        ("ops", "mailer", "sqs_messages"),
        ("ops", "db", "cpu"),
    ):
        document = hpa(
            name, [external_metric(metric, {"queue": "a"}, "AverageValue", "10")], namespace=namespace
        )
        kube.put(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}", document)
        kube.put(f"/apis/autoscaling/v2/horizontalpodautoscalers/{namespace}.{name}", document)
    store = Store.connect(ConnectionSettings(redis_server.url))
    store.client.flushall()  # type: ignore[attr-defined]
    store.write([Sample.of("sqs_messages", {"queue": "a"}, 5, time.time(), source="q")])
    cluster = connect(ClusterOptions(kube.write_kubeconfig(), None, None))

    # WHEN the page's state is built with cluster access
    try:
        document = state(Target(store, None), hpas_by_metric(cluster))
    finally:
        store.close()

    # THEN the metric lists both HPAs that use it
    [metric] = document["metrics"]
    assert sorted(metric["hpas"]) == ["ops/mailer", "shop/worker"]
    assert document["clusterAccess"] is True


def test_the_monthly_cost_scales_usage_to_thirty_days() -> None:
    # GIVEN one day of a CloudWatch collector: 5,760 runs, 57,600 metrics requested, 2,880 s billed
    usage = {
        "since": 1_700_000_000.0,
        "runs": 5760,
        "metrics_requested": 57_600,
        "duration_share_seconds": 2880,
    }

    # WHEN the month is estimated (at 512 MB)
    cost = monthly_cost("aurora", "cloudwatch", usage, now=1_700_000_000 + 86_400)

    # THEN each part is the day's list price times 30
    assert cost.cloudwatch == pytest.approx(57_600 / 1000 * 0.01 * 30)
    assert cost.lambda_ == pytest.approx((5760 * 0.2 / 1e6 + 2880 * 0.5 * 0.0000166667) * 30)
    assert cost.sqs == 0
