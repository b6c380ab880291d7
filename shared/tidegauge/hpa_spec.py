"""What an HPA asks for: its metric targets, bounds and scaling behaviour (autoscaling/v2's spec, as values).

Kept apart from :mod:`tidegauge.hpa_algorithm`, which decides replicas from it; both the demo's scenario
and ``tidegauge explain`` build these from their own sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tidegauge.quantity import milli_value

TargetType = Literal["Value", "AverageValue"]
SelectPolicy = Literal["Max", "Min", "Disabled"]
PolicyType = Literal["Pods", "Percent"]

DOWNSCALE_STABILIZATION_SECONDS = 300
"""kube-controller-manager's ``--horizontal-pod-autoscaler-downscale-stabilization`` default."""


@dataclass(frozen=True)
class MetricTarget:
    """One External metric of the HPA: its name, metric selector and target."""

    name: str
    selector: str
    target_type: TargetType
    target: float

    def __post_init__(self) -> None:
        if self.target_type not in ("Value", "AverageValue"):
            raise ValueError(
                f"metric {self.name!r}: target_type must be 'Value' or 'AverageValue', "
                f"not {self.target_type!r}"
            )
        if milli_value(self.target) <= 0:
            raise ValueError(f"metric {self.name!r}: target must be at least 0.001, got {self.target}")


@dataclass(frozen=True)
class ScalingPolicy:
    """At most ``value`` pods (``Pods``) or percent of the pods (``Percent``) per ``period_seconds``."""

    type: PolicyType
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.type not in ("Pods", "Percent"):
            raise ValueError(f"scaling policy type must be 'Pods' or 'Percent', not {self.type!r}")
        if self.value <= 0:
            raise ValueError(f"scaling policy value must be greater than 0, got {self.value}")
        if not 0 < self.period_seconds <= 1800:
            raise ValueError(f"scaling policy period_seconds must be in 1..1800, got {self.period_seconds}")


@dataclass(frozen=True)
class ScalingRules:
    """The ``behavior`` of one direction: stabilisation window, rate-limiting policies, tolerance.

    ``tolerance`` None is the controller's (``--horizontal-pod-autoscaler-tolerance``, 0.1).
    """

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None

    def __post_init__(self) -> None:
        if self.tolerance is not None and not self.tolerance >= 0:
            raise ValueError(f"behavior tolerance must not be negative, got {self.tolerance}")
        if not 0 <= self.stabilization_window_seconds <= 3600:
            raise ValueError(
                f"stabilization_window_seconds must be in 0..3600, got {self.stabilization_window_seconds}"
            )
        if self.select_policy not in ("Max", "Min", "Disabled"):
            raise ValueError(f"select_policy must be 'Max', 'Min' or 'Disabled', not {self.select_policy!r}")
        if not self.policies:
            raise ValueError("scaling rules need at least one policy (the API server rejects an empty list)")

    @classmethod
    def default_scale_up(cls) -> ScalingRules:
        """Upstream default: no window; the larger of +100 % and +4 pods every 15 s."""
        return cls(
            stabilization_window_seconds=0,
            select_policy="Max",
            policies=(ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)),
        )

    @classmethod
    def default_scale_down(cls) -> ScalingRules:
        """Upstream default: 300 s window; down to any count (-100 %) every 15 s."""
        return cls(
            stabilization_window_seconds=DOWNSCALE_STABILIZATION_SECONDS,
            select_policy="Max",
            policies=(ScalingPolicy("Percent", 100, 15),),
        )


@dataclass(frozen=True)
class Behavior:
    """``spec.behavior``: scaling rules for each direction."""

    scale_up: ScalingRules
    scale_down: ScalingRules

    @classmethod
    def default(cls) -> Behavior:
        """What the API server fills in for an HPA whose ``behavior`` is set but empty."""
        return cls(scale_up=ScalingRules.default_scale_up(), scale_down=ScalingRules.default_scale_down())


@dataclass(frozen=True)
class HpaSpec:
    """The parts of an ``autoscaling/v2`` HPA spec that decide replicas.

    ``behavior=None`` selects the legacy normalisation, as an HPA without ``spec.behavior`` does.
    ``min_replicas`` 0 is what a cluster with the ``HPAScaleToZero`` gate accepts; ``tolerance`` is the
    controller's default band, used in each direction whose ``behavior`` sets none.
    """

    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricTarget, ...]
    behavior: Behavior | None = None
    tolerance: float = 0.1

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise ValueError(f"min_replicas must not be negative, got {self.min_replicas}")
        if self.max_replicas < 1:
            raise ValueError(f"max_replicas must be at least 1, got {self.max_replicas}")
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must not be below min_replicas ({self.min_replicas})"
            )
        if not self.metrics:
            raise ValueError("an HPA needs at least one metric")
        names = [metric.name for metric in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique, got {names}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {self.tolerance}")

    def tolerances(self) -> Tolerances:
        """The band of each direction: ``behavior``'s tolerance where set, else the controller's."""
        up = down = None
        if self.behavior is not None:
            up, down = self.behavior.scale_up.tolerance, self.behavior.scale_down.tolerance
        return Tolerances(
            scale_down=self.tolerance if down is None else down,
            scale_up=self.tolerance if up is None else up,
        )


@dataclass(frozen=True)
class Tolerances:
    """replica_calculator.go's ``Tolerances``: no change while ``1 - down <= ratio <= 1 + up``."""

    scale_down: float
    scale_up: float

    def within(self, ratio: float) -> bool:
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)
