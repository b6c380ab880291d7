"""The demo's certificates and kubeconfig: what the server, the aggregator and kubectl each need."""

from __future__ import annotations

import base64
import stat
from ipaddress import ip_address
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidegauge.demo.pki import DemoPki


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_parties_get_certificates_from_their_own_cas(tmp_path: Path) -> None:
    # GIVEN the demo's PKI
    pki = DemoPki.generate(tmp_path)

    # THEN the serving certificate is for 127.0.0.1 and localhost, signed by the serving CA
    serving = certificate(pki.serving.certificate)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    serving.verify_directly_issued_by(certificate(pki.serving_ca))
    # AND the front proxy's is a client certificate named front-proxy-client, from the front-proxy CA
    proxy = certificate(pki.front_proxy.certificate)
    assert proxy.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "front-proxy-client"
    usages = proxy.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    proxy.verify_directly_issued_by(certificate(pki.front_proxy_ca))
    # AND the admin user is demo-admin in system:masters, from the client CA
    admin = certificate(pki.admin.certificate)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    admin.verify_directly_issued_by(certificate(pki.client_ca))
    # AND private keys are readable by their owner only
    for key in (pki.serving.key, pki.front_proxy.key, pki.admin.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_kubeconfig_reaches_the_server_as_demo_admin(tmp_path: Path) -> None:
    # GIVEN the demo's PKI
    pki = DemoPki.generate(tmp_path / "pki")

    # WHEN a kubeconfig is written for a server on port 6443
    path = pki.write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443")

    # THEN it trusts the serving CA and presents the admin certificate, and only its owner can read it
    document = yaml.safe_load(path.read_text())
    (cluster,) = document["clusters"]
    (user,) = document["users"]
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == pki.serving_ca.read_bytes()
    assert base64.b64decode(user["user"]["client-certificate-data"]) == pki.admin.certificate.read_bytes()
    assert base64.b64decode(user["user"]["client-key-data"]) == pki.admin.key.read_bytes()
    assert document["current-context"] == document["contexts"][0]["name"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
