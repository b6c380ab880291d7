"""The demo's closed loop without servers: the real driver over an in-memory queue and sampled metrics.

This checks the scenario's numbers: the real demo puts moto SQS behind the driver's AWS calls and the
collectors, Redis and the aggregated API server behind its metric reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.clock import FakeClock
from tests.support.demo_fakes import MemoryAws, SampledMetrics
from tidegauge.demo.driver import Driver, HpaSync
from tidegauge.demo.scenario import Scenario
from tidegauge.demo.timeline import TimelinePoint, timeline_stats


@dataclass(frozen=True)
class Run:
    timeline: list[TimelinePoint]
    scale_events: list[tuple[float, int, int]]
    syncs: list[HpaSync]


def run_closed_loop(scenario: Scenario) -> Run:
    """Run the demo's :class:`Driver` for the whole scenario against fakes of its AWS and metric reads."""
    clock = FakeClock()
    metrics = SampledMetrics(scenario, wall=clock)
    driver = Driver(
        scenario,
        MemoryAws(),
        metrics,
        on_point=metrics.record,
        monotonic=clock,
        wall=clock,
        sleep=clock.sleep,
    )
    driver.run(round(scenario.simulated_seconds / scenario.step_seconds))
    scale_events = [
        (sync.t, sync.current_replicas, sync.desired_replicas)
        for sync in driver.syncs
        if sync.desired_replicas != sync.current_replicas
    ]
    return Run(driver.timeline, scale_events, driver.syncs)


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
    assert ups
    assert burst_start < ups[0][0] <= burst_end
    assert stats.max_desired == scenario.hpa.max_replicas
    # AND the backlog drained before the end, and only then did the HPA scale down
    assert stats.drain_seconds is not None
    assert downs
    assert downs[0][0] >= stats.peak_time + stats.drain_seconds
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
