"""``doctor``'s checks of the aggregation chain: APIService -> Service -> endpoints -> serving certificate.

Written over a list of (group, version) APIServices, so the custom metrics API is checked like the
external one wherever it is registered.
"""

from __future__ import annotations

import datetime
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tidegauge.ops.certificates import (
    WARN_DAYS,
    BundleError,
    days_left,
    decode_bundle,
    dns_names,
    is_ca,
    key_problem,
    probe,
)
from tidegauge.ops.cluster import Cluster, ClusterError, JsonObject
from tidegauge.ops.findings import Finding, failed, passed, warned

API_SERVICES = (("external.metrics.k8s.io", "v1beta1"), ("custom.metrics.k8s.io", "v1beta2"))
REQUIRED = {"external.metrics.k8s.io"}
"""Groups tidegauge must serve; the others are checked only where registered."""
KEDA_DOCS = "README.md, 'Beside KEDA' (custom metrics only, delegation, or the KEDA external scaler)"
APPLY = "kubectl apply -k k8s/overlays/self-signed   (or k8s/overlays/cert-manager)"
DEFAULT_SECURE_PORT = 6443
_OWNERS = (
    ("keda", "KEDA"),
    ("prometheus-adapter", "prometheus-adapter"),
    ("datadog", "Datadog"),
    ("kube-metrics-adapter", "kube-metrics-adapter"),
)
PodConnector = Callable[[str, str, int], socket.socket]


@dataclass
class Chain:
    """What the chain checks learned, for the checks after them (RBAC, the whole path, the server)."""

    service_namespace: str = "tidegauge"
    service_name: str = "tidegauge"
    owned: list[str] = field(default_factory=list)
    """The groups whose APIService points at tidegauge's Service."""
    pods: list[JsonObject] = field(default_factory=list)
    """The pods behind ready endpoints."""
    bundles: dict[str, bytes] = field(default_factory=dict)
    """Group -> the decoded caBundle PEM."""


def apiservice_name(group: str, version: str) -> str:
    return f"{version}.{group}"


def check_apiservices(cluster: Cluster, chain: Chain) -> list[Finding]:
    findings: list[Finding] = []
    for group, version in API_SERVICES:
        name = apiservice_name(group, version)
        check = f"APIService {name}"
        try:
            service = cluster.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")
        except ClusterError as error:
            if error.code != 404:
                findings.append(failed(check, str(error), "check that you may read APIServices"))
            elif group in REQUIRED:
                findings.append(failed(check, "not registered: the HPA cannot read external metrics", APPLY))
            else:
                findings.append(passed(check, "not registered (needed only for Object and Pods metrics)"))
            continue
        findings.extend(_apiservice(service, name, check, chain))
        if group in chain.owned:
            findings.extend(_ca_bundle(service, group, name, chain))
    return findings


def _apiservice(service: JsonObject, name: str, check: str, chain: Chain) -> list[Finding]:
    spec = service.get("spec", {})
    target = spec.get("service") or {}
    namespace, service_name = str(target.get("namespace", "")), str(target.get("name", ""))
    group = str(spec.get("group", ""))
    if not target:
        return [failed(check, "served by the kube-apiserver itself (no spec.service)", APPLY)]
    where = f"{namespace}/{service_name}"
    if (namespace, service_name) != (chain.service_namespace, chain.service_name):
        owner = next((label for key, label in _OWNERS if key in where.lower()), "another adapter")
        return [
            failed(
                check,
                f"points at {where}: owned by {owner}, not tidegauge ({chain.service_namespace}/"
                f"{chain.service_name}); only one APIService per group/version can exist",
                f"run tidegauge where no other adapter serves {group}, or delegate to it: {KEDA_DOCS}",
            )
        ]
    chain.owned.append(group)
    findings = [passed(check, f"points at {where}, port {target.get('port', 443)}")]
    conditions = service.get("status", {}).get("conditions") or []
    available = next((c for c in conditions if c.get("type") == "Available"), None)
    if available is None:
        findings.append(
            warned(f"{check} Available", "no Available condition yet", f"kubectl get apiservice {name}")
        )
    elif available.get("status") == "True":
        findings.append(passed(f"{check} Available", "True"))
    else:
        reason = str(available.get("reason", ""))
        findings.append(
            failed(
                f"{check} Available",
                f"False ({reason}): {available.get('message', '')}",
                _AVAILABILITY_FIXES.get(reason, f"kubectl describe apiservice {name}"),
            )
        )
    return findings


_AVAILABILITY_FIXES = {
    "FailedDiscoveryCheck": "the aggregator cannot reach or verify the server: see the caBundle and "
    "certificate checks below; `kubectl -n tidegauge logs deploy/tidegauge`",
    "MissingEndpoints": "no ready pod behind the Service: `kubectl -n tidegauge get pods` and "
    "`kubectl -n tidegauge describe pod -l app.kubernetes.io/name=tidegauge`",
    "ServiceNotFound": f"the Service is missing: {APPLY}",
}


def _ca_bundle(service: JsonObject, group: str, name: str, chain: Chain) -> list[Finding]:
    spec = service.get("spec", {})
    check = f"APIService {name} caBundle"
    bundle, insecure = spec.get("caBundle"), bool(spec.get("insecureSkipTLSVerify"))
    patch = (
        f"kubectl patch apiservice {name} --type merge "
        f'-p "{{\\"spec\\":{{\\"caBundle\\":\\"$(base64 -w0 ca.crt)\\"}}}}"'
    )
    if bundle and insecure:
        return [failed(check, "both caBundle and insecureSkipTLSVerify are set", f"remove one: {patch}")]
    if insecure:
        return [
            warned(
                check,
                "insecureSkipTLSVerify: the aggregator does not verify the server (Kubernetes 1.36 checks "
                "availability against the caBundle)",
                patch,
            )
        ]
    if not bundle:
        return [failed(check, "no caBundle and no insecureSkipTLSVerify", patch)]
    try:
        pem, certificates = decode_bundle(str(bundle))
    except BundleError as error:
        return [failed(check, str(error), f"re-encode the CA on one line: {patch}")]
    not_ca = [c.subject.rfc4514_string() for c in certificates if not is_ca(c)]
    chain.bundles[group] = pem
    subjects = ", ".join(c.subject.rfc4514_string() for c in certificates)
    if not_ca:
        return [warned(check, f"{len(certificates)} certificates, not CAs: {', '.join(not_ca)}", patch)]
    return [passed(check, f"{len(certificates)} CA certificate(s): {subjects}")]


def check_service(cluster: Cluster, chain: Chain, api_port: int = 443) -> list[Finding]:
    """Service port -> targetPort -> the container's secure port; at least one ready endpoint."""
    namespace, name = chain.service_namespace, chain.service_name
    check = f"Service {namespace}/{name}"
    try:
        service = cluster.get(f"/api/v1/namespaces/{namespace}/services/{name}")
    except ClusterError as error:
        return [failed(check, str(error), APPLY)]
    ports = service.get("spec", {}).get("ports") or []
    port = next((p for p in ports if int(p.get("port", 0)) == api_port), None)
    if port is None:
        seen = ", ".join(str(p.get("port")) for p in ports) or "none"
        return [
            failed(check, f"no port {api_port} (ports: {seen})", f"add port {api_port} -> targetPort https")
        ]
    target_port = port.get("targetPort", port.get("port"))
    findings = [passed(check, f"port {api_port} -> targetPort {target_port}")]
    endpoints_check = f"{check} endpoints"
    try:
        slices = cluster.get(
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            {"labelSelector": f"kubernetes.io/service-name={name}"},
        )
    except ClusterError as error:
        return [*findings, failed(endpoints_check, str(error), "check that you may list EndpointSlices")]
    ready = [
        endpoint
        for item in slices.get("items") or []
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
    ]
    if not ready:
        return [
            *findings,
            failed(
                endpoints_check,
                "no ready endpoint: the aggregator reports MissingEndpoints and every metric disappears",
                f"kubectl -n {namespace} get pods -l app.kubernetes.io/name=tidegauge; "
                f"kubectl -n {namespace} describe pods -l app.kubernetes.io/name=tidegauge",
            ),
        ]
    findings.append(passed(endpoints_check, f"{len(ready)} ready endpoint(s)"))
    for endpoint in ready:
        ref = endpoint.get("targetRef") or {}
        if ref.get("kind") != "Pod":
            continue
        try:
            chain.pods.append(cluster.get(f"/api/v1/namespaces/{namespace}/pods/{ref.get('name')}"))
        except ClusterError:
            continue
    if chain.pods:
        findings.append(_container_port(chain.pods[0], target_port, check))
    return findings


def _container_port(pod: JsonObject, target_port: Any, check: str) -> Finding:
    """The targetPort names (or is) a container port, and that port is the server's --secure-port."""
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if target_port in (port.get("name"), port.get("containerPort")):
                number = int(port["containerPort"])
                secure = _secure_port(container)
                if secure != number:
                    return failed(
                        f"{check} container port",
                        f"targetPort {target_port} is container port {number}, but the server listens on "
                        f"--secure-port={secure}",
                        f"make the container port {secure} (or --secure-port={number})",
                    )
                return passed(
                    f"{check} container port", f"targetPort {target_port} -> {number} = --secure-port"
                )
    return failed(
        f"{check} container port",
        f"no container port named or numbered {target_port} in pod {pod.get('metadata', {}).get('name')}",
        "name the server's container port `https` (k8s/base/deployment.yaml)",
    )


def _secure_port(container: JsonObject) -> int:
    for argument in [*(container.get("command") or []), *(container.get("args") or [])]:
        if str(argument).startswith("--secure-port="):
            return int(str(argument).split("=", 1)[1])
    return DEFAULT_SECURE_PORT


def pod_port(pod: JsonObject) -> int:
    for container in pod.get("spec", {}).get("containers") or []:
        return _secure_port(container)
    return DEFAULT_SECURE_PORT


def check_certificate(connect_pod: PodConnector, chain: Chain, now: datetime.datetime) -> list[Finding]:
    """The certificate a ready pod really presents: chains to the caBundle, SAN, validity, key type."""
    if not chain.pods or not chain.bundles:
        return []
    pod = chain.pods[0]
    pod_name = str(pod.get("metadata", {}).get("name", ""))
    host = f"{chain.service_name}.{chain.service_namespace}.svc"
    check = f"serving certificate of pod {pod_name}"
    port = pod_port(pod)
    findings: list[Finding] = []
    for group, bundle in sorted(chain.bundles.items()):
        try:
            presented = probe(lambda: connect_pod(chain.service_namespace, pod_name, port), host, bundle)
        except (OSError, ValueError) as error:
            return [
                failed(
                    check,
                    f"no TLS handshake on port {port}: {error}",
                    f"kubectl -n {chain.service_namespace} logs {pod_name}",
                )
            ]
        if presented.chain_error:
            findings.append(
                failed(
                    f"{check} chains to the {group} caBundle",
                    presented.chain_error,
                    "put the CA that signed the serving certificate in the caBundle (kubectl -n "
                    f"{chain.service_namespace} get secret tidegauge-serving-cert "
                    "-o jsonpath='{.data.ca\\.crt}')",
                )
            )
        else:
            findings.append(passed(f"{check} chains to the {group} caBundle", "verified"))
    leaf = presented.leaf
    names = dns_names(leaf)
    if host in names:
        findings.append(passed(f"{check} DNS SAN", host))
    else:
        findings.append(
            failed(
                f"{check} DNS SAN",
                f"no {host} among {', '.join(names) or 'no DNS names'}",
                f"reissue the certificate with DNS name {host} (k8s/overlays/self-signed/generate-certs.sh)",
            )
        )
    left = days_left(leaf, now)
    expiry = leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    if leaf.not_valid_before_utc > now:
        findings.append(
            failed(f"{check} validity", f"not valid before {leaf.not_valid_before_utc}", "check clocks")
        )
    elif left < 0:
        findings.append(failed(f"{check} validity", f"expired {expiry}", "renew the serving certificate"))
    elif left < WARN_DAYS:
        findings.append(warned(f"{check} validity", f"expires {expiry} ({left:.0f} days)", "renew it soon"))
    else:
        findings.append(passed(f"{check} validity", f"until {expiry} ({left:.0f} days)"))
    severity, description = key_problem(leaf)
    if severity == "FAIL":
        findings.append(
            failed(f"{check} key", description, "reissue with an ECDSA P-256 or RSA 2048 key, SHA-256")
        )
    elif severity == "WARN":
        findings.append(warned(f"{check} key", description, "reissue with an ECDSA P-256 or RSA 2048 key"))
    else:
        findings.append(passed(f"{check} key", description))
    return findings
