"""``tidegauge doctor`` against a kube-apiserver served over real HTTPS, each planted fault on its own.

The installation is the fake kube-apiserver's store (APIService, Service, EndpointSlice, Pod, HPA,
Events, SubjectAccessReview answers, the service proxy's /readyz and a real server's /metrics text)
plus a loopback TLS listener presenting the pod's serving certificate (``--pod-address``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster_objects import external_metric, hpa
from tests.support.doctor_env import (
    APISERVICE_PATH,
    CUSTOM_APISERVICE_PATH,
    HPA_PATH,
    METRIC_PATH,
    METRICS_PROXY,
    SLICE_PATH,
    Installation,
    apiservice,
    endpoint_slice,
    install_healthy,
    metrics_exposition,
    tls_listener,
)
from tests.support.kube_fake import FakeKubeApiServer
from tidegauge.cli import main


@pytest.fixture
def installation(kube: FakeKubeApiServer) -> Installation:
    return install_healthy(kube)


def doctor(
    kube: FakeKubeApiServer,
    installation: Installation,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    certificate: tuple[bytes, bytes] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``tidegauge doctor -o json`` with the pod's listener; the exit code and the findings."""
    served = certificate or installation.authority.serving()
    with tls_listener(tmp_path, *served) as address:
        code = main(
            [
                "doctor",
                "--kubeconfig",
                kube.write_kubeconfig(),
                "-n",
                "shop",
                "--pod-address",
                address,
                "-o",
                "json",
            ]
        )
    report = json.loads(capsys.readouterr().out)
    assert report["exitCode"] == code
    return code, report["findings"]


def failures(findings: list[dict[str, Any]], status: str = "FAIL") -> list[dict[str, Any]]:
    return [f for f in findings if f["status"] == status]


def test_a_healthy_installation_passes_every_check(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a healthy installation
    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN everything passes, and each part of the chain was looked at
    assert code == 0, [f for f in findings if f["status"] != "PASS"]
    checks = " | ".join(f["check"] for f in findings)
    for part in (
        "APIService v1beta1.external.metrics.k8s.io",
        "APIService v1beta2.custom.metrics.k8s.io",
        "caBundle",
        "endpoints",
        "container port",
        "DNS SAN",
        "validity",
        "key",
        "RBAC system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "RBAC system:serviceaccount:tidegauge:tidegauge may get core/configmaps",
        "GET /apis/external.metrics.k8s.io/v1beta1",
        "Redis from the server",
        "newest sample of qps",
        "HPA shop/worker metric qps",
        "HPA shop/worker ScalingActive",
    ):
        assert part in checks


def test_the_certificate_is_read_through_the_api_servers_pod_port_forward(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a healthy installation whose pod port-forward (the WebSocket subresource) reaches the
    # serving listener, and no --pod-address
    with tls_listener(tmp_path, *installation.authority.serving()) as address:
        host, port = address.rsplit(":", 1)
        kube.port_forward_to = (host, int(port))

        # WHEN doctor runs
        code = main(["doctor", "--kubeconfig", kube.write_kubeconfig(), "-n", "shop", "-o", "json"])
    findings = json.loads(capsys.readouterr().out)["findings"]

    # THEN it port-forwarded to the ready pod's secure port (one handshake to read, one to verify)
    assert kube.port_forwards == [("tidegauge", "tidegauge-7d9f-abcde", 6443)] * 2
    assert code == 0, [f for f in findings if f["status"] != "PASS"]
    assert any(f["check"].endswith("chains to the external.metrics.k8s.io caBundle") for f in findings)


def test_a_cabundle_wrong_by_one_character_fails_with_the_patch(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a caBundle with one base64 character changed inside the certificate's signature
    bundle = installation.ca_bundle()
    position = len(bundle) - 60
    wrong = bundle[:position] + ("A" if bundle[position] != "A" else "B") + bundle[position + 1 :]
    kube.put(APISERVICE_PATH, apiservice(wrong))

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN the caBundle is reported failing, with the command that replaces it
    assert code == 2
    [problem] = [f for f in failures(findings) if "caBundle" in f["check"]]
    assert "kubectl patch apiservice v1beta1.external.metrics.k8s.io" in problem["fix"]


def test_a_cabundle_not_on_one_line_fails(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a caBundle wrapped at 64 characters, as `base64` without -w0 writes it
    bundle = installation.ca_bundle()
    kube.put(APISERVICE_PATH, apiservice("\n".join(bundle[i : i + 64] for i in range(0, len(bundle), 64))))

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN it says the base64 is not on one line
    assert code == 2
    assert any("not on one line" in f["saw"] for f in failures(findings))


def test_a_certificate_without_the_service_san_fails(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a serving certificate for another name
    wrong_name = installation.authority.serving(hosts=("tidegauge.default.svc",))

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys, certificate=wrong_name)

    # THEN the SAN check fails naming what the certificate has and what it needs
    assert code == 2
    [problem] = failures(findings)
    assert "DNS SAN" in problem["check"]
    assert "tidegauge.default.svc" in problem["saw"]
    assert "tidegauge.tidegauge.svc" in problem["fix"]


def test_an_expired_certificate_fails_and_one_expiring_soon_warns(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a serving certificate that expired two days ago
    expired = installation.authority.serving(valid_days=-2)

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys, certificate=expired)

    # THEN validity fails (and the chain does not verify: the aggregator refuses it too)
    assert code == 2
    checks = {f["check"].rsplit(" ", 1)[-1]: f for f in failures(findings)}
    assert "expired" in checks["validity"]["saw"]
    assert "expired" in checks["caBundle"]["saw"]

    # AND one valid for ten more days only warns
    code, findings = doctor(
        kube, installation, tmp_path, capsys, certificate=installation.authority.serving(valid_days=10)
    )
    assert code == 1
    [warning] = failures(findings, "WARN")
    assert "validity" in warning["check"]


def test_a_weak_key_is_reported(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a serving certificate on an RSA 1024 key
    weak = installation.authority.serving(rsa_bits=1024)

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys, certificate=weak)

    # THEN the key check warns about it
    assert code == 1
    [warning] = failures(findings, "WARN")
    assert "RSA 1024" in warning["saw"]


def test_keda_owning_the_apiservice_is_named_with_the_docs(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the external metrics APIService registered by KEDA
    kube.put(
        APISERVICE_PATH,
        apiservice(installation.ca_bundle(), service=("keda", "keda-operator-metrics-apiserver")),
    )

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN it names KEDA as the owner and points at the docs
    assert code == 2
    [problem] = failures(findings)
    assert "owned by KEDA" in problem["saw"]
    assert "KEDA" in problem["fix"]


def test_missing_rbac_is_found_by_subject_access_review(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no RoleBinding to extension-apiserver-authentication-reader
    installation.allow["configmaps"] = False

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN exactly that permission fails, with the manifest that grants it
    assert code == 2
    [problem] = failures(findings)
    assert "configmaps kube-system/extension-apiserver-authentication" in problem["check"]
    assert "role-binding-auth-reader.yaml" in problem["fix"]
    reviews = [r for r in kube.access_reviews if r.get("user") == "system:serviceaccount:tidegauge:tidegauge"]
    assert len(reviews) == 3


def test_no_ready_endpoint_fails_with_how_to_look(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the only endpoint not ready, and the aggregator saying MissingEndpoints
    kube.put(SLICE_PATH, endpoint_slice(ready=False))
    kube.put(
        APISERVICE_PATH, apiservice(installation.ca_bundle(), available=False, reason="MissingEndpoints")
    )

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN both are reported with commands to look at the pods
    assert code == 2
    by_check = {f["check"]: f for f in failures(findings)}
    assert "no ready endpoint" in by_check["Service tidegauge/tidegauge endpoints"]["saw"]
    assert "MissingEndpoints" in by_check["APIService v1beta1.external.metrics.k8s.io Available"]["saw"]
    assert "kubectl -n tidegauge get pods" in by_check["Service tidegauge/tidegauge endpoints"]["fix"]


def test_a_stale_metric_fails_the_hpa_check_and_warns_on_its_age(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the server refusing qps as stale, and its newest sample 900 s old
    message = (
        'external metric "qps" has no fresh series matching the selector: the newest is 900 s old (stale)'
    )
    kube.failures[METRIC_PATH] = (404, "NotFound", message)
    kube.texts[METRICS_PROXY] = metrics_exposition({"qps": 900})

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN the HPA's metric fails with the collectors as the fix, and the age warns
    assert code == 2
    hpa_problem = next(f for f in failures(findings) if f["check"].startswith("HPA shop/worker metric qps"))
    assert "stale" in hpa_problem["saw"]
    assert "tidegauge status" in hpa_problem["fix"]
    assert any(f["check"] == "newest sample of qps" for f in failures(findings, "WARN"))


def test_a_selector_matching_nothing_fails_with_how_to_list_the_series(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the server finding no series for the HPA's selector
    message = "external metric 'qps' has no series matching the selector 'queue=orders'"
    kube.failures[METRIC_PATH] = (404, "NotFound", message)

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN the HPA's metric fails, and the fix says how to see the series
    assert code == 2
    problem = next(f for f in failures(findings) if f["check"].startswith("HPA shop/worker metric qps"))
    assert "tidegauge metrics qps" in problem["fix"]
    assert (METRIC_PATH, {"labelSelector": "queue=orders"}) in kube.requests


def test_the_custom_metrics_apiservice_is_checked_like_the_external_one(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the custom metrics APIService registered for tidegauge too, with a caBundle that is not base64,
    # and the HPA controller not allowed to read custom metrics
    custom = apiservice("not*base64", group_version=("custom.metrics.k8s.io", "v1beta2"))
    kube.put(CUSTOM_APISERVICE_PATH, custom)
    installation.allow["*"] = True
    kube.allow = lambda spec: spec["resourceAttributes"].get("group") != "custom.metrics.k8s.io"

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN the custom group gets the same checks: its caBundle and the HPA controller's access fail
    assert code == 2
    checks = {f["check"] for f in failures(findings)}
    assert "APIService v1beta2.custom.metrics.k8s.io caBundle" in checks
    rbac = "RBAC system:serviceaccount:kube-system:horizontal-pod-autoscaler may list custom.metrics.k8s.io/*"
    assert rbac in checks
    assert checks <= {"APIService v1beta2.custom.metrics.k8s.io caBundle", rbac}


def test_an_hpa_that_is_not_scaling_is_explained_in_plain_words(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an HPA whose ScalingActive condition is False: it could not read its metric
    conditions = [
        {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "ok"},
        {
            "type": "ScalingActive",
            "status": "False",
            "reason": "FailedGetExternalMetric",
            "message": "the HPA was unable to compute the replica count: unable to get external metric",
        },
    ]
    metric = external_metric("qps", {"queue": "orders"}, "AverageValue", "2222m")
    kube.put(HPA_PATH, hpa("worker", [metric], conditions=conditions))

    # WHEN doctor runs
    code, findings = doctor(kube, installation, tmp_path, capsys)

    # THEN the condition fails with what it means and where to look
    assert code == 2
    [problem] = failures(findings)
    assert problem["check"] == "HPA shop/worker ScalingActive"
    assert "holds the replica count" in problem["saw"]
    assert "tidegauge explain hpa worker -n shop" in problem["fix"]


def test_kubectl_tidegauge_doctor_runs_as_a_kubectl_plugin(
    kube: FakeKubeApiServer, installation: Installation, tmp_path: Path
) -> None:
    # GIVEN kubectl with the kubectl-tidegauge plugin on PATH, and a healthy installation
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    kubeconfig = kube.write_kubeconfig()
    with tls_listener(tmp_path, *installation.authority.serving()) as address:
        # WHEN `kubectl tidegauge doctor` runs
        result = subprocess.run(
            [
                "kubectl",
                "tidegauge",
                "doctor",
                "--kubeconfig",
                kubeconfig,
                "-n",
                "shop",
                "--pod-address",
                address,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    # THEN it prints the findings and exits 0
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 warnings, 0 failures" in result.stdout
