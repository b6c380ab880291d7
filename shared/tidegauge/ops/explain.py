"""``tidegauge explain hpa NAME [-n NS] [--target METRIC=VALUE]``: why an HPA wants the replicas it wants.

Read-only (it never patches the HPA or its status): reads the ``autoscaling/v2`` HPA, its scale target and
pods, fetches each metric through the kube-apiserver exactly as the HPA controller does, and runs the
shared upstream algorithm (:mod:`tidegauge.hpa_algorithm`). Per metric it shows the value, target, ratio,
tolerance band and proposal; combined, the largest proposal, stabilisation, policies and min/max, beside
the HPA's own ``status.desiredReplicas``. ``--target`` answers "what if the target were VALUE".

The controller keeps its recommendations in memory: explain starts from the current count (as a
restarted controller does) plus the scale-ups and -downs in the HPA's ``SuccessfulRescale`` events, so
the stabilisation window shows only what those reveal. Exit status: 0 shown, 1 the cluster failed, 2 usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from tidegauge import environment
from tidegauge.errors import UsageError
from tidegauge.hpa_algorithm import Decision, History, HorizontalPodAutoscaler, HpaSpec
from tidegauge.ops.cluster import (
    Cluster,
    ClusterOptions,
    JsonObject,
    add_cluster_arguments,
    connect,
)
from tidegauge.ops.common import add_store_arguments, open_target, plain_number, table
from tidegauge.ops.hpa_reading import (
    DEFAULT_TOLERANCE,
    MetricReading,
    ScaleTarget,
    event_time,
    fetch,
    hpa_events,
    hpa_path,
    hpa_spec,
    metric_readings,
    parse_time,
    quantity,
    read_scale_target,
)
from tidegauge.ops.served_signals import ServedSignal, served_signals
from tidegauge.quantity import QuantityError
from tidegauge.store import StoreError

_NEW_SIZE = re.compile(r"New size: (\d+)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    hpa = kinds.add_parser("hpa", help="explain a HorizontalPodAutoscaler's replica count")
    hpa.add_argument("name", help="the HPA's name")
    add_cluster_arguments(hpa)
    hpa.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="what if METRIC's target were VALUE (a number or quantity, e.g. 500m); repeatable",
    )
    hpa.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="the controller's --horizontal-pod-autoscaler-tolerance (default 0.1)",
    )
    hpa.add_argument(
        "--output", "-o", choices=("text", "json"), default="text", help="text (default) or json"
    )
    add_store_arguments(hpa)  # with a store: the raw values in Redis beside the served ones


def wants_store(args: argparse.Namespace) -> bool:
    """Redis is read when named (``--redis-url``, ``--config`` or their environment variables)."""
    named = (environment.REDIS_URL, environment.CONFIG_FILE)
    return bool(args.redis_url or args.config or any(os.environ.get(name) for name in named))


def run(args: argparse.Namespace) -> int:
    cluster = connect(ClusterOptions.from_args(args))
    try:
        explanation = explain_hpa(
            cluster,
            args.namespace or cluster.namespace,
            args.name,
            parse_targets(args.target),
            args.tolerance,
        )
    finally:
        cluster.close()  # the client's connection pool, as doctor does
    if wants_store(args):
        explanation = with_signals(explanation, args)
    print(json.dumps(explanation.as_json()) if args.output == "json" else explanation.render())
    return 0


def parse_targets(pairs: Sequence[str]) -> dict[str, float]:
    targets: dict[str, float] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise UsageError(f"--target takes METRIC=VALUE, got {pair!r}")
        try:
            targets[name] = quantity(value)
        except QuantityError as error:
            raise UsageError(f"--target {name}: {error}") from error
    return targets


@dataclass(frozen=True)
class Explanation:
    """Everything ``explain`` read and computed for one HPA."""

    namespace: str
    name: str
    spec: HpaSpec
    readings: tuple[MetricReading, ...]
    scale: ScaleTarget
    current: int
    status_replicas: int
    ready: int
    decision: Decision
    status_desired: int | None
    conditions: tuple[JsonObject, ...]
    events: tuple[str, ...]
    what_if: bool
    last_scale_ago: str = "never"
    moment: float = 0.0
    signals: tuple[ServedSignal, ...] = ()
    """Raw vs served values from the store (with ``--redis-url`` / ``--config``)."""
    store_error: str = ""

    def as_json(self) -> JsonObject:
        decision = self.decision
        tolerances = self.spec.tolerances()
        return {
            "hpa": {"namespace": self.namespace, "name": self.name},
            "target": {"kind": self.scale.kind, "name": self.scale.name, "selector": self.scale.selector},
            "replicas": {
                "spec": self.current,
                "status": self.status_replicas,
                "ready": self.ready,
                "min": self.spec.min_replicas,
                "max": self.spec.max_replicas,
            },
            "tolerance": {"scaleUp": tolerances.scale_up, "scaleDown": tolerances.scale_down},
            "behavior": describe_behavior(self.spec),
            "lastScale": self.last_scale_ago,
            "metrics": [
                {
                    **asdict(reading),
                    "ratio": _finite(decision.details[reading.key].ratio)
                    if reading.key in decision.details
                    else None,
                    "withinTolerance": (
                        decision.details[reading.key].within_tolerance
                        if reading.key in decision.details
                        else None
                    ),
                    "proposal": decision.proposals.get(reading.key),
                }
                for reading in self.readings
            ],
            "recommendation": decision.recommendation,
            "desiredReplicas": decision.desired_replicas,
            "limitedBy": decision.limited_by,
            "stabilizedBy": decision.stabilized_by,
            "scalingActive": decision.scaling_active,
            "reason": decision.reason,
            "statusDesiredReplicas": self.status_desired,
            "agrees": None if self.what_if else self.status_desired == decision.desired_replicas,
            "whatIf": self.what_if,
            "conditions": list(self.conditions),
            "events": list(self.events),
            "signals": [signal.as_json() for signal in self.signals],
            "storeError": self.store_error or None,
        }

    def render(self) -> str:
        decision = self.decision
        tolerances = self.spec.tolerances()
        lines = [
            f"HPA {self.namespace}/{self.name} -> {self.scale.kind}/{self.scale.name}: "
            f"replicas spec {self.current}, status {self.status_replicas}, ready {self.ready}; "
            f"min {self.spec.min_replicas}, max {self.spec.max_replicas}",
            f"tolerance: scale up above ratio {1 + tolerances.scale_up:g}, "
            f"scale down below {1 - tolerances.scale_down:g}",
            *describe_behavior(self.spec),
            f"last scale: {self.last_scale_ago}",
            "",
        ]
        rows = []
        for reading in self.readings:
            detail = decision.details.get(reading.key)
            rows.append(
                [
                    reading.key,
                    reading.selector or "-",
                    reading.target_type or "-",
                    "-" if reading.value is None else plain_number(reading.value),
                    "-" if reading.target is None else plain_number(reading.target),
                    "-" if detail is None else f"{detail.ratio:.3f}",
                    "-" if detail is None else ("inside" if detail.within_tolerance else "outside"),
                    str(decision.proposals.get(reading.key, "-")),
                    reading.error,
                ]
            )
        headers = [
            "METRIC",
            "SELECTOR",
            "TARGET TYPE",
            "VALUE",
            "TARGET",
            "RATIO",
            "BAND",
            "PROPOSAL",
            "ERROR",
        ]
        lines.append(table(headers, rows))
        lines.append("")
        lines.append(
            f"largest proposal: {decision.recommendation if decision.recommendation is not None else '-'}"
        )
        steps = []
        if decision.stabilized_by:
            steps.append(f"stabilised ({decision.stabilized_by})")
        if decision.limited_by:
            steps.append(f"limited ({decision.limited_by})")
        lines.append(
            f"desired replicas: {decision.desired_replicas}"
            + (f" after {', '.join(steps)}" if steps else "")
            + f"; ScalingActive {decision.scaling_active} ({decision.reason})"
        )
        if self.what_if:
            lines.append(f"what-if targets: the HPA's own status.desiredReplicas is {self.status_desired}")
        elif self.status_desired is not None:
            verdict = "agrees" if self.status_desired == decision.desired_replicas else "differs"
            lines.append(f"HPA status.desiredReplicas: {self.status_desired} ({verdict})")
        for condition in self.conditions:
            lines.append(
                f"condition {condition.get('type')}={condition.get('status')} "
                f"({condition.get('reason', '')}): {condition.get('message', '')}"
            )
        lines.extend(f"event {event}" for event in self.events)
        lines.append(
            "note: the controller's remembered recommendations are not visible; this starts from the current "
            "count plus the SuccessfulRescale events"
        )
        if self.signals or self.store_error:
            lines.append("")
            lines.append("in Redis (raw) vs served by tidegauge (what the server computes from them):")
        if self.store_error:
            lines.append(f"  the store could not be read: {self.store_error}")
        for signal in self.signals:
            lines.extend(signal.render())
        return "\n".join(lines)


def _finite(number: float) -> float | None:
    return number if number == number and abs(number) != float("inf") else None


def explain_hpa(
    cluster: Cluster,
    namespace: str,
    name: str,
    targets: Mapping[str, float] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Explanation:
    """Read the HPA and everything it reads, and decide as the controller would at ``now``."""
    moment = time.time() if now is None else now
    overrides = dict(targets or {})
    hpa = cluster.get(hpa_path(namespace, name))
    readings = metric_readings(hpa, overrides)
    unknown = set(overrides) - {r.name for r in readings}
    if unknown:
        raise UsageError(f"--target names no metric of the HPA: {', '.join(sorted(unknown))}")
    scale = read_scale_target(cluster, namespace, hpa)
    status = hpa.get("status", {})
    status_replicas = int(status.get("currentReplicas", 0))
    current = scale.spec_replicas if scale.spec_replicas is not None else status_replicas
    ready = scale.ready_pods if scale.ready_pods is not None else current
    fetched = tuple(fetch(cluster, namespace, reading, hpa, scale) for reading in readings)
    spec = hpa_spec(hpa, fetched, tolerance)
    events = hpa_events(cluster, namespace, name)
    history = _history(events, moment) if spec.behavior is not None else None
    controller = HorizontalPodAutoscaler(spec, history=history)
    values = {r.key: r.value for r in fetched}
    ready_by_metric = {r.key: r.items for r in fetched if r.source == "Pods" and r.items}
    decision = controller.reconcile(
        moment,
        current,
        values,
        ready_replicas=ready,
        status_replicas=status_replicas,
        ready_by_metric=ready_by_metric,
    )
    desired = status.get("desiredReplicas")
    return Explanation(
        namespace=namespace,
        name=name,
        spec=spec,
        readings=fetched,
        scale=scale,
        current=current,
        status_replicas=status_replicas,
        ready=ready,
        decision=decision,
        status_desired=None if desired is None else int(desired),
        conditions=tuple(status.get("conditions") or []),
        last_scale_ago=_ago(parse_time(status.get("lastScaleTime")), moment),
        events=tuple(_event_line(event, moment) for event in events[-10:]),
        what_if=bool(overrides),
        moment=moment,
    )


def with_signals(explanation: Explanation, args: argparse.Namespace) -> Explanation:
    """The explanation with each metric's raw series and served value from the store (read-only); a
    store that cannot be read is reported, not fatal: the HPA's side is still worth showing."""
    try:
        target = open_target(args)
    except StoreError as error:
        return dataclasses.replace(explanation, store_error=str(error))
    try:
        signals = served_signals(target, explanation.readings, explanation.moment)
    except StoreError as error:
        return dataclasses.replace(explanation, store_error=str(error))
    finally:
        target.store.close()
    return dataclasses.replace(explanation, signals=signals)


def describe_behavior(spec: HpaSpec) -> list[str]:
    """The stabilisation windows and policies in force, in a line per direction."""
    if spec.behavior is None:
        return [
            "behavior: none (legacy): scale-down stabilised over 300 s, scale-up at most max(2 x current, 4)"
        ]
    lines = []
    for direction, rules in (("up", spec.behavior.scale_up), ("down", spec.behavior.scale_down)):
        policies = ", ".join(
            f"{p.value}{'%' if p.type == 'Percent' else ' pods'} per {p.period_seconds} s"
            for p in rules.policies
        )
        lines.append(
            f"scale {direction}: window {rules.stabilization_window_seconds} s, "
            f"select {rules.select_policy} of {policies}"
        )
    return lines


def _ago(at: float | None, now: float) -> str:
    return "never" if at is None else f"{now - at:.0f}s ago"


def _event_line(event: JsonObject, now: float) -> str:
    ago = _ago(event_time(event), now)
    return f"{ago} {event.get('type', '')} {event.get('reason', '')}: {event.get('message', '')}"


def _history(events: Sequence[JsonObject], now: float) -> History:
    """Scale events from consecutive ``SuccessfulRescale`` sizes (the first one's previous is unknown)."""
    sizes: list[tuple[float, int]] = []
    for event in events:
        match = _NEW_SIZE.search(str(event.get("message", "")))
        at = event_time(event)
        if event.get("reason") == "SuccessfulRescale" and match and at is not None and at <= now:
            sizes.append((at, int(match.group(1))))
    ups: list[tuple[float, int]] = []
    downs: list[tuple[float, int]] = []
    for (_, before), (at, after) in itertools.pairwise(sizes):
        if after > before:
            ups.append((at, after - before))
        elif after < before:
            downs.append((at, before - after))
    return History(scale_up_events=tuple(ups), scale_down_events=tuple(downs))
