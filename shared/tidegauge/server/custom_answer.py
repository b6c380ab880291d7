"""One custom metrics request, from its route and query to the ``MetricValueList`` body."""

from __future__ import annotations

from tidegauge.config.objects import NAMESPACES, PODS
from tidegauge.selectors import Selector
from tidegauge.server import errors
from tidegauge.server.custom import CustomMetricsProvider
from tidegauge.server.pods import PodCache
from tidegauge.server.routing import Route, custom_selectors_from_query
from tidegauge.server.types import encode_custom_list

ALL_OBJECTS = "*"


async def answer_custom_metric(
    custom: CustomMetricsProvider | None, pods: PodCache | None, route: Route, query: str
) -> bytes:
    """The body for ``route`` (Object, Namespace or Pods metric); a domain error for a 4xx/5xx."""
    if custom is None:
        raise errors.path_not_found(route.path)
    pod_selector, metric_selector = custom_selectors_from_query(query)
    if not route.resource:
        value = await custom.get_object_metric(
            NAMESPACES, route.namespace, route.namespace, route.metric, metric_selector
        )
        return encode_custom_list([value], route.version)
    resource = custom.resource(route.resource)
    if resource is PODS:
        return await _pods_metric(custom, pods, route, pod_selector, metric_selector)
    if route.name == ALL_OBJECTS:
        raise errors.not_found(
            f"metric {route.metric!r} of {resource.resource} {route.name!r}: "
            "selecting objects by label is served for pods only"
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


async def _pods_metric(
    custom: CustomMetricsProvider,
    pods: PodCache | None,
    route: Route,
    pod_selector: Selector,
    metric_selector: Selector,
) -> bytes:
    """One item per selected pod that series describe (``*`` with ``labelSelector``, or one pod)."""
    if not custom.rules_for(PODS, route.metric):
        raise errors.not_found(f"no metric {route.metric!r} is served for pods")
    if pods is None:
        raise errors.not_found(f"pods metric {route.metric!r}: this server does not watch pods")
    if not pods.synced.is_set():
        raise errors.service_unavailable("the pod list is not loaded yet")
    names = pods.select(route.namespace, pod_selector)
    if route.name != ALL_OBJECTS:
        names = [name for name in names if name == route.name]
    if not names:
        raise errors.not_found(
            f"no pods in namespace {route.namespace} match the selector {str(pod_selector)!r}"
        )
    values = await custom.get_pods_metric(route.namespace, names, route.metric, metric_selector)
    return encode_custom_list(values, route.version)
