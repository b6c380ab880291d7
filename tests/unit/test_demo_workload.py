"""The simulated workload: exact message totals, pod startup, and a bounded, load-following Aurora CPU."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidegauge.demo.workload import CpuModel, Pods, RateProfile, RateSegment, Workload

HYPOTHESIS = settings(max_examples=200, deadline=None)


def burst_profile() -> RateProfile:
    return RateProfile((RateSegment(10, 3.0), RateSegment(10, 60.0), RateSegment(10, 3.0)))


@pytest.mark.parametrize("dt", [1.0, 0.25, 2.5, 7.5])
def test_produce_sends_exactly_the_integral_of_the_rate_whatever_the_step(dt: float) -> None:
    # GIVEN 10 s at 3 msg/s, 10 s at 60 msg/s, 10 s at 3 msg/s
    workload = Workload(burst_profile(), drain_per_pod=5.0)

    # WHEN the producers run for 30 s in steps of dt
    sent = [workload.produce(dt) for _ in range(round(30 / dt))]

    # THEN the total is 30 + 600 + 30 messages, and the clock advanced by 30 s
    assert sum(sent) == 660
    assert workload.elapsed == 30.0


def test_produce_carries_fractions_to_later_steps() -> None:
    # GIVEN producers at 2.5 msg/s
    workload = Workload(RateProfile((RateSegment(100, 2.5),)), drain_per_pod=1.0)

    # WHEN they run four one-second steps
    sent = [workload.produce(1.0) for _ in range(4)]

    # THEN half messages are carried, not lost: 2, 3, 2, 3
    assert sent == [2, 3, 2, 3]


def test_the_last_rate_continues_after_the_profile_ends() -> None:
    # GIVEN a profile that ends at 30 s on 3 msg/s
    workload = Workload(burst_profile(), drain_per_pod=1.0)
    workload.produce(30.0)

    # WHEN the producers run 10 s more
    sent = workload.produce(10.0)

    # THEN they keep the last rate
    assert sent == 30


def test_consume_capacity_is_per_ready_pod_with_carry() -> None:
    # GIVEN pods that each drain 2.5 msg/s
    workload = Workload(burst_profile(), drain_per_pod=2.5)

    # WHEN three pods work four one-second steps, then none work a step
    capacity = [workload.consume_capacity(1.0, 3) for _ in range(4)]
    idle = workload.consume_capacity(1.0, 0)

    # THEN they can process 7.5 msg/s in whole messages, and no pods process nothing
    assert capacity == [7, 8, 7, 8]
    assert idle == 0


def test_single_burst_is_placed_by_fractions_of_the_run() -> None:
    # GIVEN a 600 s run with the default burst placement
    profile = RateProfile.single_burst(600, quiet_rate=3.0, burst_rate=60.0)

    # WHEN the rate is read around the burst
    rates = [profile.rate_at(t) for t in (0, 59.9, 60, 119.9, 120, 599)]

    # THEN the burst covers 60..120 s and the profile lasts the run
    assert rates == [3.0, 3.0, 60.0, 60.0, 3.0, 3.0]
    assert profile.total_seconds == 600


def test_a_burst_that_does_not_fit_the_run_is_rejected() -> None:
    # GIVEN a burst that would end after the run
    # WHEN the profile is built
    # THEN it is refused with the fractions named
    with pytest.raises(ValueError, match="fraction"):
        RateProfile.single_burst(
            600, quiet_rate=1, burst_rate=2, burst_start_fraction=0.5, burst_fraction=0.5
        )


def test_new_pods_become_ready_after_the_startup_delay() -> None:
    # GIVEN one ready pod and a 20 s startup
    pods = Pods(1, startup_seconds=20.0)

    # WHEN the deployment scales to 4 at t=10
    pods.set_desired(4, now=10.0)

    # THEN 4 pods exist at once, but the new ones are ready only from t=30
    assert pods.desired == 4
    assert [pods.ready(t) for t in (10.0, 29.9, 30.0)] == [1, 1, 4]


def test_scale_down_removes_pods_that_are_not_ready_first() -> None:
    # GIVEN 2 ready pods and 3 starting
    pods = Pods(2, startup_seconds=20.0)
    pods.set_desired(5, now=0.0)

    # WHEN the deployment scales down to 3 before the new pods are ready
    pods.set_desired(3, now=5.0)

    # THEN the 2 ready pods stay, and only one starting pod is left
    assert pods.ready(5.0) == 2
    assert pods.ready(20.0) == 3


def test_cpu_is_deterministic_for_a_seed() -> None:
    # GIVEN two workloads with the same seed and one with another
    same = [Workload(burst_profile(), 5.0, seed=11) for _ in range(2)]
    other = Workload(burst_profile(), 5.0, seed=12)

    # WHEN each reports the CPU for the same loads
    loads = [0.0, 10.0, 50.0, 25.0]
    series = [[workload.aurora_cpu(load, 5) for load in loads] for workload in [*same, other]]

    # THEN the same seed gives the same noise, another seed other noise
    assert series[0] == series[1]
    assert series[0] != series[2]


def test_cpu_follows_the_processing_rate() -> None:
    # GIVEN a noise-free CPU model
    workload = Workload(burst_profile(), 5.0, cpu_model=CpuModel(noise_percent=0.0))

    # WHEN the processing rate rises
    cpu = [workload.aurora_cpu(load, 10) for load in (0.0, 10.0, 30.0, 50.0)]

    # THEN the CPU rises with it: base 4 % + 1.2 % per msg/s + 0.3 % per pod
    assert cpu == pytest.approx([7.0, 19.0, 43.0, 67.0])


@HYPOTHESIS
@given(
    loads=st.lists(st.floats(min_value=-10, max_value=1e9), min_size=1, max_size=50),
    replicas=st.integers(0, 10_000),
    seed=st.integers(0, 2**32),
)
def test_cpu_stays_between_3_and_98_percent(loads: list[float], replicas: int, seed: int) -> None:
    # GIVEN a workload with any seed
    workload = Workload(burst_profile(), 5.0, seed=seed)

    # WHEN the CPU is read for any load and pod count
    cpu = [workload.aurora_cpu(load, replicas) for load in loads]

    # THEN it is always a plausible percentage
    assert all(3.0 <= value <= 98.0 for value in cpu)


@HYPOTHESIS
@given(
    steps=st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0]), min_size=1, max_size=200),
    rate=st.floats(min_value=0, max_value=500),
)
def test_produced_messages_never_drift_from_the_integral(steps: list[float], rate: float) -> None:
    # GIVEN producers at a constant rate
    workload = Workload(RateProfile((RateSegment(1000, rate),)), 1.0)

    # WHEN they run any sequence of steps
    sent = sum(workload.produce(dt) for dt in steps)

    # THEN the messages sent are the integral, rounded down, never more and less than one short
    exact = rate * sum(steps)
    assert exact - 1 - 1e-6 <= sent <= exact + 1e-6
