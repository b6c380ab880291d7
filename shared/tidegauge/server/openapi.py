"""OpenAPI v2 and v3 documents for the served group versions (the aggregator merges them).

``/openapi/v3`` lists one document per group version, addressed by a content hash as upstream does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from tidegauge.server.discovery import ServedGroupVersion

_EXTERNAL_LIST = "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList"
_EXTERNAL_VALUE = "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValue"
_STRING = {"type": "string"}


def _schemas(reference_prefix: str) -> dict[str, Any]:
    return {
        _EXTERNAL_LIST: {
            "description": "A list of values of one external metric.",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": _STRING,
                "kind": _STRING,
                "metadata": {"type": "object"},
                "items": {"type": "array", "items": {"$ref": f"{reference_prefix}{_EXTERNAL_VALUE}"}},
            },
            "x-kubernetes-group-version-kind": [
                {"group": "external.metrics.k8s.io", "version": "v1beta1", "kind": "ExternalMetricValueList"}
            ],
        },
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


def _operation(served: ServedGroupVersion, reference_prefix: str, v3: bool) -> dict[str, Any]:
    parameters = [
        {"name": "namespace", "in": "path", "required": True, **({"schema": _STRING} if v3 else _STRING)},
        {"name": "metric", "in": "path", "required": True, **({"schema": _STRING} if v3 else _STRING)},
        {"name": "labelSelector", "in": "query", **({"schema": _STRING} if v3 else _STRING)},
    ]
    reference = {"$ref": f"{reference_prefix}{_EXTERNAL_LIST}"}
    ok = {"description": "OK"}
    if v3:
        ok["content"] = {"application/json": {"schema": reference}}  # type: ignore[assignment]
    else:
        ok["schema"] = reference  # type: ignore[assignment]
    return {
        "get": {
            "description": "The values of an external metric visible from a namespace.",
            "operationId": "listExternalMetricValue",
            "tags": [served.group_version.replace(".", "_").replace("/", "_")],
            "parameters": parameters,
            "responses": {"200": ok, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": "list",
        }
    }


def _metric_path(served: ServedGroupVersion) -> str:
    return f"/apis/{served.group_version}/namespaces/{{namespace}}/{{metric}}"


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


class OpenApi:
    """Pre-rendered OpenAPI documents, looked up by path."""

    def __init__(self, served: Sequence[ServedGroupVersion], version: str) -> None:
        info = {"title": "tidegauge", "version": version}
        v2_paths = {_metric_path(s): _operation(s, "#/definitions/", v3=False) for s in served}
        v2 = {"swagger": "2.0", "info": info, "paths": v2_paths, "definitions": _schemas("#/definitions/")}
        self.documents: dict[str, bytes] = {"/openapi/v2": _encode(v2)}
        index: dict[str, dict[str, str]] = {}
        for s in served:
            v3 = {
                "openapi": "3.0.0",
                "info": info,
                "paths": {_metric_path(s): _operation(s, "#/components/schemas/", v3=True)},
                "components": {"schemas": _schemas("#/components/schemas/")},
            }
            body = _encode(v3)
            relative = f"apis/{s.group_version}"
            digest = hashlib.sha512(body).hexdigest().upper()
            self.documents[f"/openapi/v3/{relative}"] = body
            index[relative] = {"serverRelativeURL": f"/openapi/v3/{relative}?hash={digest}"}
        self.documents["/openapi/v3"] = _encode({"paths": index})
