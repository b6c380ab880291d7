"""OpenAPI v2 and v3 documents for the served group versions (the aggregator merges them).

``/openapi/v3`` lists one document per group version, addressed by a content hash as upstream does.
Custom metrics versions get their Object and Namespace paths and their own ``MetricValueList`` shape
(v1beta2: ``metric.name``/``windowSeconds``; v1beta1: ``metricName``/``window``/``selector``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from tidegauge.server.discovery import ServedGroupVersion
from tidegauge.server.types import CUSTOM_GROUP

_EXTERNAL_LIST = "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList"
_EXTERNAL_VALUE = "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValue"
_STRING = {"type": "string"}
_INT64 = {"type": "integer", "format": "int64"}


def _list_schema(
    description: str, item_reference: str, group: str, version: str, kind: str
) -> dict[str, Any]:
    """A list kind's schema: apiVersion, kind, metadata and its items (each ``item_reference``)."""
    return {
        "description": description,
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": {"type": "object"},
            "items": {"type": "array", "items": {"$ref": item_reference}},
        },
        "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind}],
    }


def _schemas(reference_prefix: str) -> dict[str, Any]:
    return {
        _EXTERNAL_LIST: _list_schema(
            "A list of values of one external metric.",
            f"{reference_prefix}{_EXTERNAL_VALUE}",
            "external.metrics.k8s.io",
            "v1beta1",
            "ExternalMetricValueList",
        ),
        _EXTERNAL_VALUE: {
            "description": "One series of an external metric: its labels, value and source timestamp.",
            "type": "object",
            "required": ["metricName", "metricLabels", "timestamp", "value"],
            "properties": {
                "metricName": _STRING,
                "metricLabels": {"type": "object", "additionalProperties": _STRING},
                "timestamp": {"type": "string", "format": "date-time"},
                "window": {"type": "integer", "format": "int64"},
                "value": {"type": "string", "description": "a Kubernetes quantity"},
            },
        },
    }


def _custom_schemas(version: str, reference_prefix: str) -> dict[str, Any]:
    prefix = f"io.k8s.metrics.pkg.apis.custom_metrics.{version}"
    selector = {"type": "object", "description": "a metav1.LabelSelector, or null"}
    if version == "v1beta1":
        identity: dict[str, Any] = {"metricName": _STRING, "selector": selector, "window": _INT64}
        required = ["describedObject", "metricName", "timestamp", "value"]
    else:
        metric = {
            "type": "object",
            "required": ["name"],
            "properties": {"name": _STRING, "selector": selector},
        }
        identity = {"metric": metric, "windowSeconds": _INT64}
        required = ["describedObject", "metric", "timestamp", "value"]
    return {
        f"{prefix}.MetricValueList": _list_schema(
            "Values of one custom metric for the described objects.",
            f"{reference_prefix}{prefix}.MetricValue",
            CUSTOM_GROUP,
            version,
            "MetricValueList",
        ),
        f"{prefix}.MetricValue": {
            "description": "A custom metric's value for one object, at its source timestamp.",
            "type": "object",
            "required": required,
            "properties": {
                "describedObject": {
                    "type": "object",
                    "properties": {k: _STRING for k in ("kind", "namespace", "name", "apiVersion")},
                },
                "timestamp": {"type": "string", "format": "date-time"},
                "value": {"type": "string", "description": "a Kubernetes quantity"},
                **identity,
            },
        },
    }


def _custom_paths(served: ServedGroupVersion, reference_prefix: str, v3: bool) -> dict[str, Any]:
    reference = {"$ref": f"{reference_prefix}io.k8s.metrics.pkg.apis.custom_metrics.{served.version}"}
    reference["$ref"] += ".MetricValueList"
    base = f"/apis/{served.group_version}/namespaces/{{namespace}}"
    object_parameters = ("namespace", "resource", "name", "metric")
    queries = ("labelSelector", "metricLabelSelector")
    return {
        f"{base}/{{resource}}/{{name}}/{{metric}}": _get(
            served,
            reference,
            v3,
            object_parameters,
            queries,
            "listNamespacedMetricValue",
            "A custom metric of an object (name * with labelSelector: the pods it selects).",
        ),
        f"{base}/metrics/{{metric}}": _get(
            served,
            reference,
            v3,
            ("namespace", "metric"),
            ("metricLabelSelector",),
            "readMetricValueForNamespace",
            "A custom metric of a Namespace.",
        ),
    }


def _operation(served: ServedGroupVersion, reference_prefix: str, v3: bool) -> dict[str, Any]:
    reference = {"$ref": f"{reference_prefix}{_EXTERNAL_LIST}"}
    return _get(
        served,
        reference,
        v3,
        ("namespace", "metric"),
        ("labelSelector",),
        "listExternalMetricValue",
        "The values of an external metric visible from a namespace.",
    )


def _get(
    served: ServedGroupVersion,
    reference: dict[str, str],
    v3: bool,
    path_parameters: tuple[str, ...],
    query_parameters: tuple[str, ...],
    operation_id: str,
    description: str,
) -> dict[str, Any]:
    typed = {"schema": _STRING} if v3 else _STRING
    parameters = [{"name": name, "in": "path", "required": True, **typed} for name in path_parameters]
    parameters += [{"name": name, "in": "query", **typed} for name in query_parameters]
    ok = {"description": "OK"}
    if v3:
        ok["content"] = {"application/json": {"schema": reference}}  # type: ignore[assignment]
    else:
        ok["schema"] = reference  # type: ignore[assignment]
    return {
        "get": {
            "description": description,
            "operationId": operation_id,
            "tags": [served.group_version.replace(".", "_").replace("/", "_")],
            "parameters": parameters,
            "responses": {"200": ok, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": "list",
        }
    }


def _paths(served: ServedGroupVersion, reference_prefix: str, v3: bool) -> dict[str, Any]:
    if served.group == CUSTOM_GROUP:
        return _custom_paths(served, reference_prefix, v3)
    path = f"/apis/{served.group_version}/namespaces/{{namespace}}/{{metric}}"
    return {path: _operation(served, reference_prefix, v3)}


def _schemas_of(served: ServedGroupVersion, reference_prefix: str) -> dict[str, Any]:
    if served.group == CUSTOM_GROUP:
        return _custom_schemas(served.version, reference_prefix)
    return _schemas(reference_prefix)


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


class OpenApi:
    """Pre-rendered OpenAPI documents, looked up by path."""

    def __init__(self, served: Sequence[ServedGroupVersion], version: str) -> None:
        info = {"title": "tidegauge", "version": version}
        v2_paths: dict[str, Any] = {}
        definitions: dict[str, Any] = {}
        for s in served:
            v2_paths.update(_paths(s, "#/definitions/", v3=False))
            definitions.update(_schemas_of(s, "#/definitions/"))
        v2 = {"swagger": "2.0", "info": info, "paths": v2_paths, "definitions": definitions}
        self.documents: dict[str, bytes] = {"/openapi/v2": _encode(v2)}
        index: dict[str, dict[str, str]] = {}
        for s in served:
            v3 = {
                "openapi": "3.0.0",
                "info": info,
                "paths": _paths(s, "#/components/schemas/", v3=True),
                "components": {"schemas": _schemas_of(s, "#/components/schemas/")},
            }
            body = _encode(v3)
            relative = f"apis/{s.group_version}"
            digest = hashlib.sha512(body).hexdigest().upper()
            self.documents[f"/openapi/v3/{relative}"] = body
            index[relative] = {"serverRelativeURL": f"/openapi/v3/{relative}?hash={digest}"}
        self.documents["/openapi/v3"] = _encode({"paths": index})
