"""The demo's certificates: what a cluster would hand the server, the aggregator and a kubectl user.

Three CAs, as in a kubeadm cluster: one signs the server's serving certificate, one (front-proxy) signs
the certificate the aggregator presents with ``X-Remote-*`` headers, one (client) signs user
certificates. All keys are ECDSA P-256; everything is written under one folder and lives for the run.
"""

from __future__ import annotations

import base64
import datetime
import os
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FRONT_PROXY_CLIENT_NAME = "front-proxy-client"
"""The CN kube-apiserver's ``--proxy-client-cert-file`` certificate has in kubeadm clusters."""
ADMIN_USER = "demo-admin"
ADMIN_GROUP = "system:masters"
SERVING_HOSTS = ("127.0.0.1", "localhost")
VALID_DAYS = 30


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    certificate_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, stem: str) -> tuple[str, str]:
        """Write ``<stem>.crt`` and ``<stem>.key`` (owner-only) into ``directory``; return their paths."""
        files = _write_pair(directory, stem, self)
        return str(files.certificate), str(files.key)


@dataclass(frozen=True)
class CredentialFiles:
    """Where a certificate and its key were written."""

    certificate: Path
    key: Path


class CertificateAuthority:
    """A self-signed CA that issues serving and client certificates."""

    def __init__(self, name: str, *, valid_days: int = VALID_DAYS) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._valid_days = valid_days
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.pem = self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue_client(self, common_name: str, organizations: tuple[str, ...] = ()) -> Issued:
        """A client certificate (clientAuth): user = CN, groups = O, as Kubernetes reads them."""
        return self.issue(common_name, organizations)

    def issue_serving(self, common_name: str, hosts: tuple[str, ...] = SERVING_HOSTS) -> Issued:
        """A serving certificate (serverAuth) for ``hosts`` (IP addresses or DNS names)."""
        return self.issue(common_name, usages=(ExtendedKeyUsageOID.SERVER_AUTH,), hosts=hosts)

    def issue(
        self,
        common_name: str,
        organizations: tuple[str, ...] = (),
        *,
        usages: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
        hosts: tuple[str, ...] = (),
    ) -> Issued:
        """A leaf certificate with these extended key usages and subject alternative names."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, name) for name in organizations]
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=self._valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return Issued(certificate.public_bytes(serialization.Encoding.PEM), key_pem)


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
    else:
        path.write_bytes(data)
    return path


def _write_pair(directory: Path, stem: str, issued: Issued) -> CredentialFiles:
    return CredentialFiles(
        certificate=_write(directory / f"{stem}.crt", issued.certificate_pem),
        key=_write(directory / f"{stem}.key", issued.key_pem, private=True),
    )


@dataclass(frozen=True)
class DemoPki:
    """Every certificate of the demo, written under ``directory``.

    ``serving``: the server's certificate (``serving_ca`` signs it; clients trust that CA).
    ``front_proxy``: the aggregator's client certificate, CN ``front-proxy-client``.
    ``admin``: a ``demo-admin`` user in ``system:masters``, for kubectl.
    """

    directory: Path
    serving_ca: Path
    serving: CredentialFiles
    front_proxy_ca: Path
    front_proxy: CredentialFiles
    client_ca: Path
    admin: CredentialFiles
    serving_ca_pem: bytes
    admin_issued: Issued

    @classmethod
    def generate(cls, directory: Path) -> DemoPki:
        """Make the three CAs and their certificates and write them (keys readable by the owner only)."""
        serving_ca = CertificateAuthority("tidegauge-demo-serving-ca")
        front_proxy_ca = CertificateAuthority("tidegauge-demo-front-proxy-ca")
        client_ca = CertificateAuthority("tidegauge-demo-client-ca")
        admin = client_ca.issue_client(ADMIN_USER, (ADMIN_GROUP,))
        return cls(
            directory=directory,
            serving_ca=_write(directory / "serving-ca.crt", serving_ca.pem),
            serving=_write_pair(directory, "serving", serving_ca.issue_serving("tidegauge-demo")),
            front_proxy_ca=_write(directory / "front-proxy-ca.crt", front_proxy_ca.pem),
            front_proxy=_write_pair(
                directory, "front-proxy-client", front_proxy_ca.issue_client(FRONT_PROXY_CLIENT_NAME)
            ),
            client_ca=_write(directory / "client-ca.crt", client_ca.pem),
            admin=_write_pair(directory, ADMIN_USER, admin),
            serving_ca_pem=serving_ca.pem,
            admin_issued=admin,
        )

    def write_kubeconfig(self, path: Path, server_url: str) -> Path:
        """A kubeconfig that reaches the server directly as ``demo-admin`` (client-certificate auth)."""

        def encoded(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "tidegauge-demo",
                    "cluster": {
                        "server": server_url,
                        "certificate-authority-data": encoded(self.serving_ca_pem),
                    },
                }
            ],
            "users": [
                {
                    "name": ADMIN_USER,
                    "user": {
                        "client-certificate-data": encoded(self.admin_issued.certificate_pem),
                        "client-key-data": encoded(self.admin_issued.key_pem),
                    },
                }
            ],
            "contexts": [
                {"name": "tidegauge-demo", "context": {"cluster": "tidegauge-demo", "user": ADMIN_USER}}
            ],
            "current-context": "tidegauge-demo",
            "preferences": {},
        }
        text = yaml.safe_dump(document, sort_keys=False)
        return _write(path, text.encode("utf-8"), private=True)
