"""The demo's time-stepped loop over an in-memory queue and metric source: step mechanics and pacing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from tidegauge.demo.aggregator import FailedReading, MetricReading
from tidegauge.demo.aws import QueueDepth
from tidegauge.demo.driver import CPU_PUBLISH_SECONDS, DELAY_EVERY, Driver
from tidegauge.demo.scenario import CPU_METRIC, SQS_METRIC, Scenario
from tidegauge.demo.timeline import TimelinePoint, timeline_stats


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class MemoryAws:
    """A queue without delays in time: delayed messages become visible on the next step."""

    visible: int = 0
    delayed: int = 0
    in_flight: set[str] = field(default_factory=set)
    received: int = 0
    deleted: list[int] = field(default_factory=list)
    sent_delayed: int = 0
    cpu_points: list[tuple[float, float]] = field(default_factory=list)

    def send(self, count: int, *, delay_every: int, delay_seconds: int) -> None:
        assert delay_every == DELAY_EVERY and delay_seconds >= 1
        self.visible += self.delayed
        self.delayed = 0
        for _ in range(count):
            self.sent_delayed += 1
            if self.sent_delayed % delay_every == 0:
                self.delayed += 1
            else:
                self.visible += 1

    def receive(self, up_to: int) -> list[str]:
        taken = min(up_to, self.visible)
        self.visible -= taken
        handles = [f"m{self.received + index}" for index in range(taken)]
        self.received += taken
        self.in_flight.update(handles)
        return handles

    def delete(self, handles: list[str]) -> None:
        assert set(handles) <= self.in_flight
        self.in_flight -= set(handles)
        self.deleted.append(len(handles))

    def queue_depth(self) -> QueueDepth:
        return QueueDepth(self.visible, len(self.in_flight), self.delayed)

    def publish_cpu(self, cluster: str, points: Sequence[tuple[float, float]]) -> None:
        assert cluster == "demo"
        self.cpu_points.extend(points)


@dataclass
class DirectMetrics:
    """Answers with the queue's current depth and the last published CPU, sampled 2 wall seconds ago."""

    aws: MemoryAws
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    failing: bool = False

    def fetch(self, namespace: str, metric: str, selector: str) -> MetricReading | FailedReading:
        self.requests.append((namespace, metric, selector))
        if self.failing:
            return FailedReading(503, "Redis unavailable")
        if metric == SQS_METRIC:
            depth = self.aws.queue_depth()
            return MetricReading(float(depth.visible + depth.in_flight + depth.delayed), 3, 2.0)
        value = self.aws.cpu_points[-1][1] if self.aws.cpu_points else 5.0
        return MetricReading(value, 1, 2.0)


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
    assert stats.scale_ups >= 1 and stats.scale_downs >= 1
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
