"""An ``autoscaling/v2`` HPA as the shared algorithm's spec, and its metrics fetched as the HPA fetches them.

External metrics: ``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/NS/METRIC?labelSelector=...``,
the items' milli-values summed. Object metrics: ``GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/
RESOURCE/NAME/METRIC`` (``metricLabelSelector`` for the metric's selector; the Namespace object is
``.../namespaces/NS/metrics/METRIC``), one item. Pods metrics: ``.../pods/*/METRIC?labelSelector=<the
scale target's pod selector>``, averaged. Resource metrics come from metrics.k8s.io and are not evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidegauge.hpa_algorithm import (
    Behavior,
    HpaSpec,
    MetricTarget,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    TargetType,
)
from tidegauge.ops.cluster import Cluster, ClusterError, JsonObject, label_selector
from tidegauge.quantity import QuantityError, milli_value, parse_quantity

EXTERNAL_PREFIX = "/apis/external.metrics.k8s.io/v1beta1"
CUSTOM_PREFIX = "/apis/custom.metrics.k8s.io/v1beta2"
DEFAULT_TOLERANCE = 0.1
"""kube-controller-manager's ``--horizontal-pod-autoscaler-tolerance`` default."""
_PLURALS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "ReplicaSet": "replicasets",
    "ReplicationController": "replicationcontrollers",
    "Ingress": "ingresses",
    "Service": "services",
    "Namespace": "namespaces",
}


@dataclass(frozen=True)
class MetricReading:
    """One metric of the HPA: what it asks for, the path fetched, and what came back."""

    key: str
    """Unique within the HPA: ``<type>/<name>`` (``#2`` added for a repeated one)."""
    source: str
    name: str
    selector: str
    target_type: str
    target: float | None
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None
    """External: the items' sum; Object: its value; Pods: the pods' average."""
    items: int = 0
    error: str = ""

    def as_target(self) -> MetricTarget | None:
        if self.target is None or self.target_type not in ("Value", "AverageValue"):
            return None
        if self.source == "Pods":  # the pods' average against the target, times the pods that reported
            return MetricTarget(self.key, self.selector, "Value", self.target)
        target_type: TargetType = "Value" if self.target_type == "Value" else "AverageValue"
        return MetricTarget(self.key, self.selector, target_type, self.target)


@dataclass(frozen=True)
class ScaleTarget:
    """The scale subresource of ``scaleTargetRef``: its replicas and pod selector, and the ready pods."""

    kind: str
    name: str
    spec_replicas: int | None
    selector: str
    ready_pods: int | None
    error: str = ""


def quantity(value: Any) -> float:
    return float(parse_quantity(str(value)))


def hpa_path(namespace: str, name: str) -> str:
    return f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}"


def metric_readings(hpa: JsonObject, overrides: Mapping[str, float]) -> list[MetricReading]:
    """Each ``spec.metrics`` entry as a reading (not fetched yet); ``overrides`` replace targets by name."""
    readings: list[MetricReading] = []
    seen: dict[str, int] = {}
    for entry in hpa.get("spec", {}).get("metrics") or []:
        source = str(entry.get("type", ""))
        body = entry.get(source[:1].lower() + source[1:], {}) or {}
        metric = body.get("metric", {}) or {}
        name = str(metric.get("name") or body.get("name") or "?")
        target = body.get("target", {}) or {}
        target_type = str(target.get("type", ""))
        raw = {"Value": target.get("value"), "AverageValue": target.get("averageValue")}.get(target_type)
        value = overrides.get(name, quantity(raw) if raw is not None else None)
        base = f"{source.lower()}/{name}"
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base}#{seen[base]}"
        readings.append(
            MetricReading(key, source, name, label_selector(metric.get("selector")), target_type, value)
        )
    return readings


def hpa_spec(
    hpa: JsonObject, readings: Sequence[MetricReading], tolerance: float = DEFAULT_TOLERANCE
) -> HpaSpec:
    """The algorithm's spec: min/max, the evaluable metrics, ``behavior`` with defaults filled in."""
    spec = hpa.get("spec", {})
    targets = tuple(t for t in (r.as_target() for r in readings) if t is not None)
    if not targets:
        raise ClusterError(
            "the HPA has no External, Object or Pods metric with a Value or AverageValue target"
        )
    behavior = spec.get("behavior")
    return HpaSpec(
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
        metrics=targets,
        behavior=None if behavior is None else _behavior(behavior),
        tolerance=tolerance,
    )


def _behavior(behavior: JsonObject) -> Behavior:
    up, down = behavior.get("scaleUp"), behavior.get("scaleDown")
    return Behavior(
        scale_up=_rules(up, ScalingRules.default_scale_up()),
        scale_down=_rules(down, ScalingRules.default_scale_down()),
    )


def _rules(rules: JsonObject | None, default: ScalingRules) -> ScalingRules:
    """One direction, each field the API server leaves unset taken from upstream's defaults."""
    if rules is None:
        return default
    policies = tuple(
        ScalingPolicy(p["type"], int(p["value"]), int(p["periodSeconds"]))
        for p in rules.get("policies") or []
    )
    window = rules.get("stabilizationWindowSeconds")
    select: SelectPolicy = rules.get("selectPolicy") or "Max"
    tolerance = rules.get("tolerance")
    return ScalingRules(
        stabilization_window_seconds=default.stabilization_window_seconds if window is None else int(window),
        select_policy=select,
        policies=policies or default.policies,
        tolerance=None if tolerance is None else quantity(tolerance),
    )


def read_scale_target(cluster: Cluster, namespace: str, hpa: JsonObject) -> ScaleTarget:
    """``spec.replicas`` and the pod selector from the scale subresource, then the ready pods it selects."""
    ref = hpa.get("spec", {}).get("scaleTargetRef", {})
    kind, name, api_version = (
        str(ref.get("kind", "")),
        str(ref.get("name", "")),
        str(ref.get("apiVersion", "")),
    )
    prefix = "/api/v1" if api_version in ("", "v1") else f"/apis/{api_version}"
    plural = _PLURALS.get(kind, kind.lower() + "s")
    try:
        scale = cluster.get(f"{prefix}/namespaces/{namespace}/{plural}/{name}/scale")
    except ClusterError as error:
        return ScaleTarget(kind, name, None, "", None, str(error))
    selector = str(scale.get("status", {}).get("selector", ""))
    replicas = scale.get("spec", {}).get("replicas")
    ready: int | None = None
    problem = ""
    if selector:
        try:
            pods = cluster.get(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector})
            ready = sum(1 for pod in pods.get("items") or [] if _ready(pod))
        except ClusterError as failure:
            problem = str(failure)
    return ScaleTarget(kind, name, None if replicas is None else int(replicas), selector, ready, problem)


def _ready(pod: JsonObject) -> bool:
    """Running with condition Ready=True: what ``getReadyPodsCount`` counts."""
    status = pod.get("status", {})
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return bool(status.get("phase") == "Running" and ready)


def fetch(
    cluster: Cluster, namespace: str, reading: MetricReading, hpa: JsonObject, scale: ScaleTarget
) -> MetricReading:
    """The reading with its value (or the error the HPA would log), fetched by the HPA's own path."""
    name = reading.name
    if reading.source == "External":
        path = f"{EXTERNAL_PREFIX}/namespaces/{namespace}/{name}"
        query = {"labelSelector": reading.selector} if reading.selector else {}
    elif reading.source == "Object":
        described = _described_object(hpa, reading)
        kind, object_name = str(described.get("kind", "")), str(described.get("name", ""))
        if kind == "Namespace":
            path = f"{CUSTOM_PREFIX}/namespaces/{namespace}/metrics/{name}"
        else:
            plural = _PLURALS.get(kind, kind.lower() + "s")
            path = f"{CUSTOM_PREFIX}/namespaces/{namespace}/{plural}/{object_name}/{name}"
        query = {"metricLabelSelector": reading.selector} if reading.selector else {}
    elif reading.source == "Pods":
        path = f"{CUSTOM_PREFIX}/namespaces/{namespace}/pods/*/{name}"
        query = {"labelSelector": scale.selector}
        if reading.selector:
            query["metricLabelSelector"] = reading.selector
    else:
        return _replace(
            reading, error=f"{reading.source} metrics come from metrics.k8s.io: not evaluated here"
        )
    try:
        answer = cluster.get(path, query)
    except ClusterError as error:
        return _replace(reading, path=path, query=query, error=str(error))
    items = answer.get("items") or []
    try:
        millis = [milli_value(quantity(item["value"])) for item in items]
    except (KeyError, QuantityError, ArithmeticError) as error:
        return _replace(reading, path=path, query=query, error=f"an item has no valid value: {error}")
    if not millis:
        message = (
            "no metrics returned from external metrics API"
            if reading.source == "External"
            else "no items returned"
        )
        return _replace(reading, path=path, query=query, error=message)
    # The HPA sums External and Object items, and averages the pods' values.
    value = sum(millis) / (len(millis) if reading.source == "Pods" else 1) / 1000
    return _replace(reading, path=path, query=query, value=value, items=len(millis))


def _described_object(hpa: JsonObject, reading: MetricReading) -> JsonObject:
    for entry in hpa.get("spec", {}).get("metrics") or []:
        body = entry.get("object") or {}
        if entry.get("type") == "Object" and (body.get("metric") or {}).get("name") == reading.name:
            return dict(body.get("describedObject") or {})
    return {}


def _replace(reading: MetricReading, **changes: Any) -> MetricReading:
    from dataclasses import replace

    return replace(reading, **changes)


def hpa_events(cluster: Cluster, namespace: str, name: str) -> list[JsonObject]:
    """The HPA's events, oldest first (none when they cannot be read: the callers go on without)."""
    selector = f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}"
    try:
        answer = cluster.get(f"/api/v1/namespaces/{namespace}/events", {"fieldSelector": selector})
    except ClusterError:
        return []
    items = [item for item in answer.get("items") or [] if isinstance(item, dict)]
    return sorted(items, key=lambda event: event_time(event) or 0.0)


def event_time(event: JsonObject) -> float | None:
    return parse_time(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp"))


def parse_time(text: Any) -> float | None:
    """An RFC 3339 timestamp of the API (``2026-11-26T10:30:00Z``) as Unix seconds."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    seconds = moment.timestamp()
    return seconds if math.isfinite(seconds) else None
