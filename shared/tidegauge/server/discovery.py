"""Discovery documents: legacy (``APIGroupList``, ``APIGroup``, ``APIResourceList``) and aggregated v2.

Only the groups passed to :class:`Discovery` are advertised, so a group is served and discovered
together or not at all (custom.metrics.k8s.io joins by adding a :class:`ServedGroupVersion`).
Every document is rendered once, at start-up.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tidegauge.server import errors
from tidegauge.server.types import CUSTOM_GROUP

AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_KIND = "APIGroupDiscoveryList"


@dataclass(frozen=True, slots=True)
class ApiResource:
    """One resource of a group version, as discovery lists it."""

    name: str
    kind: str
    namespaced: bool = True
    singular_name: str = ""
    verbs: tuple[str, ...] = ("get",)


@dataclass(frozen=True, slots=True)
class ServedGroupVersion:
    group: str
    version: str
    resources: tuple[ApiResource, ...]

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}"


EXTERNAL_METRICS = ServedGroupVersion(
    "external.metrics.k8s.io", "v1beta1", (ApiResource("externalmetrics", "ExternalMetricValueList"),)
)
CUSTOM_METRICS_VERSIONS = ("v1beta2", "v1beta1")
"""Served custom metrics versions, preferred first (the HPA picks the preferred one from discovery)."""


def custom_metrics(version: str, metrics: Sequence[tuple[str, str]]) -> ServedGroupVersion:
    """``custom.metrics.k8s.io/<version>`` listing ``<resource>/<metric>`` per (resource, metric), as
    custom-metrics-apiserver does; every entry namespaced, verbs ``get``, kind ``MetricValueList``."""
    resources = tuple(
        ApiResource(f"{resource}/{metric}", "MetricValueList") for resource, metric in dict.fromkeys(metrics)
    )
    return ServedGroupVersion(CUSTOM_GROUP, version, resources)


class GroupListFormat(enum.Enum):
    """What ``GET /apis`` answers, by the request's ``Accept`` header."""

    LEGACY = ("application/json", "")
    AGGREGATED_V2 = (f"application/json;g={AGGREGATED_GROUP};v=v2;as={AGGREGATED_KIND}", "v2")
    AGGREGATED_V2BETA1 = (f"application/json;g={AGGREGATED_GROUP};v=v2beta1;as={AGGREGATED_KIND}", "v2beta1")

    @property
    def content_type(self) -> str:
        return self.value[0]


_ACCEPTED = ", ".join(fmt.content_type for fmt in GroupListFormat)


def negotiate_group_list(accept: str | None) -> GroupListFormat:
    """The preferred format the client accepts (by ``q``, then order); 406 ``Status`` if none fits."""
    if not accept or not accept.strip():
        return GroupListFormat.LEGACY
    candidates: list[tuple[float, int, GroupListFormat]] = []
    for position, entry in enumerate(accept.split(",")):
        media_type, _, raw_parameters = entry.partition(";")
        parameters: dict[str, str] = {}
        for parameter in raw_parameters.split(";"):
            name, _, value = parameter.partition("=")
            parameters[name.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(parameters.pop("q", "1"))
        except ValueError:
            quality = 0.0
        chosen = _match(media_type.strip().lower(), parameters)
        if chosen is not None and quality > 0:
            candidates.append((-quality, position, chosen))
    if not candidates:
        raise errors.not_acceptable(_ACCEPTED)
    return min(candidates, key=lambda item: (item[0], item[1]))[2]


def _match(media_type: str, parameters: dict[str, str]) -> GroupListFormat | None:
    parameters.pop("", None)
    parameters.pop("charset", None)
    if media_type in ("*/*", "application/*"):
        return GroupListFormat.LEGACY
    if media_type != "application/json":
        return None
    if not parameters:
        return GroupListFormat.LEGACY
    if parameters.get("g") != AGGREGATED_GROUP or parameters.get("as") != AGGREGATED_KIND:
        return None
    return {"v2": GroupListFormat.AGGREGATED_V2, "v2beta1": GroupListFormat.AGGREGATED_V2BETA1}.get(
        parameters.get("v", "")
    )


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _group(served: Sequence[ServedGroupVersion], group: str) -> dict[str, Any]:
    versions = [{"groupVersion": s.group_version, "version": s.version} for s in served if s.group == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def _resource_list(served: ServedGroupVersion) -> dict[str, Any]:
    resources = [
        {
            "name": r.name,
            "singularName": r.singular_name,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        for r in served.resources
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": served.group_version,
        "resources": resources,
    }


def _aggregated(served: Sequence[ServedGroupVersion], groups: Sequence[str], version: str) -> dict[str, Any]:
    items = []
    for group in groups:
        versions = [
            {"version": s.version, "resources": _aggregated_resources(s), "freshness": "Current"}
            for s in served
            if s.group == group
        ]
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": versions})
    return {
        "kind": AGGREGATED_KIND,
        "apiVersion": f"{AGGREGATED_GROUP}/{version}",
        "metadata": {},
        "items": items,
    }


def _aggregated_resources(served: ServedGroupVersion) -> list[dict[str, Any]]:
    """Resources in v2 shape; ``parent/sub`` entries become subresources of a parent, which is added
    (empty kind, no verbs) when not served itself, as the aggregator converts legacy lists
    (k8s.io/apiserver endpoints/discovery/aggregated ``ConvertGroupVersionIntoToDiscovery``)."""
    scope = {True: "Namespaced", False: "Cluster"}
    parents: dict[str, dict[str, Any]] = {}
    for r in served.resources:
        parent, _, subresource = r.name.partition("/")
        kind = {"group": "", "version": "", "kind": r.kind}
        if not subresource:
            entry = parents.setdefault(parent, {"resource": parent})
            entry.update(
                responseKind=kind,
                scope=scope[r.namespaced],
                singularResource=r.singular_name,
                verbs=list(r.verbs),
            )
            continue
        entry = parents.setdefault(
            parent,
            {
                "resource": parent,
                "responseKind": {"group": "", "version": "", "kind": ""},
                "scope": scope[r.namespaced],
                "singularResource": "",
                "verbs": [],
            },
        )
        entry.setdefault("subresources", []).append(
            {"subresource": subresource, "responseKind": kind, "verbs": list(r.verbs)}
        )
    return list(parents.values())


class Discovery:
    """Pre-rendered discovery bodies for the served group versions, looked up by path."""

    def __init__(self, served: Sequence[ServedGroupVersion]) -> None:
        self.served = tuple(served)
        groups = list(dict.fromkeys(s.group for s in served))
        group_list = {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group(served, g) for g in groups],
        }
        self._group_lists = {
            GroupListFormat.LEGACY: _encode(group_list),
            GroupListFormat.AGGREGATED_V2: _encode(_aggregated(served, groups, "v2")),
            GroupListFormat.AGGREGATED_V2BETA1: _encode(_aggregated(served, groups, "v2beta1")),
        }
        self.documents: dict[str, bytes] = {}
        for group in groups:
            self.documents[f"/apis/{group}"] = _encode(
                {"kind": "APIGroup", "apiVersion": "v1", **_group(served, group)}
            )
        for s in served:
            self.documents[f"/apis/{s.group_version}"] = _encode(_resource_list(s))

    def group_list(self, accept: str | None) -> tuple[bytes, str]:
        """Body and Content-Type of ``GET /apis`` for this ``Accept`` header (406 ``ApiError`` if none)."""
        chosen = negotiate_group_list(accept)
        return self._group_lists[chosen], chosen.content_type
