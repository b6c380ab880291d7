"""Test PKI: the package's certificate authority, plus what only tests need."""

from __future__ import annotations

import ssl
from pathlib import Path

from tidegauge.demo.pki import CertificateAuthority as _CertificateAuthority
from tidegauge.demo.pki import Issued

__all__ = ["CertificateAuthority", "Issued", "client_context"]


class CertificateAuthority(_CertificateAuthority):
    """A CA that also issues the loopback serving certificate most tests need."""

    def issue_server(self, common_name: str = "tidegauge") -> Issued:
        return self.issue_serving(common_name)


def client_context(server_ca: CertificateAuthority, client: Issued | None, directory: Path) -> ssl.SSLContext:
    """A client context trusting ``server_ca`` and, if given, presenting ``client``."""
    context = ssl.create_default_context(cadata=server_ca.pem.decode())
    if client is not None:
        certificate, key = client.write(directory, f"client-{abs(hash(client.certificate_pem))}")
        context.load_cert_chain(certificate, key)
    return context
