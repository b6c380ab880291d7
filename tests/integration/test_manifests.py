"""The Kubernetes manifests: every overlay renders with kubectl's kustomize, every object validates
against the Kubernetes OpenAPI schemas, and the deployment honours ../shared/CONTRACT.md.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import socket
import ssl
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tidegauge.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBERNETES_VERSION = "1.32"
SERVING_DNS_NAMES = {"tidegauge.tidegauge.svc", "tidegauge.tidegauge.svc.cluster.local"}

# cert-manager's CRDs are not in the Kubernetes schemas: the fields these manifests use, from
# cert-manager.io/v1, with anything else rejected so a typo fails here rather than in the cluster.
_ISSUER_REF = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}, "group": {"type": "string"}},
}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
}
CERT_MANAGER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Certificate": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["secretName", "issuerRef"],
                "additionalProperties": False,
                "properties": {
                    "secretName": {"type": "string"},
                    "issuerRef": _ISSUER_REF,
                    "commonName": {"type": "string", "maxLength": 64},
                    "dnsNames": {"type": "array", "items": {"type": "string"}},
                    "isCA": {"type": "boolean"},
                    "duration": {"type": "string", "pattern": r"^[0-9]+(h|m|s)$"},
                    "renewBefore": {"type": "string", "pattern": r"^[0-9]+(h|m|s)$"},
                    "usages": {
                        "type": "array",
                        "items": {
                            "enum": [
                                "signing",
                                "digital signature",
                                "content commitment",
                                "key encipherment",
                                "key agreement",
                                "data encipherment",
                                "cert sign",
                                "crl sign",
                                "encipher only",
                                "decipher only",
                                "any",
                                "server auth",
                                "client auth",
                            ]
                        },
                    },
                    "privateKey": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                            "size": {"type": "integer"},
                            "encoding": {"enum": ["PKCS1", "PKCS8"]},
                            "rotationPolicy": {"enum": ["Never", "Always"]},
                        },
                    },
                },
            },
        },
    },
    "Issuer": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {
                    "selfSigned": {"type": "object", "additionalProperties": False},
                    "ca": {
                        "type": "object",
                        "required": ["secretName"],
                        "additionalProperties": False,
                        "properties": {"secretName": {"type": "string"}},
                    },
                },
            },
        },
    },
}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not on PATH: the manifests cannot be rendered on this machine")
    return path


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )


def render(directory: Path) -> list[dict[str, Any]]:
    result = kustomize(directory)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def generate_certs(overlay: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: generate-certs.sh cannot run on this machine")
    return subprocess.run(
        ["bash", str(overlay / "generate-certs.sh")], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def self_signed_overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of k8s/ whose self-signed overlay has been through generate-certs.sh."""
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("certs", "api-service-ca-bundle.yaml"))
    overlay = copy / "overlays" / "self-signed"
    result = generate_certs(overlay)
    assert result.returncode == 0, result.stderr
    return overlay


@pytest.fixture(scope="module")
def renders(self_signed_overlay: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        "base": render(K8S / "base"),
        "cert-manager": render(K8S / "overlays" / "cert-manager"),
        "self-signed": render(self_signed_overlay),
        "custom-only": render(K8S / "overlays" / "custom-only"),
    }


def only(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def validate(document: dict[str, Any]) -> None:
    if document["apiVersion"].startswith("cert-manager.io/"):
        jsonschema.validate(document, CERT_MANAGER_SCHEMAS[document["kind"]])
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def the_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


# --- rendering and schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["base", "cert-manager", "self-signed", "custom-only"])
def test_every_rendered_object_validates_against_the_schemas(
    variant: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    objects = renders[variant]
    assert len(objects) >= 12
    for document in objects:
        try:
            validate(document)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            pytest.fail(f"{variant}: {document['kind']}/{document['metadata']['name']}: {error.message}")


def test_validation_rejects_a_misspelt_field(renders: dict[str, list[dict[str, Any]]]) -> None:
    # GIVEN the rendered Deployment with a field the schema does not know
    deployment = only(renders["base"], "Deployment")
    deployment = yaml.safe_load(yaml.safe_dump(deployment))
    the_container(deployment)["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": 6443}}
    # THEN validation fails, so the schema check above is not vacuous
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    certificate = yaml.safe_load(
        (K8S / "overlays" / "cert-manager" / "certificate-serving.yaml")
        .read_text()
        .replace("dnsNames", "dnsName")
    )
    with pytest.raises(jsonschema.ValidationError):
        validate(certificate)


def test_every_base_file_holds_one_object_and_is_listed() -> None:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml", "config.yaml"}
    assert files == listed
    for name in files:
        documents = [d for d in yaml.safe_load_all((K8S / "base" / name).read_text()) if d]
        assert len(documents) == 1, f"{name} must hold exactly one resource"


CUSTOM_API_SERVICES = {"v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io"}


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("base", {"v1beta1.external.metrics.k8s.io", *CUSTOM_API_SERVICES}),
        ("cert-manager", {"v1beta1.external.metrics.k8s.io", *CUSTOM_API_SERVICES}),
        ("self-signed", {"v1beta1.external.metrics.k8s.io", *CUSTOM_API_SERVICES}),
        ("custom-only", CUSTOM_API_SERVICES),
    ],
)
def test_api_services_registered_and_trusted_per_overlay(
    variant: str, expected: set[str], renders: dict[str, list[dict[str, Any]]]
) -> None:
    # GIVEN each overlay WHEN rendered THEN exactly its APIServices, each trusting the serving CA
    api_services = {o["metadata"]["name"]: o for o in renders[variant] if o["kind"] == "APIService"}
    assert set(api_services) == expected
    for name, api_service in api_services.items():
        spec = api_service["spec"]
        group_version = f"{spec['version']}.{spec['group']}"
        assert group_version == name
        assert spec["service"] == {"name": "tidegauge", "namespace": "tidegauge", "port": 443}
        assert "insecureSkipTLSVerify" not in spec
        if variant == "base":
            continue
        injected = api_service["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
        if variant == "self-signed":
            assert spec["caBundle"], name
            assert injected is None, name
        else:
            assert injected == "tidegauge/tidegauge-serving-cert", name
    if "v1beta2.custom.metrics.k8s.io" in api_services:
        priorities = {name: api_services[name]["spec"]["versionPriority"] for name in CUSTOM_API_SERVICES}
        assert priorities["v1beta2.custom.metrics.k8s.io"] > priorities["v1beta1.custom.metrics.k8s.io"]


# --- the Deployment ---------------------------------------------------------------------------------


def test_deployment_runs_two_spread_replicas(renders: dict[str, list[dict[str, Any]]]) -> None:
    deployment = only(renders["cert-manager"], "Deployment", "tidegauge")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    anti_affinity = pod.get("affinity", {}).get("podAntiAffinity")
    spread = pod.get("topologySpreadConstraints")
    assert anti_affinity or spread
    selector = spec["selector"]["matchLabels"]
    for term in anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"]:
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"] == selector


@pytest.mark.parametrize("variant", ["base", "cert-manager", "self-signed"])
def test_deployment_is_locked_down(variant: str, renders: dict[str, list[dict[str, Any]]]) -> None:
    deployment = only(renders[variant], "Deployment", "tidegauge")
    pod = deployment["spec"]["template"]["spec"]
    container = the_container(deployment)
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security.get("privileged", False) is False
    assert pod["securityContext"]["runAsUser"] != 0
    assert security["runAsUser"] != 0
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")
    assert not pod.get("hostIPC")
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_probes_use_the_health_paths_over_https(renders: dict[str, list[dict[str, Any]]]) -> None:
    container = the_container(only(renders["cert-manager"], "Deployment", "tidegauge"))
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"https": 6443, "metrics": 9090}
    for probe_name, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        probe = container[probe_name]["httpGet"]
        assert probe["path"] == path
        assert probe["scheme"] == "HTTPS"
        assert ports.get(probe["port"], probe["port"]) == 6443


def test_deployment_arguments_are_accepted_by_tidegauge_serve(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    from tidegauge.server import command

    container = the_container(only(renders["cert-manager"], "Deployment", "tidegauge"))
    assert container["command"] == ["tidegauge"]
    assert container["args"][0] == "serve"
    parser = argparse.ArgumentParser(prog="tidegauge serve", exit_on_error=False)
    command.add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert args.secure_port == 6443
    assert args.metrics_port == 9090
    assert Path(args.tls_cert_file).parent == Path(mounts["serving-cert"])
    assert Path(args.tls_private_key_file).parent == Path(mounts["serving-cert"])
    assert Path(args.config).parent == Path(mounts["config"])


def test_redis_url_comes_from_the_redis_secret_as_a_file(renders: dict[str, list[dict[str, Any]]]) -> None:
    # A mounted Secret is rewritten when it changes (an environment variable is not): no restart to rotate
    from tidegauge.server import command

    deployment = only(renders["cert-manager"], "Deployment", "tidegauge")
    container = the_container(deployment)
    assert not [v for v in container.get("env", []) if v["name"].startswith("TIDEGAUGE_REDIS")]
    parser = argparse.ArgumentParser(prog="tidegauge serve", exit_on_error=False)
    command.add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "redis"]
    assert volume["secret"]["secretName"] == "tidegauge-redis"
    (item,) = volume["secret"]["items"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert Path(args.redis_url_file) == Path(mounts["redis"]) / item["path"]
    assert item["key"] == "url"
    for objects in renders.values():
        assert not [
            o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "tidegauge-redis"
        ]


@pytest.mark.parametrize("variant", ["cert-manager", "self-signed"])
def test_volumes_refer_to_rendered_or_issued_objects(
    variant: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    objects = renders[variant]
    deployment = only(objects, "Deployment", "tidegauge")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    config_map = volumes["config"]["configMap"]["name"]
    only(objects, "ConfigMap", config_map)
    secret_name = volumes["serving-cert"]["secret"]["secretName"]
    if variant == "self-signed":
        secret = only(objects, "Secret", secret_name)
        assert secret["type"] == "kubernetes.io/tls"
        assert {"tls.crt", "tls.key"} <= set(secret["data"])
    else:
        certificate = only(objects, "Certificate", "tidegauge-serving-cert")
        assert certificate["spec"]["secretName"] == secret_name


@pytest.mark.parametrize("variant", ["cert-manager", "self-signed"])
def test_overlays_set_a_tagged_server_image(variant: str, renders: dict[str, list[dict[str, Any]]]) -> None:
    image = the_container(only(renders[variant], "Deployment", "tidegauge"))["image"]
    name, _, tag = image.rpartition(":")
    assert name.endswith("/tidegauge-server")
    assert tag
    assert tag != "latest"


def test_config_map_holds_a_valid_configuration(renders: dict[str, list[dict[str, Any]]]) -> None:
    config_map = only(renders["cert-manager"], "ConfigMap")
    text = config_map["data"]["config.yaml"]
    config = parse_config(text, "config.yaml", environ={"TIDEGAUGE_REDIS_URL": "rediss://redis.example:6379"})
    assert config.redis.url == "rediss://redis.example:6379"
    # the stack's ElastiCache Serverless cache is always cluster mode: no guessing at start
    assert config.redis.cluster is True


# --- Service, APIService, RBAC, network -------------------------------------------------------------


@pytest.mark.parametrize("variant", ["base", "cert-manager", "self-signed"])
def test_api_service_points_at_the_service_port_of_the_server(
    variant: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    objects = renders[variant]
    api_service = only(objects, "APIService", "v1beta1.external.metrics.k8s.io")
    spec = api_service["spec"]
    assert (spec["group"], spec["version"]) == ("external.metrics.k8s.io", "v1beta1")
    assert "insecureSkipTLSVerify" not in spec
    service = only(objects, "Service", spec["service"]["name"])
    assert service["metadata"]["namespace"] == spec["service"]["namespace"]
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == spec["service"]["port"]]
    assert port["name"] == "https"
    deployment = only(objects, "Deployment", "tidegauge")
    assert service["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in the_container(deployment)["ports"]}
    assert container_ports.get(port["targetPort"], port["targetPort"]) == 6443
    metrics = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
    assert metrics
    assert container_ports.get(metrics[0]["targetPort"]) == 9090


def test_rbac_matches_the_contract(renders: dict[str, list[dict[str, Any]]]) -> None:
    objects = renders["cert-manager"]
    server = {"kind": "ServiceAccount", "name": "tidegauge", "namespace": "tidegauge"}
    deployment = only(objects, "Deployment", "tidegauge")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "tidegauge"
    only(objects, "ServiceAccount", "tidegauge")

    def bindings(kind: str, role: str) -> list[dict[str, Any]]:
        return [o for o in objects if o["kind"] == kind and o["roleRef"]["name"] == role]

    (delegator,) = bindings("ClusterRoleBinding", "system:auth-delegator")
    assert delegator["subjects"] == [server]
    (reader,) = bindings("RoleBinding", "extension-apiserver-authentication-reader")
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"]["kind"] == "Role"
    assert reader["subjects"] == [server]
    cluster_role = only(objects, "ClusterRole", "tidegauge-external-metrics-reader")
    assert cluster_role["rules"] == [
        {"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]}
    ]
    (hpa,) = bindings("ClusterRoleBinding", "tidegauge-external-metrics-reader")
    assert hpa["subjects"] == [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]
    custom_role = only(objects, "ClusterRole", "tidegauge-custom-metrics-reader")
    assert custom_role["rules"] == [
        {"apiGroups": ["custom.metrics.k8s.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]}
    ]
    (custom_hpa,) = bindings("ClusterRoleBinding", "tidegauge-custom-metrics-reader")
    assert custom_hpa["subjects"] == hpa["subjects"]
    # Pods metrics: the server lists and watches pods, and may do nothing else with them
    pod_reader = only(objects, "ClusterRole", "tidegauge-pod-reader")
    assert pod_reader["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]
    (pods,) = bindings("ClusterRoleBinding", "tidegauge-pod-reader")
    assert pods["subjects"] == [server]
    # nothing else: the server reads its configuration from the mounted file, not through the API
    roles = [o for o in objects if o["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}]
    assert [o for o in roles if o["metadata"].get("namespace") == "tidegauge"] == []
    assert len(roles) == 8


def test_network_policy_admits_the_aggregator_and_scrapes_and_limits_egress(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    objects = renders["cert-manager"]
    policy = only(objects, "NetworkPolicy", "tidegauge")["spec"]
    deployment = only(objects, "Deployment", "tidegauge")
    assert (
        policy["podSelector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress = {(p["port"], "from" in rule) for rule in policy["ingress"] for p in rule["ports"]}
    assert ingress == {(6443, False), (9090, True)}
    egress_ports = {(p["port"], p.get("protocol", "TCP")) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {(6379, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")}
    # DNS goes only to the cluster DNS pods (or a node-local cache); only the peers outside the cluster
    # whose addresses are not known in general (Redis, the API server) have no destination
    (dns,) = [rule for rule in policy["egress"] if {p["port"] for p in rule["ports"]} == {53}]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        },
        {"ipBlock": {"cidr": "169.254.20.10/32"}},
    ]
    anywhere = {p["port"] for rule in policy["egress"] if "to" not in rule for p in rule["ports"]}
    assert anywhere == {6379, 443, 6443}


def test_pod_disruption_budget_keeps_one_replica(renders: dict[str, list[dict[str, Any]]]) -> None:
    objects = renders["cert-manager"]
    budget = only(objects, "PodDisruptionBudget", "tidegauge")["spec"]
    deployment = only(objects, "Deployment", "tidegauge")
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_namespace_enforces_the_restricted_pod_security_profile(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    namespace = only(renders["cert-manager"], "Namespace", "tidegauge")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- certificates -----------------------------------------------------------------------------------


def test_cert_manager_certificate_names_the_service_and_feeds_the_api_service(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    objects = renders["cert-manager"]
    serving = only(objects, "Certificate", "tidegauge-serving-cert")
    assert set(serving["spec"]["dnsNames"]) >= SERVING_DNS_NAMES
    assert "server auth" in serving["spec"]["usages"]
    issuer = only(objects, "Issuer", serving["spec"]["issuerRef"]["name"])
    ca_certificate = only(objects, "Certificate", "tidegauge-ca")
    assert ca_certificate["spec"]["isCA"] is True
    assert issuer["spec"] == {"ca": {"secretName": ca_certificate["spec"]["secretName"]}}
    only(objects, "Issuer", ca_certificate["spec"]["issuerRef"]["name"])
    api_service = only(objects, "APIService", "v1beta1.external.metrics.k8s.io")
    namespace = serving["metadata"]["namespace"]
    annotation = api_service["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{namespace}/{serving['metadata']['name']}"
    assert "caBundle" not in api_service["spec"]


def test_self_signed_overlay_does_not_build_before_the_script(tmp_path: Path) -> None:
    shutil.copytree(
        K8S, tmp_path / "k8s", ignore=shutil.ignore_patterns("certs", "api-service-ca-bundle.yaml")
    )
    result = kustomize(tmp_path / "k8s" / "overlays" / "self-signed")
    assert result.returncode != 0
    assert "certs/tls.crt" in result.stderr or "api-service-ca-bundle.yaml" in result.stderr


def test_self_signed_script_writes_a_one_line_base64_ca_bundle(
    self_signed_overlay: Path, renders: dict[str, list[dict[str, Any]]]
) -> None:
    patch_text = (self_signed_overlay / "api-service-ca-bundle.yaml").read_text()
    (line,) = [line for line in patch_text.splitlines() if line.strip().startswith("caBundle:")]
    encoded = line.split(":", 1)[1].strip()
    assert encoded
    assert "\n" not in encoded
    assert " " not in encoded
    decoded = base64.b64decode(encoded, validate=True)
    assert decoded == (self_signed_overlay / "certs" / "ca.crt").read_bytes()
    api_service = only(renders["self-signed"], "APIService", "v1beta1.external.metrics.k8s.io")
    assert api_service["spec"]["caBundle"] == encoded


def test_self_signed_serving_certificate_is_signed_by_the_bundle_ca(self_signed_overlay: Path) -> None:
    certs = self_signed_overlay / "certs"
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    serving = x509.load_pem_x509_certificate((certs / "tls.crt").read_bytes())
    serving.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert serving.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    names = set(
        serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    )
    assert names >= SERVING_DNS_NAMES
    usages = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages


def _serve_tls_once(context: ssl.SSLContext, listener: socket.socket) -> None:
    connection, _ = listener.accept()
    with context.wrap_socket(connection, server_side=True) as tls:
        tls.sendall(b"ok")


def test_self_signed_certificate_passes_a_tls_handshake_for_the_service_name(
    self_signed_overlay: Path,
) -> None:
    # GIVEN a TLS server on loopback presenting the generated serving certificate
    certs = self_signed_overlay / "certs"
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certs / "tls.crt", certs / "tls.key")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=_serve_tls_once, args=(server_context, listener), daemon=True)
        thread.start()
        # WHEN a client trusting only the caBundle connects, checking the aggregator's host name
        client_context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname="tidegauge.tidegauge.svc") as tls,
        ):
            # THEN the handshake and the host name check succeed
            assert tls.recv(2) == b"ok"
        thread.join(timeout=10)


def test_self_signed_script_reuses_the_ca(self_signed_overlay: Path) -> None:
    before = (self_signed_overlay / "certs" / "ca.crt").read_bytes()
    bundle_before = (self_signed_overlay / "api-service-ca-bundle.yaml").read_text()
    result = generate_certs(self_signed_overlay)
    assert result.returncode == 0, result.stderr
    assert (self_signed_overlay / "certs" / "ca.crt").read_bytes() == before
    assert (self_signed_overlay / "api-service-ca-bundle.yaml").read_text() == bundle_before


# --- example HPAs -----------------------------------------------------------------------------------


def example_hpas() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((K8S / "examples").glob("hpa-*.yaml")):
        yield path.name, yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("file_name", "metric", "target_type", "selector"),
    [
        ("hpa-sqs-backlog.yaml", "sqs_messages", "AverageValue", {"queue": "orders"}),
        ("hpa-aurora-cpu.yaml", "aurora_cpu_percent", "Value", {"cluster": "prod"}),
        ("hpa-sqs-smoothed.yaml", "sqs_messages", "AverageValue", {"queue": "orders", "state": "visible"}),
    ],
)
def test_example_hpa_scales_on_an_external_metric(
    file_name: str, metric: str, target_type: str, selector: dict[str, str]
) -> None:
    hpa = dict(example_hpas())[file_name]
    validate(hpa)
    assert hpa["apiVersion"] == "autoscaling/v2"
    (spec,) = hpa["spec"]["metrics"]
    assert spec["type"] == "External"
    assert spec["external"]["metric"] == {"name": metric, "selector": {"matchLabels": selector}}
    target = spec["external"]["target"]
    assert target["type"] == target_type
    assert set(target) == {"type", {"AverageValue": "averageValue", "Value": "value"}[target_type]}


@pytest.mark.parametrize(
    ("file_name", "metric", "target"),
    [
        ("hpa-derived-pressure.yaml", "orders_pressure", {"type": "Value", "value": "1"}),
        (
            "hpa-sqs-projected.yaml",
            "orders_backlog_in_a_minute",
            {"type": "AverageValue", "averageValue": "100"},
        ),
    ],
)
def test_example_hpa_of_a_derived_metric_sends_no_selector(
    file_name: str, metric: str, target: dict[str, str]
) -> None:
    # A derived metric is one item without labels (docs/signals.md): a selector would match nothing.
    hpa = dict(example_hpas())[file_name]
    validate(hpa)
    (spec,) = hpa["spec"]["metrics"]
    assert spec["external"]["metric"] == {"name": metric}
    assert spec["external"]["target"] == target


@pytest.mark.parametrize(
    ("file_name", "described", "target_type"),
    [
        (
            "hpa-sqs-backlog-object.yaml",
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orders-worker"},
            "AverageValue",
        ),
        ("hpa-namespace-metric.yaml", {"apiVersion": "v1", "kind": "Namespace", "name": "shop"}, "Value"),
    ],
)
def test_example_hpa_scales_on_an_object_metric_the_base_config_describes(
    file_name: str, described: dict[str, str], target_type: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    # GIVEN the example HPA WHEN validated THEN an Object metric of an object the base config maps series to
    hpa = dict(example_hpas())[file_name]
    validate(hpa)
    (spec,) = hpa["spec"]["metrics"]
    assert spec["type"] == "Object"
    assert spec["object"]["describedObject"] == described
    assert spec["object"]["target"]["type"] == target_type
    text = only(renders["cert-manager"], "ConfigMap")["data"]["config.yaml"]
    config = parse_config(text, "config.yaml", environ={"TIDEGAUGE_REDIS_URL": "redis://127.0.0.1:6379"})
    namespace = hpa["metadata"]["namespace"]
    mapped = {
        (
            rule.resource.kind,
            str(rule.namespace) if rule.namespace else namespace,
            str(rule.name),
            rule.metric,
        )
        for rule in config.objects
    }
    assert (described["kind"], namespace, described["name"], spec["object"]["metric"]["name"]) in mapped


# --- the overlays the docs tell users to write --------------------------------------------------------

OWN_CONFIG = """\
version: 1
redis: {cluster: true}
sources:
  - name: billing
    type: sqs
    region: eu-west-1
    queues: {names: [billing]}
"""


def readme_yaml_block(first_line: str) -> str:
    """The README's fenced yaml block (at any list indentation) that starts with ``first_line``."""
    readme = (ROOT / "README.md").read_text()
    blocks = [
        textwrap.dedent(match.group(2))
        for match in re.finditer(r"^( *)```yaml\n(.*?)^\1```", readme, re.MULTILINE | re.DOTALL)
    ]
    found = [block for block in blocks if block.startswith(first_line + "\n")]
    assert len(found) == 1, f"README.md has no single yaml block starting with {first_line!r}"
    return found[0]


def render_own_overlay(tmp_path: Path, kustomization: str) -> list[dict[str, Any]]:
    """Render ``kustomization`` as k8s/overlays/mine (next to a copy of k8s/) with its own config.yaml."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("certs", "api-service-ca-bundle.yaml"))
    overlay = copy / "overlays" / "mine"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(kustomization)
    (overlay / "config.yaml").write_text(OWN_CONFIG)
    return render(overlay)


def test_readme_overlay_snippet_renders_and_replaces_the_configuration(tmp_path: Path) -> None:
    # GIVEN the README's "own overlay", written where its first line says, with a config of one's own
    snippet = readme_yaml_block("# k8s/overlays/mine/kustomization.yaml")
    # WHEN kubectl kustomize renders it
    objects = render_own_overlay(tmp_path, snippet)
    # THEN the server's ConfigMap holds that config, and the Deployment mounts that ConfigMap
    config_map = only(objects, "ConfigMap")
    assert config_map["metadata"]["namespace"] == "tidegauge"
    assert config_map["data"] == {"config.yaml": OWN_CONFIG}
    deployment = only(objects, "Deployment", "tidegauge")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert the_container(deployment)["image"].endswith("/tidegauge-server:0.1.0")


def test_config_comment_snippet_renders_in_an_overlay(tmp_path: Path) -> None:
    # GIVEN the generator k8s/base/config.yaml's comment tells an overlay to use, uncommented
    lines = (K8S / "base" / "config.yaml").read_text().splitlines()
    start = lines.index("#   configMapGenerator:")
    snippet = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        snippet.append(line[len("#   ") :])
    kustomization = "resources:\n  - ../cert-manager\n" + "\n".join(snippet) + "\n"
    # WHEN kubectl kustomize renders it
    objects = render_own_overlay(tmp_path, kustomization)
    # THEN it replaced the base's configuration
    assert only(objects, "ConfigMap")["data"] == {"config.yaml": OWN_CONFIG}
