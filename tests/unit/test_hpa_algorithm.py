"""The shared HPA algorithm against outcomes computed by hand from the upstream controller's rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidegauge.hpa_algorithm import (
    Behavior,
    HorizontalPodAutoscaler,
    HpaSpec,
    MetricTarget,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    TargetType,
)

HYPOTHESIS = settings(max_examples=200, deadline=None)
QUEUE = "sqs_messages"
CPU = "aurora_cpu_percent"


def spec_with(
    *metrics: MetricTarget,
    min_replicas: int = 1,
    max_replicas: int = 100,
    behavior: Behavior | None = None,
) -> HpaSpec:
    return HpaSpec(min_replicas=min_replicas, max_replicas=max_replicas, metrics=metrics, behavior=behavior)


def queue_metric(target: float = 100, target_type: TargetType = "AverageValue") -> MetricTarget:
    return MetricTarget(QUEUE, "queue=orders", target_type, target)


def cpu_metric(target: float = 70) -> MetricTarget:
    return MetricTarget(CPU, "cluster=main", "Value", target)


def no_down_window() -> Behavior:
    return Behavior(
        scale_up=ScalingRules.default_scale_up(),
        scale_down=ScalingRules(0, "Max", (ScalingPolicy("Percent", 100, 15),)),
    )


@pytest.mark.parametrize(
    ("target_type", "target", "usage", "current", "ready", "expected"),
    [
        # Value: ratio = usage / target, then ceil(ratio x ready pods) outside 0.9..1.1.
        ("Value", 100, 110, 10, 10, 10),
        ("Value", 100, 111, 10, 10, 12),
        ("Value", 100, 90, 10, 10, 10),
        ("Value", 100, 89, 10, 10, 9),
        ("Value", 100, 200, 4, 3, 6),
        # The HPA reads milli-values, ceil: 0.8999999 is 900m, exactly at the edge of the band.
        ("Value", 1, 0.8999999, 10, 10, 10),
        # AverageValue: ratio = usage / (target x current), then ceil(usage / target).
        ("AverageValue", 100, 1000, 4, 4, 10),
        ("AverageValue", 100, 420, 4, 4, 4),
        ("AverageValue", 100, 450, 4, 4, 5),
        ("AverageValue", 100, 1000, 4, 1, 10),
        ("AverageValue", 100, 0, 4, 4, 0),
    ],
)
def test_metric_proposal_follows_the_replica_calculator(
    target_type: TargetType, target: float, usage: float, current: int, ready: int, expected: int
) -> None:
    # GIVEN an HPA with one External metric
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(target, target_type)))

    # WHEN it reconciles with the summed metric value
    decision = hpa.reconcile(0.0, current, {QUEUE: usage}, ready_replicas=ready)

    # THEN the metric proposes the upstream replica count
    assert decision.proposals == {QUEUE: expected}


def test_the_largest_proposal_of_several_metrics_wins() -> None:
    # GIVEN a backlog that asks for 8 pods and a CPU that asks for 3
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), cpu_metric(70), behavior=Behavior.default()))

    # WHEN the HPA reconciles at 2 replicas
    decision = hpa.reconcile(0.0, 2, {QUEUE: 800, CPU: 91})

    # THEN both proposals are reported and the larger one is applied
    assert decision.proposals == {QUEUE: 8, CPU: 3}
    assert decision.desired_replicas == 6  # the default behavior allows +4 pods from 2
    assert decision.limited_by == "ScaleUpLimit"
    assert decision.scaling_active
    assert decision.reason == "ValidMetricFound"


@pytest.mark.parametrize(
    ("behavior", "current", "usage", "expected", "limited_by"),
    [
        # Legacy: up to max(2 x current, 4); max_replicas wins when it is lower.
        (None, 10, 5000, 20, "TooManyReplicas"),
        (None, 10, 1500, 15, None),
        # Behavior: the rate limit allows 20 from 10, max_replicas stops at 20 too.
        (Behavior.default(), 10, 5000, 20, "TooManyReplicas"),
        (no_down_window(), 5, 0, 2, "TooFewReplicas"),
    ],
)
def test_desired_replicas_are_clamped_to_min_and_max(
    behavior: Behavior | None, current: int, usage: float, expected: int, limited_by: str | None
) -> None:
    # GIVEN an HPA limited to 2..20 replicas
    hpa = HorizontalPodAutoscaler(
        spec_with(queue_metric(100), min_replicas=2, max_replicas=20, behavior=behavior)
    )

    # WHEN a metric proposes more than the maximum or less than the minimum
    decision = hpa.reconcile(0.0, current, {QUEUE: usage})

    # THEN the count is clamped, and the limiting rule is named
    assert decision.desired_replicas == expected
    assert decision.limited_by == limited_by


def test_legacy_scale_up_is_limited_to_twice_current_or_four() -> None:
    # GIVEN an HPA without behavior and a backlog asking for 100 pods
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), max_replicas=50))
    replicas, path = 1, [1]

    # WHEN it reconciles every 15 s, applying each decision
    for sync in range(1, 6):
        replicas = hpa.reconcile(15.0 * sync, replicas, {QUEUE: 10_000}).desired_replicas
        path.append(replicas)

    # THEN each step is max(2 x current, 4), up to max_replicas
    assert path == [1, 4, 8, 16, 32, 50]


def test_default_behavior_scale_up_is_the_larger_of_four_pods_and_double() -> None:
    # GIVEN an HPA with the default behavior and a backlog asking for 100 pods
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), max_replicas=50, behavior=Behavior.default()))
    replicas, path = 1, [1]

    # WHEN it reconciles every 15 s, applying each decision
    for sync in range(1, 6):
        replicas = hpa.reconcile(15.0 * sync, replicas, {QUEUE: 10_000}).desired_replicas
        path.append(replicas)

    # THEN each period allows max(current + 4, 2 x current): 1 -> 5 -> 10 -> 20 -> 40 -> 50
    assert path == [1, 5, 10, 20, 40, 50]


def test_scale_up_within_one_period_counts_from_the_period_start() -> None:
    # GIVEN an HPA with the default behavior that just went from 1 to 5 replicas
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), max_replicas=50, behavior=Behavior.default()))
    assert hpa.reconcile(0.0, 1, {QUEUE: 10_000}).desired_replicas == 5

    # WHEN it reconciles again 5 s later, still within the 15 s policy period
    decision = hpa.reconcile(5.0, 5, {QUEUE: 10_000})

    # THEN the period started at 1 replica, so 5 is already the limit
    assert decision.desired_replicas == 5
    assert decision.limited_by == "ScaleUpLimit"


@pytest.mark.parametrize(
    ("behavior", "held_until", "released_at"),
    [
        # Legacy keeps recommendations that are not older than 300 s ("not Before(cutoff)").
        (None, 300.0, 315.0),
        # With behavior, only recommendations strictly newer than the cutoff ("After(cutoff)") count.
        (Behavior.default(), 285.0, 300.0),
    ],
)
def test_scale_down_keeps_the_highest_recommendation_of_the_last_300_seconds(
    behavior: Behavior | None, held_until: float, released_at: float
) -> None:
    # GIVEN 10 replicas with a backlog right on target at t=0
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), behavior=behavior))
    assert hpa.reconcile(0.0, 10, {QUEUE: 1000}).desired_replicas == 10

    # WHEN the backlog falls to one pod's worth and the HPA reconciles every 15 s
    desired = {t: hpa.reconcile(t, 10, {QUEUE: 100}).desired_replicas for t in range(15, 331, 15)}

    # THEN the replicas are held at 10 for the whole window, then drop to the new recommendation
    assert all(count == 10 for t, count in desired.items() if t <= held_until)
    assert desired[int(released_at)] == 1


def test_scale_down_stabilisation_is_reported() -> None:
    # GIVEN an HPA that recommended 10 replicas a moment ago
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), behavior=Behavior.default()))
    hpa.reconcile(0.0, 10, {QUEUE: 1000})

    # WHEN the metric asks for fewer replicas
    decision = hpa.reconcile(15.0, 10, {QUEUE: 100})

    # THEN the count is held and the reason is the stabilisation window
    assert decision.desired_replicas == 10
    assert decision.stabilized_by == "ScaleDownStabilized"
    assert decision.proposals == {QUEUE: 1}


def test_scale_up_policies_with_select_min_take_the_smallest_change() -> None:
    # GIVEN scale-up policies of +2 pods or +100 % per 60 s, the smaller one selected
    rules = ScalingRules(0, "Min", (ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 100, 60)))
    behavior = Behavior(scale_up=rules, scale_down=ScalingRules.default_scale_down())
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), behavior=behavior))

    # WHEN a large backlog is seen at 4 replicas, again 15 s later, and after the period
    first = hpa.reconcile(0.0, 4, {QUEUE: 5000}).desired_replicas
    within_period = hpa.reconcile(15.0, first, {QUEUE: 5000}).desired_replicas
    next_period = hpa.reconcile(60.0, within_period, {QUEUE: 5000}).desired_replicas

    # THEN each 60 s period adds min(2, 100 %) pods: 4 -> 6, hold, 6 -> 8
    assert (first, within_period, next_period) == (6, 6, 8)


@pytest.mark.parametrize(("select_policy", "expected"), [("Min", 9), ("Max", 5)])
def test_scale_down_select_policy_picks_the_smallest_or_largest_change(
    select_policy: SelectPolicy, expected: int
) -> None:
    # GIVEN scale-down policies of -1 pod or -50 % per 15 s, and no stabilisation window
    rules = ScalingRules(0, select_policy, (ScalingPolicy("Pods", 1, 15), ScalingPolicy("Percent", 50, 15)))
    behavior = Behavior(scale_up=ScalingRules.default_scale_up(), scale_down=rules)
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), behavior=behavior))

    # WHEN an empty queue is seen at 10 replicas
    decision = hpa.reconcile(0.0, 10, {QUEUE: 0})

    # THEN Min removes the fewest pods (1), Max the most (50 %)
    assert decision.desired_replicas == expected
    assert decision.limited_by == "ScaleDownLimit"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # Up: ceil(3 x 1.5) = 5, so that a small percentage still adds a pod.
        (3000, 5),
        # Down: int(3 x 0.5) = 1, truncated, so that a small percentage still removes a pod.
        (0, 1),
    ],
)
def test_percent_policies_round_towards_more_change(usage: float, expected: int) -> None:
    # GIVEN +50 % / -50 % per 15 s policies and no stabilisation window
    rules = (ScalingPolicy("Percent", 50, 15),)
    behavior = Behavior(scale_up=ScalingRules(0, "Max", rules), scale_down=ScalingRules(0, "Max", rules))
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), behavior=behavior))

    # WHEN 3 replicas see a backlog asking for many more, or for none
    decision = hpa.reconcile(0.0, 3, {QUEUE: usage})

    # THEN the half pod is rounded in the direction of the change
    assert decision.desired_replicas == expected


def test_a_disabled_direction_never_scales_that_way() -> None:
    # GIVEN scale-down disabled, scale-up at the defaults
    disabled = ScalingRules(0, "Disabled", (ScalingPolicy("Percent", 100, 15),))
    behavior = Behavior(scale_up=ScalingRules.default_scale_up(), scale_down=disabled)
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), behavior=behavior))

    # WHEN the queue empties, then fills up
    down = hpa.reconcile(0.0, 5, {QUEUE: 0})
    up = hpa.reconcile(15.0, 5, {QUEUE: 800})

    # THEN the replicas never go down, but still go up
    assert down.desired_replicas == 5
    assert down.limited_by == "ScaleDownLimit"
    assert up.desired_replicas == 8


def test_all_metrics_failing_holds_replicas() -> None:
    # GIVEN an HPA with two metrics
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), cpu_metric(70), behavior=Behavior.default()))

    # WHEN neither can be fetched (one None, one absent)
    decision = hpa.reconcile(0.0, 4, {QUEUE: None})

    # THEN the replicas are held and ScalingActive is False, as after FailedGetExternalMetric
    assert decision.desired_replicas == 4
    assert decision.proposals == {}
    assert not decision.scaling_active
    assert decision.reason == "FailedGetExternalMetric"


def test_a_failed_metric_does_not_stop_a_scale_up_from_the_others() -> None:
    # GIVEN an HPA whose CPU metric cannot be fetched
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), cpu_metric(70), behavior=Behavior.default()))

    # WHEN the backlog asks for more replicas
    decision = hpa.reconcile(0.0, 2, {QUEUE: 500, CPU: None})

    # THEN the HPA scales up on the metric it has
    assert decision.desired_replicas == 5
    assert decision.scaling_active


def test_a_failed_metric_blocks_a_scale_down_from_the_others() -> None:
    # GIVEN an HPA whose CPU metric cannot be fetched
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), cpu_metric(70), behavior=no_down_window()))

    # WHEN the backlog alone would scale down
    decision = hpa.reconcile(0.0, 6, {QUEUE: 100, CPU: None})

    # THEN the replicas are held: the missing metric might have asked for more
    assert decision.desired_replicas == 6
    assert decision.proposals == {QUEUE: 1}
    assert not decision.scaling_active
    assert decision.reason == "FailedGetExternalMetric"


def test_zero_current_replicas_disables_scaling_when_min_replicas_is_not_zero() -> None:
    # GIVEN a target scaled to zero by hand
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100)))

    # WHEN the HPA reconciles with a large backlog
    decision = hpa.reconcile(0.0, 0, {QUEUE: 5000})

    # THEN it leaves the target alone
    assert decision.desired_replicas == 0
    assert not decision.scaling_active
    assert decision.reason == "ScalingDisabled"


@pytest.mark.parametrize(
    ("current", "expected", "reason"),
    [(12, 10, "CurrentAboveMaxReplicas"), (1, 2, "CurrentBelowMinReplicas")],
)
def test_current_replicas_out_of_range_are_brought_back_without_metrics(
    current: int, expected: int, reason: str
) -> None:
    # GIVEN an HPA limited to 2..10 replicas
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100), min_replicas=2, max_replicas=10))

    # WHEN the target has been scaled outside that range by hand
    decision = hpa.reconcile(0.0, current, {QUEUE: None})

    # THEN the HPA moves it to the nearest bound, whatever the metrics say
    assert decision.desired_replicas == expected
    assert decision.reason == reason


def test_time_must_not_go_backwards() -> None:
    # GIVEN an HPA that reconciled at t=30
    hpa = HorizontalPodAutoscaler(spec_with(queue_metric(100)))
    hpa.reconcile(30.0, 1, {QUEUE: 0})

    # WHEN it is asked to reconcile at an earlier time
    # THEN it refuses: the windows would be meaningless
    with pytest.raises(ValueError, match="backwards"):
        hpa.reconcile(15.0, 1, {QUEUE: 0})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: spec_with(queue_metric(), min_replicas=-1), "must not be negative"),
        (lambda: spec_with(queue_metric(), min_replicas=5, max_replicas=4), "max_replicas"),
        (lambda: spec_with(), "at least one metric"),
        (lambda: spec_with(queue_metric(), queue_metric()), "unique"),
        (lambda: ScalingRules(0, "Max", ()), "at least one policy"),
        (lambda: ScalingPolicy("Pods", 0, 15), "greater than 0"),
        (lambda: ScalingRules(3601, "Max", (ScalingPolicy("Pods", 1, 15),)), "0..3600"),
        (lambda: MetricTarget(QUEUE, "queue=a", "AverageValue", 0), "at least 0.001"),
    ],
)
def test_invalid_specs_are_rejected_with_the_field_named(build: Callable[[], object], message: str) -> None:
    # GIVEN a spec the API server would reject
    # WHEN it is built
    # THEN a ValueError names the problem
    with pytest.raises(ValueError, match=message):
        build()


BEHAVIORS = st.sampled_from([None, Behavior.default(), no_down_window()])
METRIC_SEQUENCES = st.lists(
    st.tuples(
        st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
        st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
    ),
    min_size=1,
    max_size=40,
)


@HYPOTHESIS
@given(
    behavior=BEHAVIORS,
    bounds=st.tuples(st.integers(1, 20), st.integers(0, 30)),
    start=st.integers(0, 50),
    metrics=METRIC_SEQUENCES,
)
def test_desired_replicas_stay_within_min_and_max(
    behavior: Behavior | None,
    bounds: tuple[int, int],
    start: int,
    metrics: list[tuple[float | None, float | None]],
) -> None:
    # GIVEN any HPA and any starting replica count
    min_replicas, extra = bounds
    spec = spec_with(
        queue_metric(100),
        cpu_metric(70),
        min_replicas=min_replicas,
        max_replicas=min_replicas + extra,
        behavior=behavior,
    )
    hpa = HorizontalPodAutoscaler(spec)
    replicas = start

    # WHEN it reconciles on any sequence of metric values, applying each decision
    for sync, (queue, cpu) in enumerate(metrics):
        replicas = hpa.reconcile(15.0 * sync, replicas, {QUEUE: queue, CPU: cpu}).desired_replicas

        # THEN the replicas are always within [min, max] (0 stays 0: scaling is disabled)
        assert replicas == 0 if start == 0 else spec.min_replicas <= replicas <= spec.max_replicas


@HYPOTHESIS
@given(
    behavior=BEHAVIORS,
    current=st.integers(1, 30),
    target=st.integers(1, 10_000),
    syncs=st.integers(1, 40),
    target_type=st.sampled_from(["Value", "AverageValue"]),
)
def test_a_metric_on_target_never_changes_replicas(
    behavior: Behavior | None, current: int, target: int, syncs: int, target_type: TargetType
) -> None:
    # GIVEN an HPA whose metric sits exactly on its target
    hpa = HorizontalPodAutoscaler(
        spec_with(queue_metric(target, target_type), max_replicas=30, behavior=behavior)
    )
    usage = target * current if target_type == "AverageValue" else target

    # WHEN it reconciles again and again
    decisions = [hpa.reconcile(15.0 * sync, current, {QUEUE: usage}) for sync in range(syncs)]

    # THEN the replicas never change
    assert {decision.desired_replicas for decision in decisions} == {current}


@HYPOTHESIS
@given(current=st.integers(1, 1000), usage=st.floats(min_value=0, max_value=1e7))
def test_default_behavior_never_more_than_doubles_or_adds_four_at_once(current: int, usage: float) -> None:
    # GIVEN an HPA with the default behavior and no scaling history
    hpa = HorizontalPodAutoscaler(
        spec_with(queue_metric(100), max_replicas=10_000, behavior=Behavior.default())
    )

    # WHEN it reconciles on any backlog
    decision = hpa.reconcile(0.0, current, {QUEUE: usage})

    # THEN one step adds at most max(4 pods, 100 %)
    assert decision.desired_replicas <= max(current + 4, 2 * current)
