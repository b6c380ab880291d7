"""The overlays beside KEDA (delegate-to-keda, keda-scaler) and the example ScaledObject: they render with
kubectl's kustomize, validate, and wire delegation and the external scaler as tidegauge serve reads them."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_manifests import K8S, kustomize, only, render, the_container, validate
from tests.support.pki import CertificateAuthority
from tidegauge.keda.trigger import parse_trigger
from tidegauge.server import command

KEDA_METRICS_SERVER = "https://keda-operator-metrics-apiserver.keda.svc:443"
TIDEGAUGE_SA = {"kind": "ServiceAccount", "name": "tidegauge", "namespace": "tidegauge"}


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of k8s/ whose delegate-to-keda overlay has KEDA's CA, as the migration guide copies it."""
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("certs", "keda-ca.crt"))
    directory = copy / "overlays" / "delegate-to-keda"
    (directory / "keda-ca.crt").write_bytes(CertificateAuthority("keda-ca").pem)
    return directory


@pytest.fixture(scope="module")
def objects(overlay: Path) -> list[dict[str, Any]]:
    return render(overlay)


def test_every_rendered_object_validates_against_the_schemas(objects: list[dict[str, Any]]) -> None:
    assert len(objects) >= 14
    for document in objects:
        validate(document)


def test_overlay_does_not_build_before_keda_ca_is_copied(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s", ignore=shutil.ignore_patterns("keda-ca.crt"))
    result = kustomize(tmp_path / "k8s" / "overlays" / "delegate-to-keda")
    assert result.returncode != 0
    assert "keda-ca.crt" in result.stderr


def test_external_api_service_points_at_tidegauge(objects: list[dict[str, Any]]) -> None:
    api_service = only(objects, "APIService", "v1beta1.external.metrics.k8s.io")
    assert api_service["spec"]["service"] == {"name": "tidegauge", "namespace": "tidegauge", "port": 443}
    assert "cert-manager.io/inject-ca-from" in api_service["metadata"]["annotations"]


def test_server_delegates_to_keda_verifying_it_with_the_mounted_ca(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = only(objects, "Deployment", "tidegauge")
    container = the_container(deployment)
    # GIVEN the container's environment WHEN `tidegauge serve` reads its args THEN it delegates to KEDA
    delegate = serve_settings(container, monkeypatch).delegate
    assert delegate is not None
    assert delegate.url == KEDA_METRICS_SERVER
    # AND the CA file is the generated ConfigMap's ca.crt, mounted where the setting points
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert delegate.ca_file == f"{mounts['delegate-ca']}/ca.crt"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    config_map = only(objects, "ConfigMap", volumes["delegate-ca"]["configMap"]["name"])
    assert config_map["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    # AND the token is the pod's ServiceAccount token, which is mounted
    assert delegate.token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def serve_settings(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """What `tidegauge serve` makes of the container's args and environment."""
    for variable in container.get("env", []):
        if "value" in variable:
            monkeypatch.setenv(variable["name"], variable["value"])
    parser = argparse.ArgumentParser(prog="tidegauge serve", exit_on_error=False)
    command.add_arguments(parser)
    return command.settings_from(parser.parse_args(container["args"][1:]))


def test_tidegauge_may_read_external_metrics_as_keda_authorizes_it(objects: list[dict[str, Any]]) -> None:
    # KEDA's metrics server authorizes the forwarded request by SubjectAccessReview of tidegauge's identity
    binding = only(objects, "ClusterRoleBinding", "tidegauge-keda-external-metrics-reader")
    assert TIDEGAUGE_SA in binding["subjects"]
    role = only(objects, "ClusterRole", binding["roleRef"]["name"])
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["external.metrics.k8s.io"]
    assert {"get", "list"} <= set(rule["verbs"])


# --- route 3: the external scaler ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def scaler_objects() -> list[dict[str, Any]]:
    return render(K8S / "overlays" / "keda-scaler")


def test_scaler_overlay_validates_and_leaves_the_external_api_service_to_keda(
    scaler_objects: list[dict[str, Any]],
) -> None:
    assert len(scaler_objects) >= 14
    for document in scaler_objects:
        validate(document)
    # KEDA keeps v1beta1.external.metrics.k8s.io in this route; the custom metrics group, which KEDA
    # does not serve, stays tidegauge's
    registered = sorted(o["metadata"]["name"] for o in scaler_objects if o["kind"] == "APIService")
    assert registered == ["v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"]


def test_scaler_port_is_served_with_client_certificates_of_the_serving_ca(
    scaler_objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = only(scaler_objects, "Deployment", "tidegauge")
    container = the_container(deployment)
    scaler = serve_settings(container, monkeypatch).keda_scaler
    assert scaler is not None
    assert scaler.port == 9443
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert scaler.client_ca_file == f"{mounts['serving-cert']}/ca.crt"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == 9443
    # AND the Service and the NetworkPolicy let KEDA reach it
    service_ports = {p["name"]: p for p in only(scaler_objects, "Service", "tidegauge")["spec"]["ports"]}
    assert (service_ports["grpc"]["port"], service_ports["grpc"]["targetPort"]) == (9443, "grpc")
    ingress = only(scaler_objects, "NetworkPolicy", "tidegauge")["spec"]["ingress"]
    assert any({"port": 9443, "protocol": "TCP"} in rule.get("ports", []) for rule in ingress)
    # AND KEDA's client certificate comes from the CA that issued the serving certificate
    client = only(scaler_objects, "Certificate", "tidegauge-keda-client")
    serving = only(scaler_objects, "Certificate", "tidegauge-serving-cert")
    assert client["spec"]["issuerRef"] == serving["spec"]["issuerRef"]
    assert "client auth" in client["spec"]["usages"]


def test_example_scaled_object_points_at_the_scaler_with_usable_metadata(
    scaler_objects: list[dict[str, Any]],
) -> None:
    documents = list(yaml.safe_load_all((K8S / "examples" / "scaledobject-sqs-orders.yaml").read_text()))
    authentication, scaled_object = documents
    (trigger,) = scaled_object["spec"]["triggers"]
    assert trigger["type"] == "external-push"
    # GIVEN the trigger's metadata WHEN the scaler parses it THEN it is usable
    parsed = parse_trigger(scaled_object["metadata"]["namespace"], trigger["metadata"])
    assert (parsed.metric, parsed.target, parsed.average) == ("sqs_messages", 100.0, True)
    assert trigger["metricType"] == "AverageValue"
    # AND the address is the Service's grpc port under a name the serving certificate holds
    host, port = trigger["metadata"]["scalerAddress"].rsplit(":", 1)
    serving = only(scaler_objects, "Certificate", "tidegauge-serving-cert")
    assert host in serving["spec"]["dnsNames"]
    service_ports = {p["port"] for p in only(scaler_objects, "Service", "tidegauge")["spec"]["ports"]}
    assert int(port) in service_ports
    # AND the TLS parameters KEDA expects come from the client certificate's Secret
    assert trigger["authenticationRef"]["name"] == authentication["metadata"]["name"]
    parameters = {ref["parameter"]: ref for ref in authentication["spec"]["secretTargetRef"]}
    assert set(parameters) == {"caCert", "tlsClientCert", "tlsClientKey"}
    client = only(scaler_objects, "Certificate", "tidegauge-keda-client")
    assert {ref["name"] for ref in parameters.values()} == {client["spec"]["secretName"]}
