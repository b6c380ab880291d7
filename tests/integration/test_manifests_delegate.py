"""The delegate-to-keda overlay: renders with kubectl's kustomize, validates, and wires delegation right."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_manifests import K8S, kubectl, only, render, the_container, validate
from tests.support.pki import CertificateAuthority
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
    result = subprocess.run(
        [kubectl(), "kustomize", str(tmp_path / "k8s" / "overlays" / "delegate-to-keda")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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
    for variable in container["env"]:
        if "value" in variable:
            monkeypatch.setenv(variable["name"], variable["value"])
    parser = argparse.ArgumentParser(prog="tidegauge serve", exit_on_error=False)
    command.add_arguments(parser)
    delegate = command.settings_from(parser.parse_args(container["args"][1:])).delegate
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


def test_tidegauge_may_read_external_metrics_as_keda_authorizes_it(objects: list[dict[str, Any]]) -> None:
    # KEDA's metrics server authorizes the forwarded request by SubjectAccessReview of tidegauge's identity
    binding = only(objects, "ClusterRoleBinding", "tidegauge-keda-external-metrics-reader")
    assert TIDEGAUGE_SA in binding["subjects"]
    role = only(objects, "ClusterRole", binding["roleRef"]["name"])
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["external.metrics.k8s.io"]
    assert {"get", "list"} <= set(rule["verbs"])
