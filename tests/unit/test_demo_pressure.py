"""The demo's --derived-pressure scenario: its HPA, its config, what the world publishes, its formula."""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Sequence

import pytest

from tests.support.clock import FakeClock
from tests.support.demo_fakes import DirectMetrics, MemoryAws
from tidegauge.config import CloudWatchSource, MetricPolicy
from tidegauge.demo.command import add_arguments, build_scenario
from tidegauge.demo.config import DemoTiming, demo_config_yaml, validated
from tidegauge.demo.driver import CPU_PUBLISH_SECONDS, Driver
from tidegauge.demo.scenario import PRESSURE_METRIC, Scenario, pressure_expression
from tidegauge.hpa_algorithm import MetricTarget
from tidegauge.model import HistoryPoint, SeriesKey
from tidegauge.selectors import Selector
from tidegauge.server.derived import DerivedEvaluator
from tidegauge.server.histories import SeriesHistories
from tidegauge.server.types import ExternalMetricValue


def parse(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(options))


def test_the_flag_puts_the_hpa_on_the_derived_metric_with_a_dearer_database() -> None:
    scenario, _ = build_scenario(parse("--short", "--derived-pressure"))

    assert scenario.derived_pressure
    assert scenario.hpa.metrics == (MetricTarget(PRESSURE_METRIC, "", "AverageValue", 1),)
    assert scenario.cpu_model.percent_per_message_per_second == 10
    assert not build_scenario(parse("--short"))[0].derived_pressure


@pytest.mark.parametrize("compression", [5, 12])
def test_the_config_collects_deletions_and_defines_the_derived_metric(compression: float) -> None:
    timing = DemoTiming.for_compression(compression)
    expression = pressure_expression("demo-orders", "demo")

    text = demo_config_yaml(
        "redis://127.0.0.1:6379/0",
        timing,
        queue_name="demo-orders",
        cluster_name="demo",
        derived_pressure=expression,
    )
    config = validated(text)

    assert config.derived[PRESSURE_METRIC].expression == expression
    cloudwatch = config.sources[1]
    assert isinstance(cloudwatch, CloudWatchSource)
    (deleted,) = (q for q in cloudwatch.queries if q.metric_stat is not None and q.metric_stat.stat == "Sum")
    assert deleted.metric == "sqs_deleted_per_second"
    # one datapoint sums a period of wall seconds, i.e. period * compression simulated seconds
    assert deleted.scale == pytest.approx(1 / (timing.cloudwatch_period_seconds * compression))


def test_the_world_publishes_what_it_deleted_only_in_the_pressure_scenario() -> None:
    for scenario, published in ((Scenario.short().with_derived_pressure(), True), (Scenario.short(), False)):
        aws = MemoryAws()
        clock = FakeClock()
        driver = Driver(
            scenario,
            aws,
            DirectMetrics(aws),
            on_point=lambda _: None,
            monotonic=clock,
            wall=clock,
            sleep=clock.sleep,
        )
        driver.run(60)
        if published:
            assert len(aws.deleted_points) == 60 / CPU_PUBLISH_SECONDS
            assert sum(count for _, count in aws.deleted_points) == sum(aws.deleted)
        else:
            assert aws.deleted_points == []


class NoHistories:
    async def read_histories(
        self, keys: Sequence[SeriesKey], *, count: int, after: Sequence[str | None] | None = None
    ) -> list[tuple[str | None, list[HistoryPoint]]]:
        raise AssertionError("the pressure expression reads no history")


class Policies:
    def metric_policy(self, metric: str) -> MetricPolicy:
        return MetricPolicy(max_age_seconds=60)


def pressure(backlog: float, deleted_per_second: float, cpu: float) -> float:
    """The demo's expression, evaluated by the server's evaluator over these three values."""
    values = {
        "sqs_messages": backlog,
        "sqs_deleted_per_second": deleted_per_second,
        "aurora_cpu_percent": cpu,
    }

    async def read(namespace: str, selector: Selector, metric: str) -> list[ExternalMetricValue]:
        return [ExternalMetricValue(metric, {}, 1_700_000_000.0, values[metric])]

    histories = SeriesHistories(NoHistories())
    evaluator = DerivedEvaluator(
        read, read, histories, Policies(), interval_seconds=15, clock=lambda: 1_700_000_000.0
    )
    value = asyncio.run(evaluator.value("demo", PRESSURE_METRIC, pressure_expression("demo-orders", "demo")))
    return value.value


@pytest.mark.parametrize("pods", range(1, 11))
def test_busy_pods_settle_where_the_database_stays_under_its_target(pods: int) -> None:
    # GIVEN a large backlog and `pods` busy consumers (1 msg/s each) with the scenario's CPU model
    model = Scenario.short().with_derived_pressure().cpu_model

    def cpu(busy: int) -> float:
        return (
            model.base_percent
            + model.percent_per_message_per_second * busy
            + model.percent_per_replica * busy
        )

    # WHEN the HPA (AverageValue 1: desired = ceil(value)) follows orders_pressure to its fixed point
    for _ in range(20):
        pods = math.ceil(pressure(600, pods, cpu(pods)))
    # THEN from any start it rests at the most pods whose CPU is under 70 % (6: 65.8 %; 7 would be 76 %)
    assert pods == max(busy for busy in range(1, 11) if cpu(busy) <= 70) == 6
