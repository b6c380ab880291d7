"""The demo's configuration: collection timing scaled to the time compression, and always valid."""

from __future__ import annotations

import pytest

from tidegauge.config import CloudWatchSource, SqsSource
from tidegauge.demo.config import DemoTiming, demo_config_yaml, validated


@pytest.mark.parametrize(
    ("compression", "schedule", "interval", "period"),
    [(1, 60, 15, 30), (5, 12, 3, 10), (12, 5, 1.25, 5), (30, 2, 1, 1), (100, 0.6, 1, 1)],
)
def test_timing_follows_the_compression(
    compression: float, schedule: float, interval: float, period: int
) -> None:
    # GIVEN a time compression
    # WHEN the collection timing is derived from it
    timing = DemoTiming.for_compression(compression)

    # THEN the schedule is one simulated minute, sampling every 15 simulated seconds (at least 1 s),
    # and the CPU period the longest high-resolution one that spans at most a simulated minute
    assert timing.schedule_seconds == pytest.approx(schedule)
    assert timing.sample_interval_seconds == pytest.approx(interval)
    assert timing.cloudwatch_period_seconds == period
    # AND values stay servable for longer than the gaps between samples and the CPU's lag
    assert timing.sqs_max_age_seconds > 2 * timing.sample_interval_seconds
    assert timing.cpu_max_age_seconds > 2 * period + timing.sample_interval_seconds


@pytest.mark.parametrize("compression", [1, 5, 12, 60])
def test_the_generated_config_is_valid_and_matches_the_timing(compression: float) -> None:
    # GIVEN the timing of a compression
    timing = DemoTiming.for_compression(compression)

    # WHEN the demo's config is generated and parsed as the collectors and the server parse it
    config = validated(
        demo_config_yaml("redis://127.0.0.1:6379/0", timing, queue_name="demo-orders", cluster_name="demo")
    )

    # THEN it has the SQS queue and the Aurora CPU query, with the scaled timing
    sqs, cloudwatch = config.sources
    assert isinstance(sqs, SqsSource)
    assert sqs.queue_names == ("demo-orders",)
    assert isinstance(cloudwatch, CloudWatchSource)
    (query,) = cloudwatch.queries
    assert (query.metric, dict(query.labels)) == ("aurora_cpu_percent", {"cluster": "demo"})
    assert query.period_seconds == timing.cloudwatch_period_seconds
    assert config.sampling.interval_seconds == timing.sample_interval_seconds
    assert config.metric_policy("sqs_messages").max_age_seconds == timing.sqs_max_age_seconds
    assert config.metric_policy("aurora_cpu_percent").max_age_seconds == timing.cpu_max_age_seconds
    assert config.exposure is None


def test_a_compression_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        DemoTiming.for_compression(0)


def test_the_generated_config_maps_the_queue_to_the_consumer_deployment() -> None:
    config = validated(
        demo_config_yaml(
            "redis://127.0.0.1:6379/0",
            DemoTiming.for_compression(5),
            queue_name="demo-orders",
            cluster_name="demo",
        )
    )
    (rule,) = config.objects
    assert (rule.metric, rule.selector, rule.resource.resource) == (
        "sqs_messages",
        "queue=demo-orders",
        "deployments.apps",
    )
    assert (str(rule.namespace), str(rule.name)) == ("demo", "orders-worker")
