"""The demo's time-stepped loop over an in-memory queue and metric source: step mechanics and pacing."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.clock import FakeClock
from tests.support.demo_fakes import DirectMetrics, MemoryAws
from tidegauge.demo.driver import CPU_PUBLISH_SECONDS, Driver
from tidegauge.demo.scenario import CPU_METRIC, SQS_METRIC, Scenario
from tidegauge.demo.timeline import TimelinePoint, timeline_stats


def driver_for(scenario: Scenario) -> tuple[Driver, MemoryAws, DirectMetrics, FakeClock, list[TimelinePoint]]:
    aws = MemoryAws()
    metrics = DirectMetrics(aws)
    clock = FakeClock()
    seen: list[TimelinePoint] = []
    driver = Driver(
        scenario, aws, metrics, on_point=seen.append, monotonic=clock, wall=clock, sleep=clock.sleep
    )
    return driver, aws, metrics, clock, seen


def test_a_step_deletes_what_the_last_one_received_and_syncs_every_fifteen_seconds() -> None:
    # GIVEN the short scenario over an in-memory queue
    driver, aws, metrics, _, seen = driver_for(Scenario.short())

    # WHEN 30 steps run
    driver.run(30)

    # THEN every step deleted exactly what the step before received
    assert sum(aws.deleted) == aws.received - len(aws.in_flight)
    # AND the HPA fetched both metrics at 15 s and 30 s, with the demo's selectors
    assert [sync.t for sync in driver.syncs] == [15.0, 30.0]
    assert metrics.requests[:2] == [
        ("demo", SQS_METRIC, "queue=demo-orders"),
        ("demo", CPU_METRIC, "cluster=demo"),
    ]
    # AND the CPU was published every five simulated seconds, each point reported to the view
    assert len(aws.cpu_points) == 30 / CPU_PUBLISH_SECONDS
    assert [point.t for point in seen] == [float(t) for t in range(1, 31)]
    # AND ages are in simulated seconds (2 wall seconds at 12x)
    assert driver.syncs[0].ages == {SQS_METRIC: 24.0, CPU_METRIC: 24.0}


def test_the_loop_closes_over_the_whole_scenario() -> None:
    # GIVEN the short scenario
    scenario = Scenario.short()
    driver, _, _, clock, _ = driver_for(scenario)

    # WHEN it runs to the end
    driver.run(round(scenario.simulated_seconds))

    # THEN replicas rose and fell, and the run took its simulated length divided by the compression
    stats = timeline_stats(driver.timeline)
    assert stats.scale_ups >= 1
    assert stats.scale_downs >= 1
    assert stats.max_desired == scenario.hpa.max_replicas
    assert driver.timeline[-1].desired == scenario.hpa.min_replicas
    assert clock.now - 1000.0 == pytest.approx(scenario.wall_seconds)
    assert driver.lag_seconds == 0


def test_failed_fetches_hold_the_replicas() -> None:
    # GIVEN a server that answers nothing but errors
    driver, _, metrics, _, _ = driver_for(Scenario.short())
    metrics.failing = True

    # WHEN the burst comes and goes
    driver.run(200)

    # THEN the HPA held at its initial replicas, reporting why
    assert {point.desired for point in driver.timeline} == {1}
    assert all(sync.reason == "FailedGetExternalMetric" for sync in driver.syncs)
    assert driver.syncs[0].failures[SQS_METRIC] == "503: Redis unavailable"


def test_an_overrunning_step_delays_the_run_instead_of_rushing_later_steps() -> None:
    # GIVEN a step that takes a whole second of wall time once
    driver, aws, _, clock, _ = driver_for(Scenario.short())
    slow_receive = aws.receive

    def receive(up_to: int) -> list[str]:
        if driver.steps == 3:
            clock.now += 1.0
        return slow_receive(up_to)

    aws.receive = receive  # type: ignore[method-assign]

    # WHEN 12 steps of 1/12 s run
    driver.run(12)

    # THEN the run took one second plus its overrun, and the overrun is reported
    assert driver.lag_seconds == pytest.approx(1.0 - 1 / 12)
    assert clock.now - 1000.0 == pytest.approx(1.0 + driver.lag_seconds)


def test_the_backlog_is_read_as_the_deployments_object_metric_when_the_scenario_says_so() -> None:
    # GIVEN the short scenario whose backlog is the Object metric of Deployment orders-worker
    scenario = dataclasses.replace(Scenario.short(), backlog_object="orders-worker")
    driver, _, metrics, _, _ = driver_for(scenario)

    # WHEN one sync runs
    driver.run(15)

    # THEN the backlog came through the custom metrics path of that Deployment, the CPU as External
    assert metrics.requests[:2] == [
        ("demo", SQS_METRIC, "deployments.apps/orders-worker"),
        ("demo", CPU_METRIC, "cluster=demo"),
    ]
    assert driver.syncs[0].failures == {}
