"""SubjectAccessReviews of custom metrics reads, as k8s.io/apiserver's RequestInfoFactory describes them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.custom_metrics import CUSTOM, custom_config, custom_samples
from tests.support.kube_fake import FakeKubeApiServer
from tests.support.server_harness import HPA_ACCEPT, Pki, ServerThread, request, seed, webhook_settings
from tidegauge.localredis import RedisServer

pytestmark = pytest.mark.integration

HPA = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    fake = FakeKubeApiServer(tmp_path).start()
    fake.allow = lambda spec: spec["user"] == HPA
    yield fake
    fake.stop()


@pytest.fixture
def server(pki: Pki, kube: FakeKubeApiServer, redis_server: RedisServer) -> Iterator[ServerThread]:
    now = time.time()
    seed(redis_server.url, custom_samples(now - 1, now), flush=True)
    settings = webhook_settings(pki, kube.write_kubeconfig())
    with ServerThread(settings, custom_config(redis_server.url)) as thread:
        yield thread


def as_user(server: ServerThread, pki: Pki, user: str, path: str) -> int:
    headers = [("X-Remote-User", user), ("X-Remote-Group", "system:serviceaccounts"), ("Accept", HPA_ACCEPT)]
    return request(server.port, path, pki.context(pki.aggregator), headers).status


def test_an_object_read_is_get_of_the_resource_named_with_the_metric_as_subresource(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    # GIVEN the HPA's identity WHEN it reads Deployment my-app's metric THEN one review, upstream's shape
    path = f"{CUSTOM}/namespaces/shop/deployments.apps/my-app/http_requests_total"
    assert as_user(server, pki, HPA, path) == 200
    (spec,) = kube.access_reviews
    assert spec["resourceAttributes"] == {
        "namespace": "shop",
        "verb": "get",
        "group": "custom.metrics.k8s.io",
        "version": "v1beta2",
        "resource": "deployments.apps",
        "name": "my-app",
        "subresource": "http_requests_total",
    }


def test_a_namespace_read_is_get_of_resource_metrics_named_by_the_metric(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    assert as_user(server, pki, HPA, f"{CUSTOM}/namespaces/shop/metrics/sqs_messages") == 200
    (spec,) = kube.access_reviews
    assert spec["resourceAttributes"] == {
        "namespace": "shop",
        "verb": "get",
        "group": "custom.metrics.k8s.io",
        "version": "v1beta2",
        "resource": "metrics",
        "name": "sqs_messages",
    }


def test_a_denied_object_read_is_a_403_in_upstream_words(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    reply = request(
        server.port,
        f"{CUSTOM}/namespaces/shop/deployments.apps/my-app/http_requests_total",
        pki.context(pki.aggregator),
        [("X-Remote-User", "mallory")],
    )
    assert reply.status == 403
    assert reply.json()["message"] == (
        'deployments.apps.custom.metrics.k8s.io "my-app" is forbidden: User "mallory" cannot get resource '
        '"deployments.apps/http_requests_total" in API group "custom.metrics.k8s.io" '
        'in the namespace "shop": no RBAC rule'
    )
