"""kubectl as a real client of the server: client-certificate kubeconfig, URL-encoded selectors."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.custom_metrics import CUSTOM, CUSTOM_V1BETA1, custom_config, custom_samples
from tests.support.server_harness import Pki, ServerThread, seed, server_config, settings_for
from tidegauge.localredis import RedisServer
from tidegauge.model import Sample

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl")


@pytest.fixture
def server(pki: Pki, redis_server: RedisServer) -> Iterator[ServerThread]:
    now = time.time()
    samples = [
        Sample.of("sqs_messages", {"queue": queue, "state": "visible"}, value, now)
        for queue, value in [("orders", 10), ("payments", 20), ("refunds", 40)]
    ]
    seed(redis_server.url, samples, flush=True)
    with ServerThread(settings_for(pki), server_config(redis_server.url)) as thread:
        yield thread


def write_kubeconfig(pki: Pki, port: int) -> str:
    admin = pki.client_ca.issue("admin", ("system:masters",))

    def encoded(data: bytes) -> str:
        return base64.b64encode(data).decode()

    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "tidegauge",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": encoded(pki.server_ca.pem),
                },
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": encoded(admin.certificate_pem),
                    "client-key-data": encoded(admin.key_pem),
                },
            }
        ],
        "contexts": [{"name": "tidegauge", "context": {"cluster": "tidegauge", "user": "admin"}}],
        "current-context": "tidegauge",
    }
    path = pki.directory / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def kubectl_get_raw(pki: Pki, port: int, path: str) -> Any:
    """``kubectl get --raw path`` as a client-certificate user of the server on ``port``: its JSON."""
    assert KUBECTL is not None
    kubeconfig = write_kubeconfig(pki, port)
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "get", "--raw", path],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_raw_with_an_encoded_in_selector(server: ServerThread, pki: Pki) -> None:
    # GIVEN a kubeconfig with a client certificate the server's client CA issued, and three queues
    path = (
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/sqs_messages"
        "?labelSelector=queue+in+%28orders%2Cpayments%29"
    )
    # WHEN kubectl asks THEN it gets exactly the two selected series
    document = kubectl_get_raw(pki, server.port, path)
    assert document["kind"] == "ExternalMetricValueList"
    assert [(i["metricLabels"]["queue"], i["value"]) for i in document["items"]] == [
        ("orders", "10"),
        ("payments", "20"),
    ]


@pytest.fixture
def custom_server(pki: Pki, redis_server: RedisServer) -> Iterator[ServerThread]:
    now = time.time()
    seed(redis_server.url, custom_samples(now - 1, now), flush=True)
    with ServerThread(settings_for(pki), custom_config(redis_server.url)) as thread:
        yield thread


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
@pytest.mark.parametrize(
    ("path", "kind", "value"),
    [
        (f"{CUSTOM}/namespaces/shop/deployments.apps/my-app/http_requests_total", "Deployment", "1250"),
        (
            f"{CUSTOM_V1BETA1}/namespaces/shop/deployments.apps/my-app/http_requests_total",
            "Deployment",
            "1250",
        ),
        (
            f"{CUSTOM}/namespaces/shop/deployments.apps/orders-worker/sqs_messages"
            "?metricLabelSelector=state+in+%28visible%29",
            "Deployment",
            "1k",
        ),
        (f"{CUSTOM}/namespaces/shop/metrics/sqs_messages", "Namespace", "1250"),
        (f"{CUSTOM_V1BETA1}/namespaces/shop/metrics/sqs_messages", "Namespace", "1250"),
    ],
)
def test_kubectl_get_raw_on_custom_metrics_paths(
    custom_server: ServerThread, pki: Pki, path: str, kind: str, value: str
) -> None:
    # GIVEN kubectl with a client certificate WHEN it gets an Object or Namespace metric THEN one item
    document = kubectl_get_raw(pki, custom_server.port, path)
    assert document["kind"] == "MetricValueList"
    (item,) = document["items"]
    assert (item["describedObject"]["kind"], item["value"]) == (kind, value)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_raw_on_custom_discovery(custom_server: ServerThread, pki: Pki) -> None:
    names = [resource["name"] for resource in kubectl_get_raw(pki, custom_server.port, CUSTOM)["resources"]]
    assert "deployments.apps/http_requests_total" in names
