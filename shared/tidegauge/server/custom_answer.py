"""One custom metrics request, from its route and query to the ``MetricValueList`` body."""

from __future__ import annotations

from tidegauge.config.objects import NAMESPACES, PODS
from tidegauge.server import errors
from tidegauge.server.custom import CustomMetricsProvider
from tidegauge.server.routing import Route, custom_selectors_from_query
from tidegauge.server.types import encode_custom_list

ALL_OBJECTS = "*"


async def answer_custom_metric(custom: CustomMetricsProvider | None, route: Route, query: str) -> bytes:
    """The body for ``route`` (Object, Namespace or Pods metric); a domain error for a 4xx/5xx."""
    if custom is None:
        raise errors.path_not_found(route.path)
    _pod_selector, metric_selector = custom_selectors_from_query(query)
    if not route.resource:
        value = await custom.get_object_metric(
            NAMESPACES, route.namespace, route.namespace, route.metric, metric_selector
        )
        return encode_custom_list([value], route.version)
    resource = custom.resource(route.resource)
    if resource is PODS or route.name == ALL_OBJECTS:
        raise errors.not_found(
            f"metric {route.metric!r} of {resource.resource} {route.name!r}: "
            "selecting objects by label is not served"
        )
    if resource is NAMESPACES and route.name != route.namespace:
        raise errors.bad_request(
            f"namespace {route.name!r} is asked for in the path of namespace {route.namespace!r}: "
            f"use /namespaces/{route.name}/metrics/{route.metric}"
        )
    value = await custom.get_object_metric(
        resource, route.namespace, route.name, route.metric, metric_selector
    )
    return encode_custom_list([value], route.version)
