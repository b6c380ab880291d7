"""The demo's time-stepped loop: the simulated world acting on moto, and the HPA reading the server.

Each simulated step (1 s by default, ``1 / compression`` wall seconds) the consumer pods delete what
they received the step before and receive what they can process now, the producers send their
messages, and the Aurora CPU follows the processing rate. Every sync period the HPA fetches both
metrics through the aggregator path (the backlog as an Object metric of the consumer Deployment
when the scenario says so, the CPU as an External metric) and reconciles. The collectors run on
their own schedule in other processes; the loop only sees what reached the server through Redis.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tidegauge.demo.aggregator import FailedReading, MetricReading
from tidegauge.demo.aws import QueueDepth
from tidegauge.demo.scenario import PRESSURE_METRIC, SQS_METRIC, Scenario
from tidegauge.demo.timeline import TimelinePoint
from tidegauge.demo.workload import Pods, Workload
from tidegauge.hpa_algorithm import HorizontalPodAutoscaler, MetricTarget

logger = logging.getLogger(__name__)

DELAY_EVERY = 10
"""Every tenth message is sent with ``DelaySeconds``, so the ``delayed`` state shows."""
DELAY_SIMULATED_SECONDS = 10.0
CPU_PUBLISH_SECONDS = 5.0
"""Simulated seconds between Aurora CPU datapoints (each the mean over its interval)."""


class SimulatedAws(Protocol):
    """The simulated world's AWS calls (:class:`~tidegauge.demo.aws.DemoAws` against moto)."""

    def send(self, count: int, *, delay_every: int, delay_seconds: int) -> None: ...
    def receive(self, up_to: int) -> list[str]: ...
    def delete(self, handles: list[str]) -> None: ...
    def queue_depth(self) -> QueueDepth: ...
    def publish_cpu(self, cluster: str, points: Sequence[tuple[float, float]]) -> None: ...
    def publish_deleted(self, queue: str, points: Sequence[tuple[float, int]]) -> None: ...


class ExternalMetrics(Protocol):
    """How the HPA reads a metric (:class:`~tidegauge.demo.aggregator.AggregatorClient`)."""

    def fetch(self, namespace: str, metric: str, selector: str) -> MetricReading | FailedReading: ...
    def fetch_object(
        self, namespace: str, resource: str, name: str, metric: str
    ) -> MetricReading | FailedReading: ...


@dataclass(frozen=True)
class HpaSync:
    """One reconcile: what the HPA read (sum and age in simulated seconds, or why it failed) and decided."""

    t: float
    current_replicas: int
    ready_replicas: int
    values: Mapping[str, float | None]
    ages: Mapping[str, float | None]
    failures: Mapping[str, str]
    desired_replicas: int
    proposals: Mapping[str, int]
    reason: str
    limited_by: str | None
    stabilized_by: str | None


@dataclass(frozen=True)
class _Seen:
    """The newest value the HPA read for a metric, and when its source sampled it (simulated time)."""

    value: float
    source_t: float


@dataclass
class Driver:
    """Steps ``scenario`` against moto; ``timeline`` and ``syncs`` record the run."""

    scenario: Scenario
    aws: SimulatedAws
    aggregator: ExternalMetrics
    on_point: Callable[[TimelinePoint], None]
    check: Callable[[], None] = lambda: None
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    timeline: list[TimelinePoint] = field(default_factory=list)
    syncs: list[HpaSync] = field(default_factory=list)
    lag_seconds: float = 0.0
    """Wall-clock seconds the run took beyond ``steps / compression`` (steps that overran)."""

    def __post_init__(self) -> None:
        scenario = self.scenario
        self.workload: Workload = scenario.workload()
        self.pods: Pods = scenario.pods()
        self.hpa = HorizontalPodAutoscaler(scenario.hpa)
        self.t = 0.0
        self.steps = 0
        self._in_flight: list[str] = []
        self._cpu_window: list[float] = []
        self._deleted_window = 0
        self._seen: dict[str, _Seen] = {}
        self._steps_per_sync = max(1, round(scenario.sync_period_seconds / scenario.step_seconds))
        self._steps_per_cpu = max(1, round(CPU_PUBLISH_SECONDS / scenario.step_seconds))
        self.delay_seconds = max(1, round(DELAY_SIMULATED_SECONDS / scenario.time_compression))

    @property
    def compression(self) -> float:
        return self.scenario.time_compression

    def prime(self, period_seconds: int) -> None:
        """Publish the idle database's CPU for the last two periods, so the first fetch finds data."""
        now = self.wall()
        idle = self.workload.aurora_cpu(0.0, self.pods.desired)
        points = [(now - offset, idle) for offset in range(2 * period_seconds + 1)]
        self.aws.publish_cpu(self.scenario.cluster_name, points)
        if self.scenario.derived_pressure:
            self.aws.publish_deleted(self.scenario.queue_name, [(at, 0) for at, _ in points])

    def wait_for_metrics(self, timeout_seconds: float) -> list[str]:
        """Poll until the server answers every HPA metric; the names still failing at the deadline."""
        deadline = self.monotonic() + timeout_seconds
        while True:
            failing = [
                metric.name
                for metric in self.scenario.hpa.metrics
                if isinstance(self._read(metric), FailedReading)
            ]
            if not failing or self.monotonic() >= deadline:
                return failing
            self.check()
            self.sleep(0.25)

    def _read(self, metric: MetricTarget) -> MetricReading | FailedReading:
        """One metric as the HPA reads it: the backlog as an Object metric when the scenario says so."""
        scenario = self.scenario
        if metric.name == SQS_METRIC and scenario.backlog_object is not None:
            return self.aggregator.fetch_object(
                scenario.namespace, "deployments.apps", scenario.backlog_object, metric.name
            )
        return self.aggregator.fetch(scenario.namespace, metric.name, metric.selector)

    def run(self, steps: int | None) -> None:
        """Advance ``steps`` steps (None: until interrupted) at most ``compression`` times real time.

        A step that overruns its wall-clock share delays the rest of the run instead of being made up
        by rushing later steps, so the collectors always see simulated time pass at the same pace.
        """
        step_wall = self.scenario.step_seconds / self.compression
        started = self.monotonic()
        delayed = 0.0
        done = 0
        while steps is None or done < steps:
            self.step()
            done += 1
            behind = self.monotonic() - (started + delayed + done * step_wall)
            if behind > 0:
                self.lag_seconds += behind
                delayed += behind
            else:
                self.sleep(-behind)

    def use_workload(self, workload: Workload) -> None:
        """Continue with another workload (e.g. a steady quiet rate after the scenario)."""
        self.workload = workload

    def step(self) -> TimelinePoint:
        """One simulated step; returns (and reports) the point recorded at its end."""
        dt = self.scenario.step_seconds
        ready = self.pods.ready(self.t)
        processed = len(self._in_flight)
        self.aws.delete(self._in_flight)
        self.aws.send(self.workload.produce(dt), delay_every=DELAY_EVERY, delay_seconds=self.delay_seconds)
        capacity = self.workload.consume_capacity(dt, ready)
        self._in_flight = self.aws.receive(capacity) if capacity else []
        self.steps += 1
        self.t = self.steps * dt
        cpu = self.workload.aurora_cpu(processed / dt, ready)
        self._cpu_window.append(cpu)
        self._deleted_window += processed
        if self.steps % self._steps_per_cpu == 0:
            self.aws.publish_cpu(
                self.scenario.cluster_name, [(self.wall(), statistics.fmean(self._cpu_window))]
            )
            self._cpu_window.clear()
            if self.scenario.derived_pressure:
                self.aws.publish_deleted(self.scenario.queue_name, [(self.wall(), self._deleted_window)])
            self._deleted_window = 0
        if self.steps % self._steps_per_sync == 0:
            self.check()
            self.sync()
        depth = self.aws.queue_depth()
        seen = self._seen.get(PRESSURE_METRIC if self.scenario.derived_pressure else SQS_METRIC)
        point = TimelinePoint(
            t=self.t,
            visible=depth.visible,
            in_flight=depth.in_flight,
            delayed=depth.delayed,
            hpa_value=None if seen is None else seen.value,
            hpa_value_age=None if seen is None else round(self.t - seen.source_t, 1),
            cpu=cpu,
            desired=self.pods.desired,
            ready=self.pods.ready(self.t),
        )
        self.timeline.append(point)
        self.on_point(point)
        return point

    def sync(self) -> HpaSync:
        """The HPA controller's sync: fetch each metric as the aggregator forwards it, reconcile, scale."""
        values: dict[str, float | None] = {}
        ages: dict[str, float | None] = {}
        failures: dict[str, str] = {}
        for metric in self.scenario.hpa.metrics:
            reading = self._read(metric)
            if isinstance(reading, MetricReading):
                age = round(reading.age_seconds * self.compression, 1)
                self._seen[metric.name] = _Seen(reading.value, self.t - age)
                values[metric.name] = reading.value
                ages[metric.name] = age
            else:
                values[metric.name] = ages[metric.name] = None
                failures[metric.name] = f"{reading.status}: {reading.message}"
        current, ready = self.pods.desired, self.pods.ready(self.t)
        decision = self.hpa.reconcile(self.t, current, values, ready_replicas=ready)
        if decision.desired_replicas != current:
            self.pods.set_desired(decision.desired_replicas, self.t)
        sync = HpaSync(
            t=self.t,
            current_replicas=current,
            ready_replicas=ready,
            values=values,
            ages=ages,
            failures=failures,
            desired_replicas=decision.desired_replicas,
            proposals=dict(decision.proposals),
            reason=decision.reason,
            limited_by=decision.limited_by,
            stabilized_by=decision.stabilized_by,
        )
        self.syncs.append(sync)
        if failures:
            logger.debug("HPA sync at %.0f s: metrics failed: %s", self.t, failures)
        return sync
