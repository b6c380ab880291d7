"""Typed access to the generated protobuf messages (the generated module itself is untyped).

Everything else in :mod:`tidegauge.keda` goes through these functions, so mypy checks the scaler's code
even though ``externalscaler_pb2`` is excluded from type checking.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_pb: Any = importlib.import_module("tidegauge.keda.externalscaler_pb2")
"""The generated module, as ``Any``: protobuf ships no types, and this file is what mypy checks instead."""

SERVICE = "externalscaler.ExternalScaler"
"""The gRPC service name KEDA calls (package ``externalscaler``)."""


@dataclass(frozen=True, slots=True)
class ScaledObjectRef:
    """Who asks (a ScaledObject) and its trigger's metadata."""

    name: str
    namespace: str
    metadata: Mapping[str, str]


def decode_ref(data: bytes) -> ScaledObjectRef:
    return _ref(_pb.ScaledObjectRef.FromString(data))


def _ref(message: Any) -> ScaledObjectRef:
    return ScaledObjectRef(str(message.name), str(message.namespace), dict(message.scalerMetadata))


def decode_metrics_request(data: bytes) -> tuple[ScaledObjectRef, str]:
    """A ``GetMetricsRequest``: the ScaledObject and the metric name KEDA asks for."""
    message = _pb.GetMetricsRequest.FromString(data)
    return _ref(message.scaledObjectRef), str(message.metricName)


def _rounded(value: float) -> int:
    """The deprecated int64 twin of a float field (KEDA reads the float one when it is set)."""
    return max(min(round(value), 2**63 - 1), -(2**63))


def encode_is_active(active: bool) -> bytes:
    data: bytes = _pb.IsActiveResponse(result=active).SerializeToString()
    return data


def encode_metric_spec(metric_name: str, target: float) -> bytes:
    spec = _pb.MetricSpec(metricName=metric_name, targetSize=_rounded(target), targetSizeFloat=target)
    data: bytes = _pb.GetMetricSpecResponse(metricSpecs=[spec]).SerializeToString()
    return data


def encode_metric_value(metric_name: str, value: float) -> bytes:
    item = _pb.MetricValue(metricName=metric_name, metricValue=_rounded(value), metricValueFloat=value)
    data: bytes = _pb.GetMetricsResponse(metricValues=[item]).SerializeToString()
    return data


# What a client (KEDA, or the tests replaying it) sends and reads.


def encode_ref(name: str, namespace: str, metadata: Mapping[str, str]) -> bytes:
    ref = _pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=metadata)
    data: bytes = ref.SerializeToString()
    return data


def encode_metrics_request(name: str, namespace: str, metadata: Mapping[str, str], metric_name: str) -> bytes:
    ref = _pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=metadata)
    data: bytes = _pb.GetMetricsRequest(scaledObjectRef=ref, metricName=metric_name).SerializeToString()
    return data


def decode_is_active(data: bytes) -> bool:
    return bool(_pb.IsActiveResponse.FromString(data).result)


def decode_metric_specs(data: bytes) -> list[tuple[str, int, float]]:
    """(metricName, targetSize, targetSizeFloat) of each spec."""
    specs = _pb.GetMetricSpecResponse.FromString(data).metricSpecs
    return [(str(s.metricName), int(s.targetSize), float(s.targetSizeFloat)) for s in specs]


def decode_metric_values(data: bytes) -> list[tuple[str, int, float]]:
    """(metricName, metricValue, metricValueFloat) of each value."""
    values = _pb.GetMetricsResponse.FromString(data).metricValues
    return [(str(v.metricName), int(v.metricValue), float(v.metricValueFloat)) for v in values]
