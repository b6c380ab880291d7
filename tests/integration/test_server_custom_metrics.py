"""custom.metrics.k8s.io as the aggregator and the HPA see it, over real TLS with a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.custom_metrics import CUSTOM, CUSTOM_V1BETA1, custom_config, custom_samples
from tests.support.server_harness import (
    AGGREGATED_V2_ACCEPT,
    HPA_ACCEPT,
    Pki,
    Reply,
    ServerThread,
    aggregator_headers,
    request,
    seed,
    settings_for,
)
from tidegauge.localredis import RedisServer
from tidegauge.server.types import format_timestamp

pytestmark = pytest.mark.integration

HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
SHOP = f"{CUSTOM}/namespaces/shop"
MY_APP = {"kind": "Deployment", "namespace": "shop", "name": "my-app", "apiVersion": "apps/v1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def source_time() -> float:
    return float(int(time.time()) - 1)


@pytest.fixture(scope="module")
def server(pki: Pki, redis_server: RedisServer, source_time: float) -> Iterator[ServerThread]:
    seed(redis_server.url, custom_samples(source_time, time.time()), flush=True)
    with ServerThread(settings_for(pki), custom_config(redis_server.url)) as thread:
        yield thread


def hpa_get(server: ServerThread, pki: Pki, path: str, accept: str = HPA_ACCEPT) -> Reply:
    headers = [*aggregator_headers(HPA_USER), ("Accept", accept)]
    return request(server.port, path, pki.context(pki.aggregator), headers)


def assert_status(reply: Reply, code: int, reason: str) -> str:
    assert reply.status == code, reply.body
    assert reply.content_type == "application/json"
    status = reply.json()
    assert (status["kind"], status["apiVersion"], status["status"]) == ("Status", "v1", "Failure")
    assert (status["reason"], status["code"]) == (reason, code)
    return str(status["message"])


def only_item(reply: Reply) -> dict[str, object]:
    assert reply.status == 200, reply.body
    assert reply.content_type == "application/json"
    document = reply.json()
    assert (document["kind"], document["metadata"]) == ("MetricValueList", {})
    (item,) = document["items"]
    return dict(item)


def test_the_seed_example_is_answered_exactly(server: ServerThread, pki: Pki, source_time: float) -> None:
    # GIVEN http_requests_total{app=my-app} = 1250 and the rule name: "{app}" for Deployments in shop
    # WHEN the HPA asks for the Object metric of Deployment my-app with its Accept header
    reply = hpa_get(server, pki, f"{CUSTOM}/namespaces/shop/deployments.apps/my-app/http_requests_total")
    # THEN exactly one item, describing the Deployment, with the source timestamp
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert reply.json() == {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [
            {
                "describedObject": {
                    "kind": "Deployment",
                    "namespace": "shop",
                    "name": "my-app",
                    "apiVersion": "apps/v1",
                },
                "metric": {"name": "http_requests_total", "selector": None},
                "timestamp": format_timestamp(source_time),
                "windowSeconds": 60,
                "value": "1250",
            }
        ],
    }


def test_v1beta1_answers_the_same_in_its_own_shape(
    server: ServerThread, pki: Pki, source_time: float
) -> None:
    path = f"{CUSTOM_V1BETA1}/namespaces/shop/deployments.apps/my-app/http_requests_total"
    reply = hpa_get(server, pki, path)
    assert reply.json()["apiVersion"] == "custom.metrics.k8s.io/v1beta1"
    assert only_item(reply) == {
        "describedObject": MY_APP,
        "metricName": "http_requests_total",
        "timestamp": format_timestamp(source_time),
        "window": 60,
        "value": "1250",
        "selector": None,
    }


def test_several_series_are_summed_with_the_oldest_timestamp(
    server: ServerThread, pki: Pki, source_time: float
) -> None:
    # GIVEN queue orders has a visible (5 s older) and an in-flight series, both describing orders-worker
    item = only_item(hpa_get(server, pki, f"{SHOP}/deployments.apps/orders-worker/sqs_messages"))
    # THEN one item: their sum, at the older of the two source timestamps
    assert item["value"] == "1250"
    assert item["timestamp"] == format_timestamp(source_time - 5)


def test_metric_label_selector_selects_series_and_is_echoed(server: ServerThread, pki: Pki) -> None:
    path = f"{SHOP}/deployments.apps/orders-worker/sqs_messages?metricLabelSelector=state%3Dvisible"
    item = only_item(hpa_get(server, pki, path))
    assert item["value"] == "1k"
    assert item["metric"] == {"name": "sqs_messages", "selector": {"matchLabels": {"state": "visible"}}}
    path = f"{SHOP}/services/orders-queue/sqs_messages?metricLabelSelector=state+notin+%28visible%29"
    item = only_item(hpa_get(server, pki, path))
    assert item["value"] == "250"
    service = {"kind": "Service", "namespace": "shop", "name": "orders-queue", "apiVersion": "v1"}
    assert item["describedObject"] == service
    assert item["metric"] == {
        "name": "sqs_messages",
        "selector": {"matchExpressions": [{"key": "state", "operator": "NotIn", "values": ["visible"]}]},
    }


@pytest.mark.parametrize(
    "spelling", ["deployments", "deployment", "deploy", "deployment.apps", "Deployments.apps"]
)
def test_singular_short_and_ungrouped_resource_forms_are_accepted(
    server: ServerThread, pki: Pki, spelling: str
) -> None:
    item = only_item(hpa_get(server, pki, f"{CUSTOM}/namespaces/shop/{spelling}/my-app/http_requests_total"))
    assert item["describedObject"] == {
        "kind": "Deployment",
        "namespace": "shop",
        "name": "my-app",
        "apiVersion": "apps/v1",
    }
    assert item["value"] == "1250"


def test_namespace_metric_describes_the_namespace(server: ServerThread, pki: Pki, source_time: float) -> None:
    # GIVEN series with team=shop (one stale) WHEN asked for the Namespace shop THEN the fresh ones summed
    item = only_item(hpa_get(server, pki, f"{CUSTOM}/namespaces/shop/metrics/sqs_messages"))
    assert item["describedObject"] == {"kind": "Namespace", "name": "shop", "apiVersion": "v1"}
    assert item["value"] == "1250"
    assert item["timestamp"] == format_timestamp(source_time - 5)


@pytest.mark.parametrize(
    "path",
    [
        "/namespaces/shop/deployments.apps/nobody/http_requests_total",
        "/namespaces/shop/deployments.apps/orders-worker/sqs_messages?metricLabelSelector=state%3Ddelayed",
        "/namespaces/default/deployments.apps/my-app/http_requests_total",
        "/namespaces/shop/services/old-queue/sqs_messages",
        "/namespaces/default/metrics/sqs_messages",
    ],
)
def test_no_fresh_describing_series_is_a_404(server: ServerThread, pki: Pki, path: str) -> None:
    message = assert_status(hpa_get(server, pki, CUSTOM + path), 404, "NotFound")
    assert "no fresh series of metric" in message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/widgets.example.com/w/sqs_messages", "resource 'widgets.example.com' is not known"),
        ("/statefulsets.apps/w/sqs_messages", "no metric 'sqs_messages' is served for statefulsets"),
        ("/deployments.apps/my-app/no_such_metric", "no metric 'no_such_metric' is served for deployments"),
    ],
)
def test_an_unknown_resource_or_unserved_metric_is_a_404(
    server: ServerThread, pki: Pki, path: str, expected: str
) -> None:
    message = assert_status(hpa_get(server, pki, SHOP + path), 404, "NotFound")
    assert expected in message


def test_exposure_denial_is_a_404_as_for_a_missing_metric(server: ServerThread, pki: Pki) -> None:
    # GIVEN a fresh series with team=secret, and no exposure rule for namespace secret
    # WHEN the Namespace secret's metric is asked THEN 404 as if it had no series, saying nothing of it
    reply = hpa_get(server, pki, f"{CUSTOM}/namespaces/secret/metrics/sqs_messages")
    message = assert_status(reply, 404, "NotFound")
    assert message == "no fresh series of metric 'sqs_messages' describe namespace secret"


@pytest.mark.parametrize(
    "query",
    ["metricLabelSelector=state+in", "metricLabelSelector=%21%21x", "labelSelector=app%3D%3D%3D"],
)
def test_a_bad_selector_is_a_400(server: ServerThread, pki: Pki, query: str) -> None:
    path = f"{CUSTOM}/namespaces/shop/deployments.apps/my-app/http_requests_total?{query}"
    assert_status(hpa_get(server, pki, path), 400, "BadRequest")


def test_a_bad_namespace_in_the_path_is_a_400(server: ServerThread, pki: Pki) -> None:
    assert_status(hpa_get(server, pki, f"{CUSTOM}/namespaces/Shop_1/metrics/sqs_messages"), 400, "BadRequest")


def test_discovery_lists_resource_slash_metric_entries_for_both_versions(
    server: ServerThread, pki: Pki
) -> None:
    for base in (CUSTOM, CUSTOM_V1BETA1):
        document = hpa_get(server, pki, base, "application/json").json()
        assert document["kind"] == "APIResourceList"
        assert document["groupVersion"] == base.removeprefix("/apis/")
        assert document["resources"] == [
            {
                "name": name,
                "singularName": "",
                "namespaced": True,
                "kind": "MetricValueList",
                "verbs": ["get"],
            }
            for name in (
                "deployments.apps/http_requests_total",
                "deployments.apps/sqs_messages",
                "namespaces/sqs_messages",
                "services/sqs_messages",
            )
        ]


def test_the_group_prefers_v1beta2_in_the_group_list_and_aggregated_discovery(
    server: ServerThread, pki: Pki
) -> None:
    groups = hpa_get(server, pki, "/apis", "application/json").json()["groups"]
    custom = next(group for group in groups if group["name"] == "custom.metrics.k8s.io")
    assert custom["preferredVersion"]["groupVersion"] == "custom.metrics.k8s.io/v1beta2"
    assert [v["version"] for v in custom["versions"]] == ["v1beta2", "v1beta1"]
    reply = hpa_get(server, pki, "/apis", AGGREGATED_V2_ACCEPT)
    items = reply.json()["items"]
    group = next(item for item in items if item["metadata"]["name"] == "custom.metrics.k8s.io")
    v1beta2 = group["versions"][0]
    assert v1beta2["version"] == "v1beta2"
    deployments = next(r for r in v1beta2["resources"] if r["resource"] == "deployments.apps")
    assert deployments["scope"] == "Namespaced"
    assert [s["subresource"] for s in deployments["subresources"]] == ["http_requests_total", "sqs_messages"]
    assert {s["responseKind"]["kind"] for s in deployments["subresources"]} == {"MetricValueList"}
    group_document = hpa_get(server, pki, "/apis/custom.metrics.k8s.io", "application/json").json()
    assert group_document["kind"] == "APIGroup"


def test_openapi_documents_both_custom_versions(server: ServerThread, pki: Pki) -> None:
    v2 = hpa_get(server, pki, "/openapi/v2", "application/json").json()
    assert f"{CUSTOM}/namespaces/{{namespace}}/{{resource}}/{{name}}/{{metric}}" in v2["paths"]
    assert f"{CUSTOM_V1BETA1}/namespaces/{{namespace}}/metrics/{{metric}}" in v2["paths"]
    value = v2["definitions"]["io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValue"]
    assert {"metricName", "window", "selector", "describedObject"} <= set(value["properties"])
    index = hpa_get(server, pki, "/openapi/v3", "application/json").json()["paths"]
    for version in ("v1beta2", "v1beta1"):
        url = index[f"apis/custom.metrics.k8s.io/{version}"]["serverRelativeURL"]
        document = hpa_get(server, pki, url.partition("?")[0], "application/json").json()
        schemas = document["components"]["schemas"]
        assert f"io.k8s.metrics.pkg.apis.custom_metrics.{version}.MetricValueList" in schemas


@pytest.mark.parametrize(
    "path",
    [
        "/namespaces/shop/deployments.apps/%0Amy-app/http_requests_total",
        "/namespaces/shop/deployments.apps/" + "a" * 300 + "/http_requests_total",
        "/namespaces/shop/deployments.apps/my-app/http%2Frequests",
        "/namespaces/shop/%00/my-app/http_requests_total",
        "/namespaces/shop/deployments.apps/my%20app/http_requests_total",
        "/namespaces/shop/pods/*/http_requests_total",
        "/namespaces/shop/services/*/sqs_messages?labelSelector=app%3Dweb",
        "/namespaces/shop/namespaces/other/sqs_messages",
    ],
)
def test_odd_custom_paths_get_a_client_status_never_a_500(server: ServerThread, pki: Pki, path: str) -> None:
    reply = hpa_get(server, pki, CUSTOM + path)
    assert reply.status in (400, 404), reply.body
    assert reply.json()["kind"] == "Status"
