"""Paths to routes and authorization attributes; query strings to selectors."""

from __future__ import annotations

import pytest

from tidegauge.selectors import SelectorError, parse_selector
from tidegauge.server.routing import RouteKind, resolve, selector_from_query

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
