"""Paths to routes and authorization attributes; query strings to selectors."""

from __future__ import annotations

import pytest

from tidegauge.selectors import SelectorError, parse_selector
from tidegauge.server.routing import RouteKind, custom_selectors_from_query, resolve, selector_from_query

EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


def test_metric_path_is_a_list_of_the_metric_resource_in_its_namespace() -> None:
    route = resolve(f"{EXTERNAL}/namespaces/shop/sqs_messages")
    assert route.kind is RouteKind.EXTERNAL_METRIC
    assert (route.namespace, route.metric) == (
        "shop",
        "sqs_messages",
    )
    attributes = route.attributes
    assert (attributes.verb, attributes.namespace, attributes.resource) == ("list", "shop", "sqs_messages")
    assert (attributes.group, attributes.version) == ("external.metrics.k8s.io", "v1beta1")


def test_trailing_slash_is_the_same_path() -> None:
    assert resolve(f"{EXTERNAL}/namespaces/shop/m/").metric == "m"
    assert resolve(f"{EXTERNAL}/").path == EXTERNAL


def test_encoded_slash_stays_inside_the_metric_name() -> None:
    route = resolve(f"{EXTERNAL}/namespaces/shop/a%2Fb")
    assert route.kind is RouteKind.EXTERNAL_METRIC
    assert route.metric == "a/b"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/healthz", RouteKind.HEALTH),
        ("/readyz/", RouteKind.HEALTH),
        ("/apis", RouteKind.GROUP_LIST),
        (EXTERNAL, RouteKind.DISCOVERY),
        ("/openapi/v2", RouteKind.OPENAPI),
        (f"{EXTERNAL}/namespaces/shop", RouteKind.DISCOVERY),
        ("/", RouteKind.OTHER),
    ],
)
def test_other_paths_are_non_resource_gets(path: str, kind: RouteKind) -> None:
    route = resolve(path)
    assert route.kind is kind
    assert route.attributes.verb == "get"
    assert not route.attributes.is_resource_request


def test_selector_comes_from_the_first_label_selector_with_plus_as_space() -> None:
    selector = selector_from_query("pretty=1&labelSelector=env+in+%28prod%2Cstage%29&labelSelector=x%3Dy")
    assert selector == parse_selector("env in (prod,stage)")
    assert selector_from_query("timeout=5s").is_empty
    assert selector_from_query("labelSelector=").is_empty


def test_malformed_selector_raises_selector_error() -> None:
    with pytest.raises(SelectorError):
        selector_from_query("labelSelector=queue+in+%28a")


CUSTOM = "/apis/custom.metrics.k8s.io"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            f"{CUSTOM}/v1beta2/namespaces/shop/deployments.apps/my-app/http_requests",
            {"resource": "deployments.apps", "name": "my-app", "subresource": "http_requests"},
        ),
        (
            f"{CUSTOM}/v1beta1/namespaces/shop/pods/*/http_requests",
            {"resource": "pods", "name": "*", "subresource": "http_requests"},
        ),
        (
            f"{CUSTOM}/v1beta2/namespaces/shop/metrics/http_requests",
            {"resource": "metrics", "name": "http_requests"},
        ),
    ],
)
def test_custom_metric_paths_review_as_request_info_factory_parses_them(
    path: str, expected: dict[str, str]
) -> None:
    # GIVEN a custom metrics path WHEN resolved THEN a get of the path's resource, named, with the metric
    # as subresource, in the path's namespace and version (k8s.io/apiserver RequestInfoFactory)
    route = resolve(path)
    assert route.kind is RouteKind.CUSTOM_METRIC
    version = path.split("/")[3]
    assert route.attributes.review_attributes() == {
        "resourceAttributes": {
            "namespace": "shop",
            "verb": "get",
            "group": "custom.metrics.k8s.io",
            "version": version,
            **expected,
        }
    }


@pytest.mark.parametrize(
    "path",
    [
        f"{CUSTOM}/v1alpha1/namespaces/shop/deployments.apps/my-app/m",
        f"{CUSTOM}/v1beta2/namespaces/shop/deployments.apps/my-app",
        f"{CUSTOM}/v1beta2/namespaces/shop/deployments.apps//m",
        f"{CUSTOM}/v1beta2/namespaces/shop/other/m",
        f"{CUSTOM}/v1beta2/deployments.apps/my-app/m",
    ],
)
def test_other_custom_group_paths_are_not_metric_reads(path: str) -> None:
    assert resolve(path).kind is not RouteKind.CUSTOM_METRIC


def test_custom_query_gives_both_selectors_and_a_bad_one_is_an_error() -> None:
    pods, series = custom_selectors_from_query(
        "labelSelector=app%3Dweb&metricLabelSelector=state+in+%28a%29&x=1"
    )
    assert (str(pods), str(series)) == ("app=web", "state in (a)")
    with pytest.raises(SelectorError):
        custom_selectors_from_query("metricLabelSelector=%3D%3D")
