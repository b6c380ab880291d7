"""Ten thousand series of one metric in a real Redis Cluster."""

from __future__ import annotations

import pytest

from tidegauge.localredis import RedisCluster
from tidegauge.model import Sample
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.selectors import parse_selector
from tidegauge.store import Store


@pytest.mark.cluster
def test_ten_thousand_series_in_a_cluster_read_back_selectively(redis_cluster: RedisCluster) -> None:
    store = Store.connect(ConnectionSettings(redis_cluster.url), history_length=10)
    store.client.flushall()  # type: ignore[attr-defined]
    # GIVEN 10,000 series: 2,500 queues x 4 regions, one value each derived from its labels
    samples = [
        Sample.of(
            "sqs_messages",
            {"queue": f"q{q:04d}", "region": region, "state": "visible", "team": f"t{q % 7}"},
            q * 10 + r,
            1_790_000_000 + r,
        )
        for q in range(2500)
        for r, region in enumerate(("eu-west-1", "eu-central-1", "us-east-1", "us-west-2"))
    ]
    # WHEN written as one batch
    assert store.write(samples) == 10_000
    assert len(store.read_latest("sqs_messages")) == 10_000
    # THEN a selective read returns exactly the matching series with their own values
    selected = store.read_latest(
        "sqs_messages", parse_selector("team=t3,region in (eu-west-1,us-west-2),queue notin (q0003)")
    )
    expected = sorted(
        (s.labels["queue"], s.labels["region"], s.value)
        for s in samples
        if s.labels["team"] == "t3"
        and s.labels["region"] in {"eu-west-1", "us-west-2"}
        and s.labels["queue"] != "q0003"
    )
    assert sorted((s.labels["queue"], s.labels["region"], s.value) for s in selected) == expected
    assert len(expected) == 2 * (len([q for q in range(2500) if q % 7 == 3]) - 1)
    [info] = store.list_metrics()
    assert info.series_count == 10_000
    store.close()
