"""Client certificates: which configured CA issued one, and whom it names.

Python 3.11's ``ssl`` only exposes the peer's leaf certificate (and only after OpenSSL verified it
against every CA the context trusts), so the CA that decides the authentication method is found here:
the leaf must be issued directly by a certificate of the bundle (signature and issuer name checked),
and allow client authentication.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CertificateSubject:
    common_name: str
    organizations: tuple[str, ...]


def load_bundle(pem: bytes | None) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM bundle (empty for None or an empty bundle)."""
    if not pem or not pem.strip():
        return ()
    return tuple(x509.load_pem_x509_certificates(pem))


def issued_by_any(certificate: x509.Certificate, authorities: Sequence[x509.Certificate]) -> bool:
    """True when one of ``authorities`` signed ``certificate`` directly."""
    for authority in authorities:
        try:
            certificate.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def allows_client_auth(certificate: x509.Certificate) -> bool:
    """No extended key usage (any use, as Go treats it), or one that includes clientAuth."""
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def subject_of(certificate: x509.Certificate) -> CertificateSubject:
    def values(oid: x509.ObjectIdentifier) -> list[str]:
        return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(oid)]

    common_names = values(NameOID.COMMON_NAME)
    return CertificateSubject(
        common_names[0] if common_names else "", tuple(values(NameOID.ORGANIZATION_NAME))
    )


def parse_der(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as error:
        logger.warning("ignoring an unparsable client certificate: %s", error)
        return None
