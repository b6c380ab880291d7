"""The demo's parameters: one burst of orders, two HPA metrics, a demo-friendly scale-down window.

The HPA runs the real upstream algorithm. One setting differs from the upstream defaults, on
purpose: the scale-down stabilisation window is 60 s instead of 300 s, so that the scale-down after
the burst fits in a run of a few simulated minutes. Scale-up uses the upstream default behaviour
(+100 % or +4 pods per 15 s, whichever is more); scale-down keeps the default policy (-100 % per 15 s).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tidegauge.demo.workload import CpuModel, Pods, RateProfile, Workload
from tidegauge.hpa_algorithm import Behavior, HpaSpec, MetricTarget, ScalingPolicy, ScalingRules

SQS_METRIC = "sqs_messages"
CPU_METRIC = "aurora_cpu_percent"
PRESSURE_METRIC = "orders_pressure"
"""The derived metric of ``--derived-pressure`` (see :func:`pressure_expression`)."""
CPU_TARGET_PERCENT = 70.0
PRESSURE_CPU_PER_MESSAGE_PER_SECOND = 10.0
"""With ``--derived-pressure`` the database is dearer: seven busy pods would take it past 70 %."""
MIN_SIMULATED_SECONDS = 300.0
"""Shorter runs leave no room for burst, drain and the 60 s scale-down window."""

DEMO_SCALE_DOWN_WINDOW_SECONDS = 60


BACKLOG_PER_POD = 6
"""The AverageValue target: six messages of backlog per pod, six seconds of work at 1 msg/s each."""


def demo_hpa_spec(queue_name: str, cluster_name: str) -> HpaSpec:
    """Backlog per pod (AverageValue 6) and Aurora CPU (Value 70 %), 1-10 replicas."""
    return HpaSpec(
        min_replicas=1,
        max_replicas=10,
        metrics=(
            MetricTarget(SQS_METRIC, f"queue={queue_name}", "AverageValue", BACKLOG_PER_POD),
            MetricTarget(CPU_METRIC, f"cluster={cluster_name}", "Value", 70),
        ),
        behavior=Behavior(
            scale_up=ScalingRules.default_scale_up(),
            scale_down=ScalingRules(
                DEMO_SCALE_DOWN_WINDOW_SECONDS, "Max", (ScalingPolicy("Percent", 100, 15),)
            ),
        ),
    )


def pressure_expression(queue_name: str, cluster_name: str) -> str:
    """Replicas for the backlog (one per 6 messages), but no more than the database takes at 70 % CPU.

    The database's capacity in messages per second is ``70 / (cpu / deleted_per_second)`` (its CPU
    cost per processed message, measured live); each pod drains 1 msg/s, so that is also pods. One
    pod less than that leaves room for the HPA's rounding up (``ceil``); the floors keep an idle
    queue from dividing by zero.
    """
    backlog = f'sqs_messages{{queue="{queue_name}"}}'
    deleted = f'sqs_deleted_per_second{{queue="{queue_name}"}}'
    cpu = f'aurora_cpu_percent{{cluster="{cluster_name}"}}'
    capacity = f"{CPU_TARGET_PERCENT:g} * max({deleted}, 0.1) / max({cpu}, 1) - 1"
    return f"min({backlog} / {BACKLOG_PER_POD}, {capacity})"


def pressure_hpa_spec(base: HpaSpec) -> HpaSpec:
    """The demo's HPA on the derived metric alone: AverageValue 1, so its value is the replicas."""
    return dataclasses.replace(base, metrics=(MetricTarget(PRESSURE_METRIC, "", "AverageValue", 1),))


@dataclass(frozen=True)
class Scenario:
    """Everything the demo driver needs to reproduce a run, in simulated seconds.

    ``time_compression``: simulated seconds per wall-clock second. ``sync_period_seconds``: how often
    the HPA reconciles (upstream ``--horizontal-pod-autoscaler-sync-period``). ``sample_interval_seconds``:
    how often the collectors sample. ``step_seconds``: the workload's time step.
    """

    simulated_seconds: float
    time_compression: float
    sync_period_seconds: float
    sample_interval_seconds: float
    step_seconds: float
    namespace: str
    queue_name: str
    cluster_name: str
    hpa: HpaSpec
    profile: RateProfile
    drain_per_pod: float
    pod_startup_seconds: float
    initial_replicas: int
    cpu_model: CpuModel
    seed: int
    derived_pressure: bool = False
    """Scale on :data:`PRESSURE_METRIC` (backlog capped by the database's CPU) instead of the raw two."""
    backlog_object: str | None = None
    """The Deployment (in ``namespace``) whose Object metric the HPA reads the backlog as, through
    custom.metrics.k8s.io; None: the backlog is an External metric like the CPU."""

    def __post_init__(self) -> None:
        if self.simulated_seconds < MIN_SIMULATED_SECONDS:
            raise ValueError(
                f"the demo needs at least {MIN_SIMULATED_SECONDS:.0f} simulated seconds to show a burst, "
                f"its drain and the scale-down; got {self.simulated_seconds:g} (raise --duration)"
            )
        if not self.time_compression > 0:
            raise ValueError(f"time compression must be positive, got {self.time_compression:g}")
        if not 0 < self.step_seconds <= self.sync_period_seconds:
            raise ValueError(f"step_seconds must be in (0, sync_period_seconds], got {self.step_seconds:g}")

    @property
    def wall_seconds(self) -> float:
        """How long the run takes on the wall clock."""
        return self.simulated_seconds / self.time_compression

    def workload(self) -> Workload:
        """A fresh, seeded workload for this scenario."""
        return Workload(self.profile, self.drain_per_pod, cpu_model=self.cpu_model, seed=self.seed)

    def pods(self, now: float = 0.0) -> Pods:
        """The consumer pods at the start of the run, all ready."""
        return Pods(self.initial_replicas, startup_seconds=self.pod_startup_seconds, now=now)

    @classmethod
    def default(cls, *, simulated_seconds: float = 600.0, time_compression: float = 5.0) -> Scenario:
        """Ten simulated minutes in two wall-clock minutes: quiet 0.6 msg/s, a 12 msg/s burst, quiet again.

        The burst starts at 10 % of the run and lasts 10 % of it; each pod drains 1 msg/s, so one pod
        copes with the quiet rate and ten pods (the maximum) with less than the burst. The rates are
        small because every message really goes through (moto) SQS: a few hundred messages of peak
        backlog keep the local AWS stand-in well ahead of the time compression.
        """
        return cls(
            simulated_seconds=simulated_seconds,
            time_compression=time_compression,
            sync_period_seconds=15.0,
            sample_interval_seconds=15.0,
            step_seconds=1.0,
            namespace="demo",
            queue_name="demo-orders",
            cluster_name="demo",
            hpa=demo_hpa_spec("demo-orders", "demo"),
            profile=RateProfile.single_burst(simulated_seconds, quiet_rate=0.6, burst_rate=12.0),
            drain_per_pod=1.0,
            pod_startup_seconds=20.0,
            initial_replicas=1,
            cpu_model=CpuModel(percent_per_message_per_second=6.0),
            seed=7,
        )

    def with_derived_pressure(self) -> Scenario:
        """This scenario with a dearer database and the HPA on the derived pressure metric."""
        return dataclasses.replace(
            self,
            hpa=pressure_hpa_spec(self.hpa),
            cpu_model=dataclasses.replace(
                self.cpu_model, percent_per_message_per_second=PRESSURE_CPU_PER_MESSAGE_PER_SECOND
            ),
            derived_pressure=True,
        )

    @classmethod
    def short(cls) -> Scenario:
        """Eight simulated minutes in 40 wall-clock seconds, for tests of the whole demo."""
        return cls.default(simulated_seconds=480.0, time_compression=12.0)
