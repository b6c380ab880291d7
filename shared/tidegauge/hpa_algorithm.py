"""The upstream HPA algorithm, as a pure class with the clock passed in (shared by the demo and ``explain``).

It follows kube-controller-manager's ``pkg/controller/podautoscaler`` (horizontal.go and
replica_calculator.go): proposals per metric from milli-values and the tolerance band (per direction,
``behavior.scaleUp/scaleDown.tolerance`` of Kubernetes 1.35+, else the controller's 0.1), the maximum
proposal, then either the legacy normalisation (no ``behavior``: scale-down stabilised over 300 s,
scale-up limited to ``max(2 x current, 4)``) or the ``behavior`` one (stabilisation windows, then
Pods/Percent policies over a history of scale events, which can be seeded from what a cluster showed).

A ``Value`` target is External or Object ``Value`` (usage / target x ready pods); an ``AverageValue``
target is External or Object ``AverageValue`` (usage / target, with the tolerance checked against the
HPA's *status* replicas, as upstream does during rollouts). A Pods metric is a ``Value`` target on the
pods' average with the pods that reported as ready pods. ``minReplicas: 0`` (HPAScaleToZero) scales from
zero on ``ceil(ratio)``. The demo replays exactly what a cluster would decide; ``tidegauge explain hpa``
shows the same numbers for a real HPA.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from tidegauge.hpa_spec import (
    DOWNSCALE_STABILIZATION_SECONDS,
    Behavior,
    HpaSpec,
    MetricTarget,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    TargetType,
    Tolerances,
)
from tidegauge.quantity import milli_value

_SCALE_UP_LIMIT_FACTOR = 2.0
_SCALE_UP_LIMIT_MINIMUM = 4.0
_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)

__all__ = [
    "DOWNSCALE_STABILIZATION_SECONDS",
    "Behavior",
    "HpaSpec",
    "MetricTarget",
    "PolicyType",
    "ScalingPolicy",
    "ScalingRules",
    "SelectPolicy",
    "TargetType",
    "Tolerances",
]


@dataclass(frozen=True)
class MetricProposal:
    """One metric's arithmetic: its usage ratio, whether that is inside the band, and the replicas."""

    ratio: float
    within_tolerance: bool
    replicas: int


def propose(
    metric: MetricTarget, value: float, tolerances: Tolerances, current: int, ready: int, status: int
) -> MetricProposal:
    """``GetExternalMetricReplicas`` / ``GetExternalPerPodMetricReplicas`` (and their Object twins).

    ``Value``: ratio = usage / target; at ``current`` 0 (scale from zero) ``ceil(ratio)``, else inside
    the band ``current``, outside ``ceil(ratio x ready)``. ``AverageValue``: ratio = usage / (target x
    ``status`` replicas); inside the band ``status``, outside ``ceil(usage / target)``.
    """
    usage = float(milli_value(value))
    target = float(milli_value(metric.target))
    if metric.target_type == "Value":
        ratio = usage / target
        if current == 0:
            return MetricProposal(ratio, False, _to_int32(math.ceil(ratio)))
        if tolerances.within(ratio):
            return MetricProposal(ratio, True, current)
        return MetricProposal(ratio, False, _to_int32(math.ceil(ratio * float(ready))))
    # Upstream divides by zero here when the status shows no replicas: +Inf (or NaN), never inside.
    ratio = usage / (target * float(status)) if status else math.inf
    if tolerances.within(ratio):
        return MetricProposal(ratio, True, status)
    return MetricProposal(ratio, False, _to_int32(math.ceil(usage / target)))


@dataclass(frozen=True)
class History:
    """What the controller remembers, to start from instead of nothing: (time, replicas) recommendations
    and (time, change) scale events of each direction, as a cluster's events and status showed them."""

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_up_events: tuple[tuple[float, int], ...] = ()
    scale_down_events: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class Decision:
    """The outcome of one reconcile.

    ``proposals``: the replica count each metric proposed (failed metrics are absent).
    ``limited_by``: the upstream ``ScalingLimited`` reason when a rule changed the count
    (``ScaleUpLimit``, ``ScaleDownLimit``, ``TooManyReplicas``, ``TooFewReplicas``), else None.
    ``scaling_active`` and ``reason``: the ``ScalingActive`` condition (``ValidMetricFound``,
    ``FailedGetExternalMetric``, ``ScalingDisabled``), or ``CurrentAboveMaxReplicas`` /
    ``CurrentBelowMinReplicas`` when the count was out of range and metrics were not consulted.
    ``stabilized_by``: ``ScaleUpStabilized`` or ``ScaleDownStabilized`` when a window changed it.
    """

    desired_replicas: int
    proposals: Mapping[str, int]
    limited_by: str | None
    scaling_active: bool
    reason: str
    stabilized_by: str | None = None
    details: Mapping[str, MetricProposal] = field(default_factory=lambda: MappingProxyType({}))
    """Per metric: ratio, band and replicas (what ``proposals`` holds, with the arithmetic)."""
    recommendation: int | None = None
    """The largest proposal before stabilisation, policies and min/max (None when not consulted)."""


@dataclass(frozen=True)
class _Recommendation:
    replicas: int
    at: float


@dataclass(frozen=True)
class _ScaleEvent:
    change: int
    at: float
    outdated: bool = False


class HorizontalPodAutoscaler:
    """One HPA's controller state (recommendations and scale events), reconciled at injected times.

    Call :meth:`reconcile` once per sync period (15 s upstream) with the target's current
    ``spec.replicas``; apply ``desired_replicas`` to the target before the next call.
    """

    def __init__(
        self,
        spec: HpaSpec,
        *,
        downscale_stabilization_seconds: int = DOWNSCALE_STABILIZATION_SECONDS,
        history: History | None = None,
    ) -> None:
        self.spec = spec
        self._downscale_stabilization_seconds = downscale_stabilization_seconds
        seed = history or History()
        self._recommendations = [_Recommendation(replicas, at) for at, replicas in seed.recommendations]
        self._scale_up_events = [_ScaleEvent(change, at) for at, change in seed.scale_up_events]
        self._scale_down_events = [_ScaleEvent(change, at) for at, change in seed.scale_down_events]
        self._last_now: float | None = None

    def reconcile(
        self,
        now: float,
        current_replicas: int,
        metric_values: Mapping[str, float | None],
        *,
        ready_replicas: int | None = None,
        status_replicas: int | None = None,
        ready_by_metric: Mapping[str, int] | None = None,
    ) -> Decision:
        """Decide the replica count at time ``now`` (seconds, never decreasing between calls).

        ``metric_values`` maps each metric name to the sum of its External items, or None when the
        fetch failed (a missing name counts as failed). ``ready_replicas`` is the number of ready
        pods, which a ``Value`` target multiplies by; ``status_replicas`` is the HPA's
        ``status.currentReplicas``, which an ``AverageValue`` target divides by. Both default to
        ``current_replicas`` (the target's ``spec.replicas``). ``ready_by_metric`` overrides the ready
        count for some metrics (a Pods metric counts the pods that reported).
        """
        if current_replicas < 0:
            raise ValueError(f"current_replicas must not be negative, got {current_replicas}")
        if self._last_now is not None and now < self._last_now:
            raise ValueError(f"time went backwards: {now} after {self._last_now}")
        self._last_now = now
        ready = current_replicas if ready_replicas is None else ready_replicas
        status = current_replicas if status_replicas is None else status_replicas
        spec = self.spec
        if not self._recommendations:
            self._recommendations.append(_Recommendation(current_replicas, now))

        if current_replicas == 0 and spec.min_replicas != 0:
            return Decision(0, MappingProxyType({}), None, False, "ScalingDisabled")
        if current_replicas > spec.max_replicas:
            self._store_scale_event(current_replicas, spec.max_replicas, now)
            return Decision(
                spec.max_replicas, MappingProxyType({}), "TooManyReplicas", True, "CurrentAboveMaxReplicas"
            )
        if current_replicas < spec.min_replicas:
            self._store_scale_event(current_replicas, spec.min_replicas, now)
            return Decision(
                spec.min_replicas, MappingProxyType({}), "TooFewReplicas", True, "CurrentBelowMinReplicas"
            )

        proposals: dict[str, int] = {}
        details: dict[str, MetricProposal] = {}
        tolerances = spec.tolerances()
        failed = 0
        for metric in spec.metrics:
            value = metric_values.get(metric.name)
            if value is None:
                failed += 1
                continue
            metric_ready = ready if ready_by_metric is None else ready_by_metric.get(metric.name, ready)
            details[metric.name] = propose(metric, value, tolerances, current_replicas, metric_ready, status)
            proposals[metric.name] = details[metric.name].replicas
        frozen_proposals = MappingProxyType(proposals)
        frozen_details = MappingProxyType(details)

        # Upstream keeps the first proposal, then any larger one.
        metric_replicas = 0
        for proposal in proposals.values():
            if metric_replicas == 0 or proposal > metric_replicas:
                metric_replicas = proposal
        # All failed, or some failed and the rest would scale down: hold, as upstream does.
        if failed and (not proposals or metric_replicas < current_replicas):
            return Decision(
                current_replicas,
                frozen_proposals,
                None,
                False,
                "FailedGetExternalMetric",
                details=frozen_details,
            )

        prenormalized = max(metric_replicas, 0)
        if spec.behavior is None:
            desired, limited_by, stabilized_by = self._normalize_legacy(current_replicas, prenormalized, now)
        else:
            desired, limited_by, stabilized_by = self._normalize_with_behavior(
                spec.behavior, current_replicas, prenormalized, now
            )
        if desired != current_replicas:
            self._store_scale_event(current_replicas, desired, now)
        return Decision(
            desired,
            frozen_proposals,
            limited_by,
            True,
            "ValidMetricFound",
            stabilized_by,
            details=frozen_details,
            recommendation=prenormalized,
        )

    def _normalize_legacy(
        self, current: int, prenormalized: int, now: float
    ) -> tuple[int, str | None, str | None]:
        """``normalizeDesiredReplicas``: highest recommendation of the window, then min/max and 2x-or-4."""
        cutoff = now - self._downscale_stabilization_seconds
        stabilized = prenormalized
        old_index: int | None = None
        for index, recommendation in enumerate(self._recommendations):
            if recommendation.at < cutoff:
                old_index = index
            elif recommendation.replicas > stabilized:
                stabilized = recommendation.replicas
        self._record(_Recommendation(prenormalized, now), old_index)
        stabilized_by = "ScaleDownStabilized" if stabilized != prenormalized else None

        spec = self.spec
        scale_up_limit = int(max(_SCALE_UP_LIMIT_FACTOR * current, _SCALE_UP_LIMIT_MINIMUM))
        if spec.max_replicas > scale_up_limit:
            maximum_allowed, limiting_reason = scale_up_limit, "ScaleUpLimit"
        else:
            maximum_allowed, limiting_reason = spec.max_replicas, "TooManyReplicas"
        if stabilized < spec.min_replicas:
            return spec.min_replicas, "TooFewReplicas", stabilized_by
        if stabilized > maximum_allowed:
            return maximum_allowed, limiting_reason, stabilized_by
        return stabilized, None, stabilized_by

    def _normalize_with_behavior(
        self, behavior: Behavior, current: int, prenormalized: int, now: float
    ) -> tuple[int, str | None, str | None]:
        """``normalizeDesiredReplicasWithBehaviors``: stabilisation windows, then the rate policies."""
        up_cutoff = now - behavior.scale_up.stabilization_window_seconds
        down_cutoff = now - behavior.scale_down.stabilization_window_seconds
        up_recommendation = prenormalized
        down_recommendation = prenormalized
        old_index: int | None = None
        for index, recommendation in enumerate(self._recommendations):
            if recommendation.at > up_cutoff:
                up_recommendation = min(recommendation.replicas, up_recommendation)
            if recommendation.at > down_cutoff:
                down_recommendation = max(recommendation.replicas, down_recommendation)
            if recommendation.at < up_cutoff and recommendation.at < down_cutoff:
                old_index = index
        stabilized = max(current, up_recommendation)
        stabilized = min(stabilized, down_recommendation)
        self._record(_Recommendation(prenormalized, now), old_index)
        stabilized_by: str | None = None
        if stabilized != prenormalized:
            stabilized_by = "ScaleUpStabilized" if prenormalized >= current else "ScaleDownStabilized"

        spec = self.spec
        if stabilized > current:
            scale_up_limit = max(self._scale_up_limit(behavior.scale_up, current, now), current)
            if spec.max_replicas > scale_up_limit:
                maximum_allowed, limiting_reason = scale_up_limit, "ScaleUpLimit"
            else:
                maximum_allowed, limiting_reason = spec.max_replicas, "TooManyReplicas"
            if stabilized > maximum_allowed:
                return maximum_allowed, limiting_reason, stabilized_by
        elif stabilized < current:
            scale_down_limit = min(self._scale_down_limit(behavior.scale_down, current, now), current)
            if spec.min_replicas < scale_down_limit:
                minimum_allowed, limiting_reason = scale_down_limit, "ScaleDownLimit"
            else:
                minimum_allowed, limiting_reason = spec.min_replicas, "TooFewReplicas"
            if stabilized < minimum_allowed:
                return minimum_allowed, limiting_reason, stabilized_by
        return stabilized, None, stabilized_by

    def _scale_up_limit(self, rules: ScalingRules, current: int, now: float) -> int:
        """``calculateScaleUpLimitWithScalingRules``: the most replicas the policies allow now."""
        if rules.select_policy == "Disabled":
            return current
        pick_min = rules.select_policy == "Min"
        result = _INT32_MAX if pick_min else _INT32_MIN
        for policy in rules.policies:
            period_start = self._period_start_replicas(current, policy.period_seconds, now)
            if policy.type == "Pods":
                proposed = period_start + policy.value
            else:
                # Rounded up so that a small percentage still adds a pod.
                proposed = math.ceil(period_start * (1 + policy.value / 100))
            result = min(result, proposed) if pick_min else max(result, proposed)
        return result

    def _scale_down_limit(self, rules: ScalingRules, current: int, now: float) -> int:
        """``calculateScaleDownLimitWithBehaviors``: the fewest replicas the policies allow now."""
        if rules.select_policy == "Disabled":
            return current
        pick_min_change = rules.select_policy == "Min"
        result = _INT32_MIN if pick_min_change else _INT32_MAX
        for policy in rules.policies:
            period_start = self._period_start_replicas(current, policy.period_seconds, now)
            if policy.type == "Pods":
                proposed = period_start - policy.value
            else:
                proposed = int(period_start * (1 - policy.value / 100))
            result = max(result, proposed) if pick_min_change else min(result, proposed)
        return result

    def _period_start_replicas(self, current: int, period_seconds: int, now: float) -> int:
        """Replicas at the start of the policy period: undo the changes made within it."""
        added = _replicas_change_in_period(self._scale_up_events, period_seconds, now)
        deleted = _replicas_change_in_period(self._scale_down_events, period_seconds, now)
        return current - added + deleted

    def _record(self, recommendation: _Recommendation, old_index: int | None) -> None:
        """Reuse an obsolete slot, as upstream does, or append."""
        if old_index is None:
            self._recommendations.append(recommendation)
        else:
            self._recommendations[old_index] = recommendation

    def _store_scale_event(self, previous: int, new: int, now: float) -> None:
        """``storeScaleEvent``: only kept when ``behavior`` is set (the legacy path never reads them)."""
        behavior = self.spec.behavior
        if behavior is None:
            return
        if new > previous:
            events, rules, change = self._scale_up_events, behavior.scale_up, new - previous
        else:
            events, rules, change = self._scale_down_events, behavior.scale_down, previous - new
        cutoff = now - max(policy.period_seconds for policy in rules.policies)
        old_index: int | None = None
        for index, event in enumerate(events):
            if event.at < cutoff:
                events[index] = event = replace(event, outdated=True)
            if event.outdated:
                old_index = index
        if old_index is None:
            events.append(_ScaleEvent(change, now))
        else:
            events[old_index] = _ScaleEvent(change, now)


def _replicas_change_in_period(events: list[_ScaleEvent], period_seconds: int, now: float) -> int:
    """``getReplicasChangePerPeriod``: the sum of changes strictly newer than ``now - period``."""
    cutoff = now - period_seconds
    return sum(event.change for event in events if event.at > cutoff)


def _to_int32(replicas: int) -> int:
    return max(min(replicas, _INT32_MAX), _INT32_MIN)
