"""Paths of the secure port: which kind of request a path is, and its authorization attributes.

Segments are split on the raw (still percent-encoded) path and decoded one by one, so an encoded
``/`` inside a metric name cannot change the route. A trailing slash is the same path.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from tidegauge.selectors import Selector, parse_selector
from tidegauge.server.authz import Attributes
from tidegauge.server.discovery import CUSTOM_METRICS_VERSIONS, EXTERNAL_METRICS
from tidegauge.server.types import CUSTOM_GROUP

HEALTH_PATHS = frozenset(("/healthz", "/livez", "/readyz", "/healthz/ping", "/livez/ping", "/readyz/ping"))
_EXTERNAL_PREFIX = ("", "apis", EXTERNAL_METRICS.group, EXTERNAL_METRICS.version, "namespaces")


class RouteKind(enum.Enum):
    HEALTH = "health"
    EXTERNAL_METRIC = "external_metric"
    CUSTOM_METRIC = "custom_metric"
    GROUP_LIST = "group_list"
    DISCOVERY = "discovery"
    OPENAPI = "openapi"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    path: str
    attributes: Attributes
    namespace: str = ""
    metric: str = ""
    resource: str = ""
    """For a custom metric: the path's resource as sent (``deployments.apps``, ``pods``); "" for the
    ``namespaces/{ns}/metrics/{metric}`` form (the metric describes that Namespace)."""
    name: str = ""
    version: str = ""


_CACHED_LENGTH = 512
"""Only inputs this short are cached: the HPA's are, and long ones would pin up to 4096 x 16 KiB."""


def resolve(raw_path: str) -> Route:
    """The route of a raw request path (cached: the HPA asks the same few paths again and again)."""
    return _resolve_cached(raw_path) if len(raw_path) <= _CACHED_LENGTH else _resolve(raw_path)


def selector_from_query(raw_query: str) -> Selector:
    """The ``labelSelector`` of a raw query string (first one wins; ``+`` is a space); other keys ignored."""
    if len(raw_query) <= _CACHED_LENGTH:
        return _selector_cached(raw_query)
    return _selector(raw_query)


def _resolve(raw_path: str) -> Route:
    segments = [unquote(segment) for segment in raw_path.split("/")]
    if len(segments) > 2 and segments[-1] == "":
        segments.pop()
    path = "/".join(segments) or "/"
    if len(segments) == 7 and tuple(segments[:5]) == _EXTERNAL_PREFIX and segments[5] and segments[6]:
        namespace, metric = segments[5], segments[6]
        attributes = Attributes(
            "list", path, namespace, EXTERNAL_METRICS.group, EXTERNAL_METRICS.version, metric
        )
        return Route(RouteKind.EXTERNAL_METRIC, path, attributes, namespace, metric)
    custom = _custom(segments, path)
    if custom is not None:
        return custom
    attributes = Attributes("get", path)
    if path in HEALTH_PATHS:
        return Route(RouteKind.HEALTH, path, attributes)
    if path == "/apis":
        return Route(RouteKind.GROUP_LIST, path, attributes)
    if path.startswith("/apis/"):
        return Route(RouteKind.DISCOVERY, path, attributes)
    if path.startswith("/openapi/"):
        return Route(RouteKind.OPENAPI, path, attributes)
    return Route(RouteKind.OTHER, path, attributes)


def _custom(segments: list[str], path: str) -> Route | None:
    """``namespaces/{ns}/{resource}/{name}/{metric}`` or ``namespaces/{ns}/metrics/{metric}`` of a version."""
    if len(segments) not in (8, 9) or segments[:3] != ["", "apis", CUSTOM_GROUP]:
        return None
    if segments[4] != "namespaces":
        return None
    version = segments[3]
    if version not in CUSTOM_METRICS_VERSIONS or not all(segments[5:]):
        return None
    namespace = segments[5]
    if len(segments) == 8:
        if segments[6] != "metrics":
            return None
        metric = segments[7]
        attributes = Attributes("get", path, namespace, CUSTOM_GROUP, version, "metrics", metric)
        return Route(RouteKind.CUSTOM_METRIC, path, attributes, namespace, metric, version=version)
    resource, name, metric = segments[6:]
    attributes = Attributes("get", path, namespace, CUSTOM_GROUP, version, resource, name, metric)
    return Route(RouteKind.CUSTOM_METRIC, path, attributes, namespace, metric, resource, name, version)


def custom_selectors_from_query(raw_query: str) -> tuple[Selector, Selector]:
    """``labelSelector`` (selects pods) and ``metricLabelSelector`` (selects series) of a raw query string."""
    if len(raw_query) <= _CACHED_LENGTH:
        return _custom_selectors_cached(raw_query)
    return _custom_selectors(raw_query)


def _custom_selectors(raw_query: str) -> tuple[Selector, Selector]:
    found: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        if key in ("labelSelector", "metricLabelSelector"):
            found.setdefault(key, value)
    return parse_selector(found.get("labelSelector")), parse_selector(found.get("metricLabelSelector"))


def _selector(raw_query: str) -> Selector:
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        if key == "labelSelector":
            return parse_selector(value)
    return parse_selector(None)


_resolve_cached = functools.lru_cache(maxsize=4096)(_resolve)
_selector_cached = functools.lru_cache(maxsize=4096)(_selector)
_custom_selectors_cached = functools.lru_cache(maxsize=4096)(_custom_selectors)
