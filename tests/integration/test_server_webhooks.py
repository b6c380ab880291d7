"""TokenReview, SubjectAccessReview and the authentication ConfigMap, against a fake kube-apiserver."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube_fake import SERVICE_ACCOUNT_TOKEN, FakeKubeApiServer
from tests.support.log_event import log_event
from tests.support.pki import CertificateAuthority, Issued
from tests.support.server_harness import (
    Pki,
    ServerThread,
    aggregator_headers,
    orders_sample,
    request,
    seed,
    server_config,
    settings_for,
    webhook_settings,
)
from tidegauge.localredis import RedisServer
from tidegauge.server.settings import AuthenticationFlags

pytestmark = pytest.mark.integration

EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
METRIC_PATH = f"{EXTERNAL}/namespaces/shop/sqs_messages"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    fake = FakeKubeApiServer(tmp_path).start()
    fake.tokens["good-token"] = {"username": "jane", "uid": "42", "groups": ["developers"]}
    fake.allow = lambda spec: spec["user"] == "jane" or spec["user"] == "bob"
    yield fake
    fake.stop()


@pytest.fixture
def seeded(redis_server: RedisServer) -> str:
    return seed(redis_server.url, [orders_sample()])


@pytest.fixture
def server(pki: Pki, kube: FakeKubeApiServer, seeded: str) -> Iterator[ServerThread]:
    settings = webhook_settings(pki, kube.write_kubeconfig())
    with ServerThread(settings, server_config(seeded)) as thread:
        yield thread


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def test_bearer_token_is_reviewed_once_then_cached(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    # GIVEN a valid token WHEN used twice THEN one TokenReview and one SubjectAccessReview serve both
    for _ in range(2):
        assert request(server.port, METRIC_PATH, pki.context(), bearer("good-token")).status == 200
    assert kube.token_reviews == ["good-token"]
    (spec,) = kube.access_reviews
    assert spec["user"] == "jane"
    assert spec["uid"] == "42"
    assert spec["groups"] == ["developers", "system:authenticated"]
    assert kube.caller_tokens == {f"Bearer {SERVICE_ACCOUNT_TOKEN}"}


def test_rejected_token_is_401_and_the_rejection_cached(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    for _ in range(2):
        reply = request(server.port, METRIC_PATH, pki.context(), bearer("stolen"))
        assert reply.status == 401
        assert reply.json()["reason"] == "Unauthorized"
    assert kube.token_reviews == ["stolen"]


def test_access_review_carries_resource_attributes_and_user_extra(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    headers = [
        ("X-Remote-User", "bob"),
        ("X-Remote-Group", "team"),
        ("X-Remote-Extra-Scopes", "read"),
        ("X-Remote-Extra-Acme.com%2fProject", "p1"),
    ]
    assert request(server.port, METRIC_PATH, pki.context(pki.aggregator), headers).status == 200
    (spec,) = kube.access_reviews
    assert spec == {
        "user": "bob",
        "groups": ["team", "system:authenticated"],
        "extra": {"acme.com/project": ["p1"], "scopes": ["read"]},
        "resourceAttributes": {
            "namespace": "shop",
            "verb": "list",
            "group": "external.metrics.k8s.io",
            "version": "v1beta1",
            "resource": "sqs_messages",
        },
    }


def test_denied_access_is_a_403_status_and_the_denial_cached(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    user = pki.client_ca.issue("mallory")
    for _ in range(2):
        reply = request(server.port, METRIC_PATH, pki.context(user))
        assert reply.status == 403
        assert reply.json()["reason"] == "Forbidden"
    message = reply.json()["message"]
    assert (
        'User "mallory" cannot list resource "sqs_messages" in API group "external.metrics.k8s.io"' in message
    )
    assert len(kube.access_reviews) == 1


def test_discovery_without_groups_is_a_non_resource_review(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    # GIVEN the aggregator's legacy discovery (no groups) WHEN it asks THEN a non-resource review decides
    kube.allow = lambda spec: spec["user"] == "system:kube-aggregator"
    headers = aggregator_headers(groups=())
    assert request(server.port, EXTERNAL, pki.context(pki.aggregator), headers).status == 200
    (spec,) = kube.access_reviews
    assert spec["nonResourceAttributes"] == {"path": EXTERNAL, "verb": "get"}


def test_system_masters_needs_no_review(server: ServerThread, pki: Pki, kube: FakeKubeApiServer) -> None:
    assert request(server.port, EXTERNAL, pki.context(pki.aggregator), aggregator_headers()).status == 200
    assert kube.access_reviews == []


def test_authorizer_outage_is_503_and_not_cached(
    server: ServerThread, pki: Pki, kube: FakeKubeApiServer
) -> None:
    kube.failing = True
    user = pki.client_ca.issue("jane")
    reply = request(server.port, METRIC_PATH, pki.context(user))
    assert reply.status == 503
    assert "etcd" not in reply.body.decode()
    kube.failing = False
    assert request(server.port, METRIC_PATH, pki.context(user)).status == 200


def _config_map(client_ca: CertificateAuthority, proxy_ca: CertificateAuthority) -> dict[str, Any]:
    return {
        "client-ca-file": client_ca.pem.decode(),
        "requestheader-client-ca-file": proxy_ca.pem.decode(),
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }


def accepted(server: ServerThread, pki: Pki, certificate: Issued) -> bool:
    """Whether ``certificate`` authenticates; a handshake refused by the old CA set counts as no."""
    try:
        return request(server.port, EXTERNAL, pki.context(certificate), aggregator_headers()).status == 200
    except OSError:
        return False


def test_cas_come_from_the_config_map_and_rotate(pki: Pki, kube: FakeKubeApiServer, seeded: str) -> None:
    # GIVEN no CA flags, only the cluster's ConfigMap
    kube.config_map = _config_map(pki.client_ca, pki.proxy_ca)
    kubeconfig = kube.write_kubeconfig()
    flags = AuthenticationFlags(authentication_kubeconfig=kubeconfig)
    settings = settings_for(pki, authentication=flags, authentication_refresh_seconds=0.1)
    with ServerThread(settings, server_config(seeded)) as server:
        assert request(server.port, EXTERNAL, pki.context(pki.aggregator), aggregator_headers()).status == 200
        # WHEN the front-proxy CA rotates in the ConfigMap THEN the new proxy certificate is accepted
        new_ca = CertificateAuthority("proxy-ca-2")
        new_proxy = new_ca.issue("front-proxy-client")
        with log_event("tidegauge.server.runner", "authentication config updated") as updated:
            kube.config_map = _config_map(pki.client_ca, new_ca)
            assert updated.wait(10), "rotated CA not picked up"
        assert accepted(server, pki, new_proxy)
        # AND the old proxy certificate no longer passes the handshake of a new connection (a fresh
        # TLS context trusts exactly the configured CAs), as a certificate of an unknown CA
        with pytest.raises((ConnectionError, ssl.SSLError)):
            request(server.port, EXTERNAL, pki.context(pki.aggregator), aggregator_headers())
