"""What the demo records each step, and the statistics its summary and chart are made of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

DRAINED_FRACTION = 0.01
"""The backlog counts as drained once it is below this share of its peak (or zero)."""


@dataclass(frozen=True)
class TimelinePoint:
    """The state of the demo at simulated time ``t`` (seconds).

    ``hpa_value``: the metric value the HPA last saw (sum of the External items) and
    ``hpa_value_age`` its age in seconds, both None before the first successful fetch;
    ``cpu``: the simulated Aurora CPU %; ``desired`` and ``ready``: the Deployment's replicas.
    """

    t: float
    visible: int
    in_flight: int
    delayed: int
    hpa_value: float | None
    hpa_value_age: float | None
    cpu: float | None
    desired: int
    ready: int

    @property
    def backlog(self) -> int:
        """All messages in the queue, whatever their state (what a ``queue=…`` selector sums)."""
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True)
class TimelineStats:
    """Headline numbers of a run.

    ``drain_seconds``: from the peak until the backlog fell below 1 % of it (0 when there was
    never a backlog, None when it did not drain before the end).
    """

    peak_backlog: int
    peak_time: float
    drain_seconds: float | None
    scale_ups: int
    scale_downs: int
    max_desired: int
    max_ready: int


def timeline_stats(timeline: Sequence[TimelinePoint]) -> TimelineStats:
    """Compute the headline numbers; scale-ups/downs are changes of ``desired`` between points."""
    if not timeline:
        raise ValueError("cannot summarise an empty timeline")
    peak = timeline[0]
    for point in timeline:
        if point.backlog > peak.backlog:
            peak = point
    drain_seconds: float | None
    if peak.backlog == 0:
        drain_seconds = 0.0
    else:
        drain_seconds = None
        threshold = peak.backlog * DRAINED_FRACTION
        for point in timeline:
            if point.t > peak.t and point.backlog < threshold:
                drain_seconds = point.t - peak.t
                break
    scale_ups = scale_downs = 0
    for before, after in pairwise(timeline):
        if after.desired > before.desired:
            scale_ups += 1
        elif after.desired < before.desired:
            scale_downs += 1
    return TimelineStats(
        peak_backlog=peak.backlog,
        peak_time=peak.t,
        drain_seconds=drain_seconds,
        scale_ups=scale_ups,
        scale_downs=scale_downs,
        max_desired=max(point.desired for point in timeline),
        max_ready=max(point.ready for point in timeline),
    )
