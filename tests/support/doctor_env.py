"""A healthy tidegauge installation in the fake kube-apiserver, with a real TLS listener as its pod.

Each fault of the doctor tests is planted on top of :func:`install_healthy` by changing one object.
"""

from __future__ import annotations

import base64
import datetime
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.cluster_objects import NAMESPACE, external_metric, external_values, hpa
from tests.support.kube_fake import FakeKubeApiServer
from tests.support.pki import CertificateAuthority
from tidegauge.server.telemetry import Telemetry

SERVICE_HOST = "tidegauge.tidegauge.svc"
APISERVICE_PATH = "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io"
CUSTOM_APISERVICE_PATH = "/apis/apiregistration.k8s.io/v1/apiservices/v1beta2.custom.metrics.k8s.io"
METRIC_PATH = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/qps"
HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/worker"
SLICE_PATH = "/apis/discovery.k8s.io/v1/namespaces/tidegauge/endpointslices/tidegauge-abcde"
METRICS_PROXY = "/api/v1/namespaces/tidegauge/services/tidegauge:metrics/proxy/metrics"
CONFIG_MAP_REVIEW = "extension-apiserver-authentication"


class Authority(CertificateAuthority):
    """The test CA (valid ten years), which also issues serving certificates with any names, validity
    and key: what the planted certificate faults need."""

    def __init__(self, name: str = "tidegauge-ca") -> None:
        super().__init__(name, valid_days=3650)

    def serving(
        self, hosts: tuple[str, ...] = (SERVICE_HOST,), valid_days: float = 365, rsa_bits: int | None = None
    ) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM); ``valid_days`` < 0 gives one that expired that long ago."""
        key: Any = (
            rsa.generate_private_key(65537, rsa_bits) if rsa_bits else ec.generate_private_key(ec.SECP256R1())
        )
        now = datetime.datetime.now(datetime.UTC)
        start = now - datetime.timedelta(days=max(1.0, -valid_days + 1))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tidegauge")]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@contextmanager
def tls_listener(directory: Path, certificate: bytes, key: bytes) -> Iterator[str]:
    """A loopback TLS server presenting ``certificate`` (the pod's secure port); yields HOST:PORT."""
    (directory / "pod.crt").write_bytes(certificate)
    (directory / "pod.key").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so a weak key can be served, to be found
    context.load_cert_chain(directory / "pod.crt", directory / "pod.key")

    class Handshake(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with context.wrap_socket(self.request, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handshake)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Installation:
    """What :func:`install_healthy` put, to change one thing of."""

    authority: Authority
    allow: dict[str, bool]
    """SubjectAccessReview answers by resource (``configmaps``, ``tokenreviews``, ``*``...)."""

    def ca_bundle(self) -> str:
        return base64.b64encode(self.authority.pem).decode()


def apiservice(
    ca_bundle: str,
    service: tuple[str, str] = ("tidegauge", "tidegauge"),
    available: bool = True,
    reason: str = "Passed",
    group_version: tuple[str, str] = ("external.metrics.k8s.io", "v1beta1"),
) -> dict[str, Any]:
    group, version = group_version
    condition = {
        "type": "Available",
        "status": "True" if available else "False",
        "reason": reason,
        "message": "all checks passed"
        if available
        else 'endpoints for service/tidegauge in "tidegauge" have no addresses with port name "https"',
    }
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"{version}.{group}"},
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "service": {"namespace": service[0], "name": service[1], "port": 443},
            "caBundle": ca_bundle,
        },
        "status": {"conditions": [condition]},
    }


def endpoint_slice(ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "tidegauge-abcde",
            "namespace": "tidegauge",
            "labels": {"kubernetes.io/service-name": "tidegauge"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": ["10.0.0.7"],
                "conditions": {"ready": ready, "serving": ready, "terminating": False},
                "targetRef": {"kind": "Pod", "namespace": "tidegauge", "name": "tidegauge-7d9f-abcde"},
            }
        ],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
    }


def metrics_exposition(ages: dict[str, float], redis_up: bool = True) -> str:
    """What a real server's /metrics says for these sample ages (rendered by the server's telemetry)."""
    now = time.time()
    telemetry = Telemetry(
        {m: now - age for m, age in ages.items()}, clock=lambda: now, redis_up=lambda: redis_up
    )
    return telemetry.render().decode()


def install_healthy(kube: FakeKubeApiServer) -> Installation:
    authority = Authority()
    install = Installation(authority, {})
    kube.put(APISERVICE_PATH, apiservice(install.ca_bundle()))
    kube.lists.add("/apis/apiregistration.k8s.io/v1/apiservices")
    kube.put(
        "/api/v1/namespaces/tidegauge/services/tidegauge",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "tidegauge", "namespace": "tidegauge"},
            "spec": {
                "selector": {"app.kubernetes.io/name": "tidegauge"},
                "ports": [
                    {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
                    {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"},
                ],
            },
        },
    )
    kube.put(SLICE_PATH, endpoint_slice())
    kube.put(
        "/api/v1/namespaces/tidegauge/pods/tidegauge-7d9f-abcde",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "tidegauge-7d9f-abcde",
                "namespace": "tidegauge",
                "labels": {"app.kubernetes.io/name": "tidegauge"},
            },
            "spec": {
                "serviceAccountName": "tidegauge",
                "containers": [
                    {
                        "name": "server",
                        "args": ["serve", "--secure-port=6443", "--metrics-port=9090"],
                        "ports": [
                            {"name": "https", "containerPort": 6443},
                            {"name": "metrics", "containerPort": 9090},
                        ],
                    }
                ],
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        },
    )
    kube.put(
        "/apis/external.metrics.k8s.io/v1beta1",
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "external.metrics.k8s.io/v1beta1",
            "resources": [
                {
                    "name": "externalmetrics",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "ExternalMetricValueList",
                    "verbs": ["get"],
                }
            ],
        },
    )
    conditions = [
        {
            "type": "AbleToScale",
            "status": "True",
            "reason": "ReadyForNewScale",
            "message": "recommended size matches current size",
        },
        {
            "type": "ScalingActive",
            "status": "True",
            "reason": "ValidMetricFound",
            "message": "the HPA was able to successfully calculate a replica count from external metric qps",
        },
    ]
    kube.put(
        HPA_PATH,
        hpa(
            "worker",
            [external_metric("qps", {"queue": "orders"}, "AverageValue", "2222m")],
            conditions=conditions,
        ),
    )
    kube.put(METRIC_PATH, external_values("qps", "8600m"))
    kube.lists.add(f"/api/v1/namespaces/{NAMESPACE}/events")
    kube.texts["/api/v1/namespaces/tidegauge/services/https:tidegauge:443/proxy/readyz"] = "ok"
    kube.texts[METRICS_PROXY] = metrics_exposition({"qps": 12})
    kube.allow = lambda spec: install.allow.get(spec.get("resourceAttributes", {}).get("resource", ""), True)
    return install
