"""The shared HPA algorithm against the upstream controller's own test tables, and what it grew beyond them.

Each case of ``UPSTREAM`` is one test of kubernetes ``pkg/controller/podautoscaler``, named in its id
(replica_calculator_test.go ``TestReplicaCalc*``, horizontal_test.go ``TestScale*``): milli-value levels
and targets as written there, the replicas the upstream test expects. Pods metrics are a ``Value`` target
on the pods' average, with the pods that reported as the ready pods (what ``calcPlainMetricReplicas``
does when no pod is missing or unready).
"""

from __future__ import annotations

import pytest

from tidegauge.hpa_algorithm import (
    Behavior,
    History,
    HorizontalPodAutoscaler,
    HpaSpec,
    MetricTarget,
    ScalingPolicy,
    ScalingRules,
    TargetType,
)

QPS = "qps"


def milli(value: int) -> float:
    return value / 1000


def hpa_for(
    target_type: TargetType,
    target_milli: int,
    *,
    min_replicas: int = 1,
    max_replicas: int = 100,
    behavior: Behavior | None = None,
) -> HorizontalPodAutoscaler:
    metric = MetricTarget(QPS, "label=value", target_type, milli(target_milli))
    spec = HpaSpec(min_replicas, max_replicas, (metric,), behavior=behavior)
    return HorizontalPodAutoscaler(spec)


# (id, target type, target (milli), summed usage (milli), current replicas, ready pods, expected)
UPSTREAM = [
    # replica_calculator_test.go, External Value: ceil(usage / target x ready pods) outside 0.9..1.1.
    ("TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods", "Value", 4400, 8600, 3, 1, 2),
    ("TestReplicaCalcScaleDownCMExternal", "Value", 14334, 8600, 5, 5, 3),
    ("TestReplicaCalcToleranceCMExternal", "Value", 8888, 8600, 3, 3, 3),
    # External AverageValue: ceil(usage / target) when usage / (target x replicas) leaves the band.
    ("TestReplicaCalcScaleUpPerPodCMExternal", "AverageValue", 2150, 8600, 3, 3, 4),
    ("TestReplicaCalcScaleDownPerPodCMExternal", "AverageValue", 2867, 8600, 5, 5, 3),
    ("TestReplicaCalcTolerancePerPodCMExternal", "AverageValue", 2900, 8600, 3, 3, 3),
    # Object Value / AverageValue follow the same two formulas.
    ("TestReplicaCalcScaleUpCMObject", "Value", 15000, 20000, 3, 3, 4),
    ("TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods", "Value", 10000, 50000, 3, 1, 5),
    ("TestReplicaCalcScaleDownCMObject", "Value", 20000, 12000, 5, 5, 3),
    ("TestReplicaCalcToleranceCMObject", "Value", 20000, 20666, 3, 3, 3),
    ("TestReplicaCalcScaleUpCMPerPodObject", "AverageValue", 5000, 20000, 3, 3, 4),
    ("TestReplicaCalcScaleDownPerPodCMObject", "AverageValue", 2000, 6000, 5, 5, 3),
    ("TestReplicaCalcTolerancePerPodCMObject", "AverageValue", 5000, 20166, 4, 4, 4),
    # Pods metrics: the average of the pods' values against the target, times the pods that reported.
    ("TestReplicaCalcScaleDownCM", "Value", 20000, 12000, 5, 5, 3),
    ("TestReplicaCalcToleranceCM", "Value", 20000, 20666, 3, 3, 3),
    ("TestReplicaCalcScaleUpCMExternal", "Value", 4400, 8600, 1, 1, 2),
    # horizontal_test.go runs the whole reconcile (min 2, max 6): see RECONCILE below.
    ("TestScaleUpCMExternal", "Value", 6666, 8600, 3, 3, 4),
    ("TestScaleUpPerPodCMExternal", "AverageValue", 2222, 8600, 3, 3, 4),
]
RECONCILE = [case for case in UPSTREAM if case[0].startswith("TestScale")]


@pytest.mark.parametrize(
    ("target_type", "target", "usage", "current", "ready", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in UPSTREAM],
)
def test_proposals_match_the_upstream_test_tables(
    target_type: TargetType, target: int, usage: int, current: int, ready: int, expected: int
) -> None:
    # GIVEN the upstream case's metric
    hpa = hpa_for(target_type, target)

    # WHEN the HPA reconciles on the case's metric level
    decision = hpa.reconcile(0.0, current, {QPS: milli(usage)}, ready_replicas=ready)

    # THEN the metric proposes what the upstream calculator test expects
    assert decision.proposals == {QPS: expected}


@pytest.mark.parametrize(
    ("target_type", "target", "usage", "current", "ready", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in RECONCILE],
)
def test_decisions_match_the_upstream_controller_tables(
    target_type: TargetType, target: int, usage: int, current: int, ready: int, expected: int
) -> None:
    # GIVEN horizontal_test.go's HPA: 2..6 replicas, no behavior
    hpa = hpa_for(target_type, target, min_replicas=2, max_replicas=6)

    # WHEN it reconciles on the case's metric level
    decision = hpa.reconcile(0.0, current, {QPS: milli(usage)}, ready_replicas=ready)

    # THEN the whole reconcile decides what the upstream controller test expects
    assert decision.desired_replicas == expected


def test_several_metrics_take_the_largest_proposal_then_max_replicas() -> None:
    # GIVEN an HPA (1..6) on an External Value and an External AverageValue metric
    spec = HpaSpec(
        1,
        6,
        (
            MetricTarget("backlog", "queue=a", "AverageValue", milli(2222)),
            MetricTarget("cpu", "cluster=a", "Value", milli(6666)),
        ),
    )
    hpa = HorizontalPodAutoscaler(spec)

    # WHEN the backlog asks for ceil(30000 / 2222) = 14 and the CPU for ceil(1.29 x 3) = 4
    decision = hpa.reconcile(0.0, 3, {"backlog": milli(30000), "cpu": milli(8600)})

    # THEN the larger wins and is clamped to max_replicas (the legacy 2x-or-4 limit allows 6 from 3)
    assert decision.proposals == {"backlog": 14, "cpu": 4}
    assert decision.recommendation == 14
    assert decision.desired_replicas == 6
    assert decision.limited_by == "TooManyReplicas"


def test_min_replicas_holds_a_scale_down() -> None:
    # GIVEN an HPA with min 2 (horizontal_test.go's bounds) and no scale-down window
    behavior = Behavior(
        ScalingRules.default_scale_up(), ScalingRules(0, "Max", (ScalingPolicy("Percent", 100, 15),))
    )
    hpa = hpa_for("AverageValue", 2867, min_replicas=2, max_replicas=6, behavior=behavior)

    # WHEN the metric proposes 1
    decision = hpa.reconcile(0.0, 5, {QPS: milli(2000)})

    # THEN the HPA stops at min_replicas and says why
    assert decision.proposals == {QPS: 1}
    assert decision.desired_replicas == 2
    assert decision.limited_by == "TooFewReplicas"


def no_down_window(up: float | None = None, down: float | None = None) -> Behavior:
    """Upstream's default policies, no scale-down window, and the given per-direction tolerances."""
    return Behavior(
        ScalingRules(
            0, "Max", (ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)), tolerance=up
        ),
        ScalingRules(0, "Max", (ScalingPolicy("Percent", 100, 15),), tolerance=down),
    )


@pytest.mark.parametrize(
    ("up", "down", "ratio", "current", "expected"),
    [
        # A wide scale-up band keeps 3 at ratio 1.3; the default band scales to ceil(1.3 x 3) = 4.
        (0.5, None, 1.3, 3, 3),
        (None, None, 1.3, 3, 4),
        # A wide scale-down band keeps 10 at ratio 0.8; the default band scales to 8.
        (None, 0.3, 0.8, 10, 10),
        (None, None, 0.8, 10, 8),
        # A narrow scale-down band scales 20 to 19 at ratio 0.95, which the default band holds.
        (None, 0.01, 0.95, 20, 19),
        (None, None, 0.95, 20, 20),
        # Each band only moves its own direction: a wide scale-down band leaves a scale-up alone.
        (None, 0.5, 1.3, 3, 4),
    ],
)
def test_tolerance_is_per_direction(
    up: float | None, down: float | None, ratio: float, current: int, expected: int
) -> None:
    # GIVEN an HPA whose behavior sets a tolerance for one direction (Kubernetes 1.35+), else 0.1
    hpa = hpa_for("Value", 1000, behavior=no_down_window(up, down))

    # WHEN it reconciles at `current` ready replicas on usage / target = ratio
    decision = hpa.reconcile(0.0, current, {QPS: ratio})

    # THEN the band of that direction decides whether the ratio changes anything
    assert decision.desired_replicas == expected
    assert decision.details[QPS].within_tolerance == (expected == current)


def test_average_value_divides_by_the_status_replicas_during_a_rollout() -> None:
    # GIVEN a rollout: spec.replicas 4 but the HPA's status counts 8 pods (surge)
    hpa = hpa_for("AverageValue", 1000)

    # WHEN usage 8.4 against 1 per pod: 8.4 / (1 x 8) = 1.05 is inside the band
    decision = hpa.reconcile(0.0, 4, {QPS: 8.4}, status_replicas=8)

    # THEN upstream keeps the status count (8), where dividing by spec's 4 would propose ceil(8.4) = 9
    assert decision.proposals == {QPS: 8}
    assert decision.details[QPS].ratio == pytest.approx(1.05)


def test_min_replicas_zero_scales_up_from_zero_on_the_ratio() -> None:
    # GIVEN an HPA allowed to scale to zero (HPAScaleToZero), its target at 0 replicas
    hpa = hpa_for("Value", 100_000, min_replicas=0)

    # WHEN the backlog is 2.5 x the target
    decision = hpa.reconcile(0.0, 0, {QPS: 250})

    # THEN it proposes ceil(2.5) = 3 without tolerance or ready pods (getUsageRatioReplicaCount at 0)
    assert decision.scaling_active
    assert decision.proposals == {QPS: 3}
    assert decision.desired_replicas == 3


def test_min_replicas_zero_scales_down_to_zero() -> None:
    # GIVEN an HPA with minReplicas 0 and no scale-down window, at 2 replicas
    behavior = Behavior(
        ScalingRules.default_scale_up(), ScalingRules(0, "Max", (ScalingPolicy("Percent", 100, 15),))
    )
    hpa = hpa_for("AverageValue", 1000, min_replicas=0, behavior=behavior)

    # WHEN the queue is empty
    decision = hpa.reconcile(0.0, 2, {QPS: 0})

    # THEN it goes to zero
    assert decision.desired_replicas == 0


def test_a_seeded_recommendation_is_part_of_the_stabilisation_window() -> None:
    # GIVEN the default behavior (300 s scale-down window), one seeded with a recommendation of 6
    # made 120 s ago, one fresh (upstream seeds the current count on first sight)
    spec = HpaSpec(1, 100, (MetricTarget(QPS, "", "AverageValue", 1),), Behavior.default())
    seeded = HorizontalPodAutoscaler(spec, history=History(recommendations=((-120.0, 6),)))
    fresh = HorizontalPodAutoscaler(spec)

    # WHEN both reconcile at 8 replicas on a backlog that proposes 2
    seeded_decision = seeded.reconcile(0.0, 8, {QPS: 2})
    fresh_decision = fresh.reconcile(0.0, 8, {QPS: 2})

    # THEN the seeded one goes down to the window's highest (6); the fresh one holds 8
    assert seeded_decision.desired_replicas == 6
    assert fresh_decision.desired_replicas == 8
    assert seeded_decision.stabilized_by == fresh_decision.stabilized_by == "ScaleDownStabilized"


def test_a_seeded_scale_event_counts_in_the_policy_period() -> None:
    # GIVEN the default behavior (+100 % or +4 pods per 15 s), one seeded with a +4 scale-up 5 s ago
    spec = HpaSpec(1, 100, (MetricTarget(QPS, "", "AverageValue", 1),), Behavior.default())
    seeded = HorizontalPodAutoscaler(spec, history=History(scale_up_events=((-5.0, 4),)))
    fresh = HorizontalPodAutoscaler(spec)

    # WHEN both reconcile at 8 replicas on a backlog that proposes 40
    seeded_decision = seeded.reconcile(0.0, 8, {QPS: 40})
    fresh_decision = fresh.reconcile(0.0, 8, {QPS: 40})

    # THEN the seeded period started at 4 pods: max(4 + 4, 2 x 4) = 8; the fresh one allows 16
    assert seeded_decision.desired_replicas == 8
    assert seeded_decision.limited_by == "ScaleUpLimit"
    assert fresh_decision.desired_replicas == 16
