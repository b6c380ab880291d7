"""The server as the kube-apiserver aggregator and the HPA see it: the contract row by row, over real TLS."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.server_harness import (
    AGGREGATED_V2_ACCEPT,
    HPA_ACCEPT,
    Pki,
    Reply,
    ServerThread,
    aggregator_headers,
    request,
    seed,
    server_config,
    settings_for,
)
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample

pytestmark = pytest.mark.integration

EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def source_time() -> float:
    """A whole second shortly before the module's tests run (fresh for all of them)."""
    return float(int(time.time()) - 1)


@pytest.fixture(scope="module")
def server(pki: Pki, redis_server: RedisServer, source_time: float) -> Iterator[ServerThread]:
    now = time.time()
    samples = [
        Sample.of("sqs_messages", {"queue": q, "state": s}, v, source_time, source="orders")
        for q, s, v in [
            ("orders", "visible", 1250),
            ("orders", "in_flight", 0.5),
            ("payments", "visible", 2000),
            ("refunds", "visible", 3e9),
        ]
    ]
    samples.append(Sample.of("sqs_messages", {"queue": "old", "state": "visible"}, 7, now - 1000))
    samples.append(Sample.of("db_load", {"instance": "main"}, 2.5e6, now - 1000))
    seed(redis_server.url, samples, flush=True)
    with ServerThread(settings_for(pki), server_config(redis_server.url)) as thread:
        yield thread


def aggregator_get(server: ServerThread, pki: Pki, path: str, accept: str = "application/json") -> Reply:
    headers = [*aggregator_headers(), ("Accept", accept)]
    return request(server.port, path, pki.context(pki.aggregator), headers)


def assert_status(reply: Reply, code: int, reason: str) -> dict[str, object]:
    assert reply.status == code, reply.body
    assert reply.content_type == "application/json"
    assert "Retry-After" not in reply.headers
    status = reply.json()
    assert status["kind"] == "Status"
    assert status["apiVersion"] == "v1"
    assert status["status"] == "Failure"
    assert (status["reason"], status["code"]) == (reason, code)
    return dict(status)


def test_availability_probe_gets_a_resource_list_with_get_only(server: ServerThread, pki: Pki) -> None:
    # GIVEN the aggregator's probe WHEN it asks for the group version THEN a non-empty APIResourceList
    reply = aggregator_get(server, pki, EXTERNAL)
    assert reply.status == 200
    assert reply.content_type == "application/json"
    document = reply.json()
    assert document["kind"] == "APIResourceList"
    assert document["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    assert document["resources"] == [
        {
            "name": "externalmetrics",
            "singularName": "",
            "namespaced": True,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }
    ]


def test_trailing_slash_is_answered_not_redirected(server: ServerThread, pki: Pki) -> None:
    reply = aggregator_get(server, pki, EXTERNAL + "/")
    assert reply.status == 200
    assert reply.json()["kind"] == "APIResourceList"


def test_aggregated_discovery_accept_gets_v2_document(server: ServerThread, pki: Pki) -> None:
    # GIVEN the aggregator's Accept header for /apis WHEN asked THEN a v2 APIGroupDiscoveryList, typed as such
    reply = aggregator_get(server, pki, "/apis", AGGREGATED_V2_ACCEPT)
    assert reply.status == 200
    assert reply.content_type == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    document = reply.json()
    assert (document["kind"], document["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
    group, custom = document["items"]
    assert group["metadata"]["name"] == "external.metrics.k8s.io"
    assert custom["metadata"]["name"] == "custom.metrics.k8s.io"
    (version,) = group["versions"]
    assert version["version"] == "v1beta1"
    assert version["freshness"] == "Current"
    (resource,) = version["resources"]
    assert resource["resource"] == "externalmetrics"
    assert resource["scope"] == "Namespaced"
    assert resource["responseKind"]["kind"] == "ExternalMetricValueList"
    assert resource["verbs"] == ["get"]


def test_aggregated_discovery_v2beta1_only(server: ServerThread, pki: Pki) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    reply = aggregator_get(server, pki, "/apis", accept)
    assert reply.status == 200
    assert reply.content_type == accept
    assert reply.json()["apiVersion"] == "apidiscovery.k8s.io/v2beta1"


def test_plain_json_apis_gets_group_list_of_both_metrics_groups(server: ServerThread, pki: Pki) -> None:
    # Custom metrics are served (an empty resource list here: this config has no objects: rules), so
    # a custom-metrics APIService registered beside this server is Available, never a broken group.
    document = aggregator_get(server, pki, "/apis").json()
    assert document["kind"] == "APIGroupList"
    names = [group["name"] for group in document["groups"]]
    assert names == ["external.metrics.k8s.io", "custom.metrics.k8s.io"]
    assert document["groups"][0]["preferredVersion"]["groupVersion"] == "external.metrics.k8s.io/v1beta1"


def test_apis_with_only_protobuf_accept_is_406_status(server: ServerThread, pki: Pki) -> None:
    reply = aggregator_get(server, pki, "/apis", "application/vnd.kubernetes.protobuf")
    assert_status(reply, 406, "NotAcceptable")


def test_group_document(server: ServerThread, pki: Pki) -> None:
    document = aggregator_get(server, pki, "/apis/external.metrics.k8s.io").json()
    assert document["kind"] == "APIGroup"
    assert document["name"] == "external.metrics.k8s.io"


def test_custom_metrics_without_object_rules_is_an_empty_resource_list(
    server: ServerThread, pki: Pki
) -> None:
    # GIVEN a config without objects: WHEN the probe asks for the custom group version THEN 200, no entries
    document = aggregator_get(server, pki, "/apis/custom.metrics.k8s.io/v1beta2").json()
    assert (document["kind"], document["resources"]) == ("APIResourceList", [])
    path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/deployments.apps/my-app/sqs_messages"
    assert_status(aggregator_get(server, pki, path, HPA_ACCEPT), 404, "NotFound")


@pytest.mark.parametrize("path", ["/openapi/v2", "/openapi/v3"])
def test_openapi_documents(server: ServerThread, pki: Pki, path: str) -> None:
    reply = aggregator_get(server, pki, path)
    assert reply.status == 200
    assert reply.content_type == "application/json"
    document = reply.json()
    if path == "/openapi/v2":
        assert "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}" in document["paths"]
    else:
        relative = document["paths"]["apis/external.metrics.k8s.io/v1beta1"]["serverRelativeURL"]
        v3 = aggregator_get(server, pki, relative).json()
        assert v3["openapi"].startswith("3.")


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/readyz/"])
def test_health_paths_need_no_credentials(server: ServerThread, pki: Pki, path: str) -> None:
    reply = request(server.port, path, pki.context())
    assert (reply.status, reply.body) == (200, b"ok")


def test_hpa_request_gets_json_with_source_timestamps_and_canonical_quantities(
    server: ServerThread, pki: Pki, source_time: float
) -> None:
    # GIVEN fresh series WHEN the HPA asks with its protobuf-first Accept THEN JSON, exactly the selection
    reply = aggregator_get(
        server, pki, f"{EXTERNAL}/namespaces/shop/sqs_messages?labelSelector=queue%3Dorders", HPA_ACCEPT
    )
    assert reply.status == 200
    assert reply.content_type == "application/json"
    document = reply.json()
    assert (document["kind"], document["apiVersion"]) == (
        "ExternalMetricValueList",
        "external.metrics.k8s.io/v1beta1",
    )
    expected_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source_time))
    assert document["items"] == [
        {
            "metricName": "sqs_messages",
            "metricLabels": {"queue": "orders", "state": "in_flight"},
            "timestamp": expected_time,
            "window": 60,
            "value": "500m",
        },
        {
            "metricName": "sqs_messages",
            "metricLabels": {"queue": "orders", "state": "visible"},
            "timestamp": expected_time,
            "window": 60,
            "value": "1250",
        },
    ]


def test_encoded_in_selector_with_unknown_parameters(server: ServerThread, pki: Pki) -> None:
    selector = "queue+in+%28payments%2Crefunds%29%2Cstate%3Dvisible"
    path = f"{EXTERNAL}/namespaces/shop/sqs_messages?timeout=30s&labelSelector={selector}&pretty=true"
    items = aggregator_get(server, pki, path, HPA_ACCEPT).json()["items"]
    assert [(i["metricLabels"]["queue"], i["value"]) for i in items] == [
        ("payments", "2k"),
        ("refunds", "3G"),
    ]


def test_stale_series_are_left_out_and_all_stale_is_404(server: ServerThread, pki: Pki) -> None:
    everything = aggregator_get(server, pki, f"{EXTERNAL}/namespaces/shop/sqs_messages").json()["items"]
    assert "old" not in {item["metricLabels"]["queue"] for item in everything}
    assert len(everything) == 4
    status = assert_status(
        aggregator_get(server, pki, f"{EXTERNAL}/namespaces/shop/sqs_messages?labelSelector=queue%3Dold"),
        404,
        "NotFound",
    )
    assert "stale" in str(status["message"])


def test_fallback_served_after_its_delay(server: ServerThread, pki: Pki) -> None:
    # GIVEN db_load stale for 700 s (> 60 s fallback delay) WHEN asked THEN one item with the fallback value
    reply = aggregator_get(server, pki, f"{EXTERNAL}/namespaces/shop/db_load?labelSelector=instance%3Dmain")
    (item,) = reply.json()["items"]
    assert (item["value"], item["metricLabels"]) == ("500m", {"instance": "main"})


def test_exposure_hides_metrics_from_other_namespaces(server: ServerThread, pki: Pki) -> None:
    status = assert_status(
        aggregator_get(server, pki, f"{EXTERNAL}/namespaces/elsewhere/sqs_messages"), 404, "NotFound"
    )
    assert status["message"] == "external metric 'sqs_messages' not found"


def test_exposure_selector_limits_visible_series(server: ServerThread, pki: Pki) -> None:
    items = aggregator_get(server, pki, f"{EXTERNAL}/namespaces/team-a/sqs_messages").json()["items"]
    assert [item["metricLabels"]["queue"] for item in items] == ["payments"]


@pytest.mark.parametrize(
    ("path", "code", "reason"),
    [
        (f"{EXTERNAL}/namespaces/shop/sqs_messages?labelSelector=queue+in+%28a", 400, "BadRequest"),
        (f"{EXTERNAL}/namespaces/shop/sqs_messages?labelSelector=%3D%3D%3D", 400, "BadRequest"),
        (f"{EXTERNAL}/namespaces/shop/no_such_metric", 404, "NotFound"),
        (f"{EXTERNAL}/namespaces/Shop%20Floor/sqs_messages", 400, "BadRequest"),
        (f"{EXTERNAL}/namespaces/shop/%7Bsqs%7D%00%2Fx", 404, "NotFound"),
        (f"{EXTERNAL}/namespaces/shop/%E2%98%83", 404, "NotFound"),
        (f"{EXTERNAL}/namespaces/shop/sqs_messages?labelSelector=" + "a" * 20000, 400, "BadRequest"),
        (f"{EXTERNAL}/namespaces/shop", 404, "NotFound"),
        ("/api", 404, "NotFound"),
        ("/%ZZ", 404, "NotFound"),
    ],
)
def test_bad_input_is_a_status_never_500(
    server: ServerThread, pki: Pki, path: str, code: int, reason: str
) -> None:
    assert_status(aggregator_get(server, pki, path), code, reason)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_wrong_methods_are_405_status(server: ServerThread, pki: Pki, method: str) -> None:
    headers = aggregator_headers()
    reply = request(
        server.port, f"{EXTERNAL}/namespaces/shop/sqs_messages", pki.context(pki.aggregator), headers, method
    )
    assert_status(reply, 405, "MethodNotAllowed")


def test_forged_remote_user_without_proxy_certificate_is_ignored(server: ServerThread, pki: Pki) -> None:
    # GIVEN no client certificate but X-Remote-User headers WHEN asking THEN anonymous: 401
    reply = request(server.port, EXTERNAL, pki.context(), aggregator_headers())
    assert_status(reply, 401, "Unauthorized")


def test_proxy_certificate_with_a_cn_not_allowed_is_rejected(server: ServerThread, pki: Pki) -> None:
    impostor = pki.proxy_ca.issue("someone-else")
    assert_status(
        request(server.port, EXTERNAL, pki.context(impostor), aggregator_headers()), 401, "Unauthorized"
    )


def test_proxy_certificate_without_client_auth_usage_is_rejected(server: ServerThread, pki: Pki) -> None:
    # GIVEN a proxy-CA certificate for server use only WHEN presented THEN the handshake or request fails
    server_only = pki.proxy_ca.issue("front-proxy-client", usages=(ExtendedKeyUsageOID.SERVER_AUTH,))
    try:
        reply = request(server.port, EXTERNAL, pki.context(server_only), aggregator_headers())
    except (ssl.SSLError, ConnectionError):
        return
    assert_status(reply, 401, "Unauthorized")


def test_client_ca_certificate_authenticates_as_its_cn(server: ServerThread, pki: Pki) -> None:
    user = pki.client_ca.issue("jane", ("developers",))
    reply = request(server.port, EXTERNAL, pki.context(user), [("X-Remote-User", "admin")])
    assert reply.status == 200


def test_metrics_port_exposes_prometheus_text(server: ServerThread, pki: Pki) -> None:
    aggregator_get(server, pki, f"{EXTERNAL}/namespaces/shop/sqs_messages")
    reply = request(server.server.metrics_port, "/metrics", None)
    text = reply.body.decode()
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    assert 'tidegauge_http_requests_total{code="200",kind="external_metric"}' in text
    assert (
        'tidegauge_http_request_duration_seconds_bucket{code="200",kind="external_metric",le="+Inf"}' in text
    )
    assert 'tidegauge_authentication_total{method="front-proxy",outcome="authenticated"}' in text
    assert 'tidegauge_metric_newest_sample_age_seconds{metric="sqs_messages"}' in text
