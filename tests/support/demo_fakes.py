"""Fakes for the demo driver's Protocols: an in-memory queue and metric readers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tidegauge.demo.aggregator import FailedReading, MetricReading
from tidegauge.demo.aws import QueueDepth
from tidegauge.demo.driver import DELAY_EVERY
from tidegauge.demo.scenario import SQS_METRIC, Scenario
from tidegauge.demo.timeline import TimelinePoint

COLLECTOR_OFFSET_SECONDS = 5.0
"""Collectors sample 5 s after each HPA sync, so the HPA acts on values 10 s old, as in a cluster."""


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
    deleted_points: list[tuple[float, int]] = field(default_factory=list)

    def send(self, count: int, *, delay_every: int, delay_seconds: int) -> None:
        assert delay_every == DELAY_EVERY
        assert delay_seconds >= 1
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

    def publish_deleted(self, queue: str, points: Sequence[tuple[float, int]]) -> None:
        self.deleted_points.extend(points)


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

    def fetch_object(
        self, namespace: str, resource: str, name: str, metric: str
    ) -> MetricReading | FailedReading:
        """The Object metric of the consumer Deployment: the same backlog, recorded by its object."""
        self.requests.append((namespace, metric, f"{resource}/{name}"))
        if self.failing:
            return FailedReading(503, "Redis unavailable")
        depth = self.aws.queue_depth()
        return MetricReading(float(depth.visible + depth.in_flight + depth.delayed), 1, 2.0)


@dataclass
class SampledMetrics:
    """The collectors' view: the queue and CPU as of the newest sample, taken every sample interval,
    ``COLLECTOR_OFFSET_SECONDS`` after each HPA sync; the age is wall time since that sample.

    Feed it every point the driver records (its ``on_point``); until the first sample it has no value.
    """

    scenario: Scenario
    wall: Callable[[], float]
    _queue: float | None = None
    _cpu: float | None = None
    _sampled_at: float = 0.0

    def record(self, point: TimelinePoint) -> None:
        if (point.t - COLLECTOR_OFFSET_SECONDS) % self.scenario.sample_interval_seconds == 0:
            self._queue = float(point.visible + point.in_flight + point.delayed)
            self._cpu = point.cpu
            self._sampled_at = self.wall()

    def fetch(self, namespace: str, metric: str, selector: str) -> MetricReading | FailedReading:
        value = self._queue if metric == SQS_METRIC else self._cpu
        if value is None:
            return FailedReading(404, f"no sample of {metric} yet")
        return MetricReading(value, 1, self.wall() - self._sampled_at)

    def fetch_object(
        self, namespace: str, resource: str, name: str, metric: str
    ) -> MetricReading | FailedReading:
        return self.fetch(namespace, metric, "")
