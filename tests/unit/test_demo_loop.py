"""The demo's closed loop without servers: workload, pods and HPA around an in-memory queue.

This checks the scenario's numbers: the real demo replaces the in-memory queue with moto SQS and the
direct metric reads with the collectors, Redis and the aggregated API server.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tidegauge.demo.hpa import HorizontalPodAutoscaler
from tidegauge.demo.scenario import CPU_METRIC, SQS_METRIC, Scenario
from tidegauge.demo.timeline import TimelinePoint, timeline_stats

COLLECTOR_OFFSET_SECONDS = 5.0
"""Collectors sample 5 s after each HPA sync, so the HPA acts on values 10 s old, as in a cluster."""


@dataclass(frozen=True)
class Run:
    timeline: list[TimelinePoint]
    scale_events: list[tuple[float, int, int]]


def run_closed_loop(scenario: Scenario) -> Run:
    """Step the scenario: produce, receive what ready pods can take, delete it a step later."""
    workload, pods, hpa = scenario.workload(), scenario.pods(), HorizontalPodAutoscaler(scenario.hpa)
    dt = scenario.step_seconds
    visible = in_flight = 0
    seen_queue: float | None = None
    seen_cpu: float | None = None
    seen_at: float | None = None
    timeline: list[TimelinePoint] = []
    scale_events: list[tuple[float, int, int]] = []
    for step in range(1, round(scenario.simulated_seconds / dt) + 1):
        t = step * dt
        ready = pods.ready(t - dt)
        processed, in_flight = in_flight, 0  # last step's messages are deleted
        visible += workload.produce(dt)
        in_flight = min(workload.consume_capacity(dt, ready), visible)
        visible -= in_flight
        cpu = workload.aurora_cpu(processed / dt, ready)
        if (t - COLLECTOR_OFFSET_SECONDS) % scenario.sample_interval_seconds == 0:
            seen_queue, seen_cpu, seen_at = float(visible + in_flight), cpu, t
        if t % scenario.sync_period_seconds == 0:
            decision = hpa.reconcile(
                t, pods.desired, {SQS_METRIC: seen_queue, CPU_METRIC: seen_cpu}, ready_replicas=pods.ready(t)
            )
            if decision.desired_replicas != pods.desired:
                scale_events.append((t, pods.desired, decision.desired_replicas))
                pods.set_desired(decision.desired_replicas, t)
        age = None if seen_at is None else t - seen_at
        timeline.append(
            TimelinePoint(t, visible, in_flight, 0, seen_queue, age, cpu, pods.desired, pods.ready(t))
        )
    return Run(timeline, scale_events)


SCENARIOS = {
    "default": Scenario.default(),
    "short": Scenario.short(),
    "five-minutes": Scenario.default(simulated_seconds=300.0),
    "half-hour": Scenario.default(simulated_seconds=1800.0),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_replicas_rise_with_the_burst_and_fall_after_the_drain(name: str) -> None:
    # GIVEN a demo scenario: quiet, one burst, quiet
    scenario = SCENARIOS[name]
    burst_start = scenario.profile.segments[0].duration_seconds
    burst_end = burst_start + scenario.profile.segments[1].duration_seconds

    # WHEN the closed loop runs for the whole scenario
    run = run_closed_loop(scenario)
    stats = timeline_stats(run.timeline)

    # THEN the HPA scaled up during the burst, to the maximum
    ups = [event for event in run.scale_events if event[2] > event[1]]
    downs = [event for event in run.scale_events if event[2] < event[1]]
    assert ups and burst_start < ups[0][0] <= burst_end
    assert stats.max_desired == scenario.hpa.max_replicas
    # AND the backlog drained before the end, and only then did the HPA scale down
    assert stats.drain_seconds is not None
    assert downs and downs[0][0] >= stats.peak_time + stats.drain_seconds
    # AND the run ends back at the minimum, never having left [min, max]
    assert run.timeline[-1].desired == scenario.hpa.min_replicas
    assert all(
        scenario.hpa.min_replicas <= point.desired <= scenario.hpa.max_replicas for point in run.timeline
    )


def test_the_default_run_is_reproducible() -> None:
    # GIVEN the default scenario
    # WHEN the closed loop runs twice
    first, second = run_closed_loop(Scenario.default()), run_closed_loop(Scenario.default())

    # THEN the runs are identical, step for step
    assert first == second


def test_default_scenario_fits_the_wall_clock_budget() -> None:
    # GIVEN the default and short scenarios
    default, short = Scenario.default(), Scenario.short()

    # WHEN their wall-clock length is computed
    # THEN the default runs in under 3 minutes and the short one well under one
    assert default.wall_seconds < 180
    assert short.wall_seconds < 60
    assert short.simulated_seconds >= 8 * 60


def test_a_run_too_short_for_the_story_is_refused() -> None:
    # GIVEN a duration with no room for burst, drain and scale-down
    # WHEN a scenario is built for it
    # THEN the error names the minimum and the option to change
    with pytest.raises(ValueError, match=r"at least 300 simulated seconds.*--duration"):
        Scenario.default(simulated_seconds=120.0)
