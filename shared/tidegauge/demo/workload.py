"""The simulated world of the demo: producers, consumer pods and the database they load, stepped in time.

Everything here is deterministic for a given seed and call sequence, and owns no queue: the demo's
driver sends the produced messages to a real (moto) SQS queue and receives/deletes as many as the
ready pods can process, so the collectors measure a real queue.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RateSegment:
    """Producers send ``rate_per_second`` messages per second for ``duration_seconds``."""

    duration_seconds: float
    rate_per_second: float

    def __post_init__(self) -> None:
        if not self.duration_seconds > 0:
            raise ValueError(f"a rate segment needs a positive duration, got {self.duration_seconds}")
        if not self.rate_per_second >= 0:
            raise ValueError(f"a rate must not be negative, got {self.rate_per_second}")


@dataclass(frozen=True)
class RateProfile:
    """A piecewise-constant production rate; after the last segment its rate continues."""

    segments: tuple[RateSegment, ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError("a rate profile needs at least one segment")

    @classmethod
    def single_burst(
        cls,
        total_seconds: float,
        *,
        quiet_rate: float,
        burst_rate: float,
        burst_start_fraction: float = 0.1,
        burst_fraction: float = 0.1,
    ) -> RateProfile:
        """Quiet, a burst from ``burst_start_fraction`` of the run lasting ``burst_fraction`` of it, quiet."""
        if not total_seconds > 0:
            raise ValueError(f"total_seconds must be positive, got {total_seconds}")
        if not (
            burst_start_fraction > 0 and burst_fraction > 0 and burst_start_fraction + burst_fraction < 1
        ):
            raise ValueError(
                "the burst must start after 0 and end before the run does: got start fraction "
                f"{burst_start_fraction} and length fraction {burst_fraction}"
            )
        start = total_seconds * burst_start_fraction
        length = total_seconds * burst_fraction
        return cls(
            (
                RateSegment(start, quiet_rate),
                RateSegment(length, burst_rate),
                RateSegment(total_seconds - start - length, quiet_rate),
            )
        )

    @property
    def total_seconds(self) -> float:
        """The length of the profile; the demo runs this long."""
        return sum(segment.duration_seconds for segment in self.segments)

    def rate_at(self, t: float) -> float:
        """Messages per second produced at time ``t``."""
        end = 0.0
        for segment in self.segments:
            end += segment.duration_seconds
            if t < end:
                return segment.rate_per_second
        return self.segments[-1].rate_per_second

    def messages_between(self, start: float, end: float) -> float:
        """The exact integral of the rate over ``[start, end)``."""
        total = 0.0
        segment_start = 0.0
        for index, segment in enumerate(self.segments):
            is_last = index == len(self.segments) - 1
            segment_end = math.inf if is_last else segment_start + segment.duration_seconds
            overlap = min(end, segment_end) - max(start, segment_start)
            if overlap > 0:
                total += overlap * segment.rate_per_second
            segment_start = segment_end
        return total


@dataclass(frozen=True)
class CpuModel:
    """Aurora CPU % as a function of the messages processed per second and connected pods."""

    base_percent: float = 4.0
    percent_per_message_per_second: float = 1.2
    percent_per_replica: float = 0.3
    noise_percent: float = 1.5
    floor_percent: float = 3.0
    ceiling_percent: float = 98.0


class Workload:
    """Producers and per-pod draining capacity over simulated time, with fractional carry-over.

    ``produce`` advances the producers' clock; ``consume_capacity`` only depends on its arguments and
    the carried fraction, so the driver may call them in any order within a step.
    """

    def __init__(
        self,
        profile: RateProfile,
        drain_per_pod: float,
        *,
        cpu_model: CpuModel | None = None,
        seed: int = 7,
    ) -> None:
        if not drain_per_pod > 0:
            raise ValueError(f"drain_per_pod must be positive, got {drain_per_pod}")
        self.profile = profile
        self.drain_per_pod = drain_per_pod
        self.cpu_model = CpuModel() if cpu_model is None else cpu_model
        self._random = random.Random(seed)
        self._elapsed = 0.0
        self._produce_carry = 0.0
        self._consume_carry = 0.0

    @property
    def elapsed(self) -> float:
        """Simulated seconds the producers have run."""
        return self._elapsed

    def produce(self, dt: float) -> int:
        """Messages to send during the next ``dt`` seconds; fractions carry over to later steps."""
        if dt < 0:
            raise ValueError(f"dt must not be negative, got {dt}")
        exact = self._produce_carry + self.profile.messages_between(self._elapsed, self._elapsed + dt)
        self._elapsed += dt
        whole = math.floor(exact)
        self._produce_carry = exact - whole
        return whole

    def consume_capacity(self, dt: float, replicas: int) -> int:
        """Messages ``replicas`` ready pods can process in ``dt`` seconds; fractions carry over."""
        if dt < 0 or replicas < 0:
            raise ValueError(f"dt and replicas must not be negative, got {dt} and {replicas}")
        exact = self._consume_carry + self.drain_per_pod * replicas * dt
        whole = math.floor(exact)
        self._consume_carry = exact - whole
        return whole

    def aurora_cpu(self, load_per_second: float, replicas: int) -> float:
        """A plausible Aurora CPU % for this processing rate, with seeded noise, within the model's bounds."""
        model = self.cpu_model
        noise = self._random.uniform(-model.noise_percent, model.noise_percent)
        percent = (
            model.base_percent
            + model.percent_per_message_per_second * max(load_per_second, 0.0)
            + model.percent_per_replica * max(replicas, 0)
            + noise
        )
        return min(max(percent, model.floor_percent), model.ceiling_percent)


@dataclass(frozen=True)
class _Pod:
    ready_at: float


class Pods:
    """The consumer Deployment's pods: new pods become ready ``startup_seconds`` after creation.

    On scale-down, pods that are not ready yet go first, then the newest, as a ReplicaSet chooses.
    """

    def __init__(self, initial: int, *, startup_seconds: float = 20.0, now: float = 0.0) -> None:
        if initial < 0 or startup_seconds < 0:
            raise ValueError(
                f"initial pods and startup_seconds must not be negative, got {initial} and {startup_seconds}"
            )
        self.startup_seconds = startup_seconds
        self._pods = [_Pod(ready_at=now) for _ in range(initial)]

    @property
    def desired(self) -> int:
        """Pods that exist (ready or starting): the Deployment's replicas."""
        return len(self._pods)

    def set_desired(self, count: int, now: float) -> None:
        """Scale to ``count`` pods at time ``now``."""
        if count < 0:
            raise ValueError(f"a pod count must not be negative, got {count}")
        if count > len(self._pods):
            self._pods.extend(
                _Pod(ready_at=now + self.startup_seconds) for _ in range(count - len(self._pods))
            )
        elif count < len(self._pods):
            # Latest ready time first: not-ready pods, then the newest ready ones.
            self._pods.sort(key=lambda pod: pod.ready_at)
            del self._pods[count:]

    def ready(self, now: float) -> int:
        """Pods ready at time ``now``."""
        return sum(1 for pod in self._pods if pod.ready_at <= now)
