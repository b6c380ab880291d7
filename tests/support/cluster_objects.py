"""Kubernetes objects in the shapes the real API returns, for the fake kube-apiserver's store."""

from __future__ import annotations

from typing import Any

from tests.support.kube_fake import FakeKubeApiServer

NAMESPACE = "shop"


def hpa(
    name: str,
    metrics: list[dict[str, Any]],
    *,
    min_replicas: int = 2,
    max_replicas: int = 6,
    current: int = 3,
    desired: int = 3,
    behavior: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": metrics,
    }
    if behavior is not None:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": spec,
        "status": {
            "currentReplicas": current,
            "desiredReplicas": desired,
            "conditions": conditions or [],
        },
    }


def external_metric(name: str, selector: dict[str, str], target_type: str, target: str) -> dict[str, Any]:
    key = "value" if target_type == "Value" else "averageValue"
    return {
        "type": "External",
        "external": {
            "metric": {"name": name, "selector": {"matchLabels": selector}},
            "target": {"type": target_type, key: target},
        },
    }


def object_metric(name: str, deployment: str, target: str) -> dict[str, Any]:
    return {
        "type": "Object",
        "object": {
            "describedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "metric": {"name": name},
            "target": {"type": "Value", "value": target},
        },
    }


def external_values(name: str, *values: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    items = [
        {"metricName": name, "metricLabels": labels or {}, "timestamp": "2026-12-01T10:00:00Z", "value": v}
        for v in values
    ]
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": items,
    }


def object_value(name: str, deployment: str, value: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    item = {
        "describedObject": {
            "kind": "Deployment",
            "namespace": namespace,
            "name": deployment,
            "apiVersion": "apps/v1",
        },
        "metric": {"name": name, "selector": None},
        "timestamp": "2026-12-01T10:00:00Z",
        "windowSeconds": 60,
        "value": value,
    }
    return {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [item],
    }


def put_workload(kube: FakeKubeApiServer, replicas: int, ready: int, namespace: str = NAMESPACE) -> None:
    """Deployment ``worker``'s scale subresource and its pods, ``ready`` of them Running and Ready."""
    kube.put(
        f"/apis/apps/v1/namespaces/{namespace}/deployments/worker/scale",
        {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {"name": "worker", "namespace": namespace},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "selector": "app=worker"},
        },
    )
    for index in range(replicas):
        is_ready = "True" if index < ready else "False"
        kube.put(
            f"/api/v1/namespaces/{namespace}/pods/worker-{index}",
            {
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": {"name": f"worker-{index}", "namespace": namespace, "labels": {"app": "worker"}},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": is_ready}]},
            },
        )


def event(
    name: str, reason: str, message: str, at: str, kind: str = "HorizontalPodAutoscaler"
) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": f"{name}.{abs(hash((reason, at)))}", "namespace": NAMESPACE},
        "involvedObject": {"kind": kind, "name": name, "namespace": NAMESPACE},
        "reason": reason,
        "message": message,
        "type": "Normal" if reason == "SuccessfulRescale" else "Warning",
        "lastTimestamp": at,
    }
